"""The connection core without a socket: one Connection, a recording Link, the MemoryBroker.

What every endpoint shares is tested here once: the end rule (which ends
are departures), frames kept in order while one waits, the join timer,
keepalive, and dropping a client that reads too slowly. The endpoints'
own tests (test_endpoints_websocket.py, test_doors.py) run the same over
real sockets.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from rtcroom.admission import Admission
from rtcroom.broker import MemoryBroker
from rtcroom.config import Config
from rtcroom.connection import (
    CLOSE_POLICY,
    CLOSE_RESTART,
    CLOSE_RESUMED,
    RESUMABLE,
    Connection,
    may_resume,
)
from rtcroom.protocol import PeerInfo


class RecordingLink:
    """A Link that keeps what the Connection asked of it."""

    pings = True

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.sent: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self.dropped: tuple[int, str] | None = None
        self.pinged = 0
        self.aborted = False
        self.paused = False

    def wake(self) -> None:
        assert self.connection is not None
        outbox = self.connection.outbox
        while outbox.frames:
            self.sent.append(json.loads(outbox.frames.popleft()))
        if outbox.close_code is not None:
            self.closed = (outbox.close_code, outbox.close_reason)

    def drop(self, code: int, reason: str) -> None:
        self.dropped = (code, reason)

    def ping(self) -> None:
        self.pinged += 1

    def abort(self) -> None:
        self.aborted = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def take(self) -> list[dict[str, Any]]:
        sent, self.sent = self.sent, []
        return sent


class SlowBroker(MemoryBroker):
    """Joins wait until `gate` is set, as a Redis round trip would."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.gate = asyncio.Event()

    async def enter(
        self, room: str, peer: PeerInfo, mailbox: Any, resume_key: str, grants: Any = frozenset()
    ) -> Any:
        await self.gate.wait()
        return await super().enter(room, peer, mailbox, resume_key, grants)


@pytest.fixture
def world() -> Any:
    config = Config(join_timeout=0.3, ping_interval=0.1, ping_timeout=0.1, send_queue_frames=16)
    admission = Admission(config)
    broker = MemoryBroker(resume_grace=5.0, held_frames=16)

    def connect(broker: MemoryBroker = broker) -> tuple[Connection, RecordingLink]:
        assert admission.admit("127.0.0.1") is None  # as every endpoint does first
        link = RecordingLink()
        link.connection = Connection(admission, broker, link, "127.0.0.1")
        return link.connection, link

    return admission, broker, connect


async def join(connection: Connection, link: RecordingLink, name: str, room: str = "r") -> str:
    connection.receive(json.dumps({"type": "join", "room": room, "name": name}))
    await connection.settled()  # joining waits on the broker
    [joined] = link.take()
    assert joined["type"] == "joined", joined
    peer_id: str = joined["id"]
    return peer_id


def test_the_end_rule() -> None:
    # Dropped networks and server restarts may resume; closes on purpose and
    # ends the server decided for a broken rule are departures.
    assert {1006, 1011, 1012, 1013, 1014} == RESUMABLE
    for code in (1000, 1001, 1002, 1005, 1007, 1008, 1009, 4000, CLOSE_RESUMED):
        assert not may_resume(code), code


@pytest.mark.parametrize(
    ("code", "left_at_once"),
    [(1000, True), (1001, True), (1005, True), (1009, True), (1006, False), (1012, False)],
)
async def test_which_ends_the_room_hears_of_at_once(
    world: Any, code: int, left_at_once: bool
) -> None:
    _, _, connect = world
    watcher, watching = connect()
    await join(watcher, watching, "watcher")
    subject, link = connect()
    subject_id = await join(subject, link, "subject")
    assert watching.take()[0]["type"] == "peer-joined"
    await subject.ended(code)
    expected = [{"type": "peer-left", "id": subject_id}] if left_at_once else []
    assert watching.take() == expected


async def test_a_close_the_server_decided_wins_over_the_clients_answer(world: Any) -> None:
    _, _, connect = world
    watcher, watching = connect()
    await join(watcher, watching, "watcher")
    subject, link = connect()
    subject_id = await join(subject, link, "subject")
    watching.take()
    subject.close(CLOSE_POLICY, "a rule broken")
    assert link.closed == (CLOSE_POLICY, "a rule broken")
    await subject.ended(1006)  # the client went without answering
    assert watching.take() == [{"type": "peer-left", "id": subject_id}]
    # A restart's close (the drain) may be resumed on another connection.
    again, again_link = connect()
    await join(again, again_link, "again")
    watching.take()
    again.bye("the server is restarting")
    assert again_link.take()[0]["type"] == "bye"
    assert again_link.closed == (CLOSE_RESTART, "the server is restarting")
    await again.ended(CLOSE_RESTART)
    assert watching.take() == []


async def test_ending_twice_leaves_once_and_releases_the_address_once(world: Any) -> None:
    admission, _, connect = world
    connection, link = connect()
    await join(connection, link, "ann")
    assert admission.clients.connections == {"127.0.0.1": 1}
    await connection.ended(1000)
    await connection.ended(1000)
    assert connection not in admission.connections
    assert admission.clients.connections == {}


async def test_frames_behind_a_waiting_one_keep_their_order(world: Any) -> None:
    admission, _, _ = world
    broker = SlowBroker(resume_grace=0)
    link = RecordingLink()
    connection = link.connection = Connection(admission, broker, link, "127.0.0.1")
    connection.receive(json.dumps({"type": "join", "room": "r", "name": "ann"}))
    # The join waits on the broker: what follows waits its turn, and reading
    # pauses once too much is waiting.
    for n in range(70):
        connection.receive(json.dumps({"type": "broadcast", "data": n}))
    assert link.paused
    assert link.take() == []
    broker.gate.set()
    await connection.settled()
    assert not link.paused
    sent = link.take()
    assert sent[0]["type"] == "joined"
    # Alone in the room: each broadcast reaches nobody, and says nothing back.
    assert sent[1:] == []
    assert connection.session.room == "r"


async def test_a_client_that_never_joins_is_closed(world: Any) -> None:
    _, _, connect = world
    connection, link = connect()
    await asyncio.sleep(0.45)
    assert link.take()[0]["code"] == "join-timeout"
    assert link.closed == (CLOSE_POLICY, "join timeout")
    await connection.ended(CLOSE_POLICY)


async def test_pings_until_a_pong_stops_coming(world: Any) -> None:
    _, _, connect = world
    connection, link = connect()
    await join(connection, link, "ann")
    for _ in range(3):
        while link.pinged == 0:
            await asyncio.sleep(0.01)
        link.pinged = 0
        connection.pong()
    assert not link.aborted
    await asyncio.sleep(0.4)  # a ping, then no pong within ping_timeout
    assert link.aborted
    await connection.ended(1006)


async def test_a_client_that_reads_too_slowly_is_dropped(world: Any) -> None:
    _, _, connect = world
    sender, sending = connect()
    await join(sender, sending, "fast")
    slow, slow_link = connect()
    slow_id = await join(slow, slow_link, "slow")
    slow.outbox.wake = lambda: None  # it stops reading
    sending.take()
    for n in range(17):  # the queue holds 16
        sender.receive(json.dumps({"type": "broadcast", "data": n}))
    assert slow_link.dropped == (CLOSE_POLICY, "too slow to keep up")
    await slow.ended(1006)
    # Dropped for good: a departure, not a suspension.
    assert sending.take() == [{"type": "peer-left", "id": slow_id}]
