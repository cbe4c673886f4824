"""The sans-I/O core: Session rules alone, then peers in rooms through the MemoryBroker.

No sockets: frames go in as strings, what each client would receive comes
out of its Inbox.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from rtcroom.broker import MemoryBroker
from rtcroom.broker.interface import LeaveReason
from rtcroom.connection import Executor
from rtcroom.protocol import REACTIONS, ErrorCode, PeerInfo, Status
from rtcroom.session import Enter, Exit, Publish, Relay, Reply, Session
from rtcroom.state import InvalidTransition, PeerState, transition
from rtcroom.turn import IceConfig


class Inbox:
    """A Mailbox that keeps what a client would receive, decoded."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.evicted = False

    def deliver(self, frame: str) -> None:
        self.frames.append(frame)

    def evict(self) -> None:
        self.evicted = True

    def lost(self) -> None:
        self.frames.append('{"type": "lost"}')

    def take(self) -> list[dict[str, Any]]:
        messages = [json.loads(frame) for frame in self.frames]
        self.frames.clear()
        return messages


class Client:
    """A Session, its Inbox and a shared broker: one client, minus the socket."""

    def __init__(self, broker: MemoryBroker, ids: itertools.count[int], **options: Any) -> None:
        self.broker = broker
        self.inbox = Inbox()
        self.session = Session(peer_id_factory=lambda: f"p{next(ids)}", **options)
        self.executor = Executor(self.session, broker, self.inbox)

    async def feed(self, message: dict[str, Any] | str) -> None:
        frame = message if isinstance(message, str) else json.dumps(message)
        await self.executor.run(self.session.receive(frame))

    async def send(self, message: dict[str, Any] | str) -> list[dict[str, Any]]:
        """Feed one message; return what this client received, in order."""
        await self.feed(message)
        return self.inbox.take()

    async def join(self, room: str, name: str) -> dict[str, Any]:
        [joined] = await self.send({"type": "join", "room": room, "name": name})
        assert joined["type"] == "joined"
        return joined

    async def disconnect(self) -> None:
        await self.executor.run(self.session.close())


@pytest.fixture
def make_client() -> Any:
    # No grace period: a dropped peer leaves at once (resume has tests of its own).
    broker = MemoryBroker(max_peers_per_room=3, resume_grace=0)
    ids = itertools.count(1)

    def make(**options: Any) -> Client:
        return Client(broker, ids, **options)

    return make


# Session alone ---------------------------------------------------------------


def test_join_asks_the_broker_then_announces() -> None:
    session = Session(peer_id_factory=lambda: "me", ice=IceConfig(stun_urls=["stun:x"]))
    [enter] = session.receive('{"type":"join","room":"r","name":"Ann"}')
    assert isinstance(enter, Enter)
    assert enter.room == "r" and enter.peer == PeerInfo("me", "Ann")
    assert len(enter.resume_key) >= 32
    assert session.state is PeerState.JOINING
    reply, publish = session.admitted([PeerInfo("old", "Bo")])
    assert isinstance(reply, Reply) and isinstance(publish, Publish)
    assert json.loads(reply.frame) == {
        "type": "joined",
        "id": "me",
        "room": "r",
        "peers": [{"id": "old", "name": "Bo"}],
        "iceServers": [{"urls": "stun:x"}],
        "resume": enter.resume_key,
        "grants": ["admin", "data", "publish", "subscribe"],
        "mode": "mesh",
        "name": "Ann",
    }
    assert json.loads(publish.frame) == {"type": "peer-joined", "peer": {"id": "me", "name": "Ann"}}
    assert publish.sender == "me"
    assert session.state is PeerState.JOINED


def test_signal_is_rewritten_with_sender_and_raw_data() -> None:
    session = Session(peer_id_factory=lambda: "me")
    session.receive('{"type":"join","room":"r","name":"Ann"}')
    session.admitted([])
    [relay] = session.receive('{"type":"signal","to":"you","data":{"candidate": null}}')
    assert relay == Relay(
        room="r", to="you", frame='{"type":"signal","from":"me","data":{"candidate": null}}'
    )


def test_refused_join_returns_to_connected_and_can_retry() -> None:
    session = Session()
    session.receive('{"type":"join","room":"r","name":"Ann"}')
    [reply] = session.refused(ErrorCode.ROOM_FULL, "full")
    assert json.loads(reply.frame)["code"] == "room-full"
    assert session.state is PeerState.CONNECTED
    assert isinstance(session.receive('{"type":"join","room":"s","name":"Ann"}')[0], Enter)


def test_close_is_idempotent_and_announces_once() -> None:
    session = Session(peer_id_factory=lambda: "me", resumable=False)
    session.receive('{"type":"join","room":"r","name":"Ann"}')
    session.admitted([])
    first = session.close()
    assert first[0] == Exit(room="r", peer_id="me", reason=LeaveReason.CLOSED)
    assert json.loads(first[1].frame) == {"type": "peer-left", "id": "me"}  # type: ignore[union-attr]
    assert session.close() == []
    assert session.receive('{"type":"leave"}') == []
    assert session.state is PeerState.CLOSED


def test_oversized_frames_are_refused_before_parsing() -> None:
    session = Session(max_message_size=1024)
    big = '{"type":"broadcast","data":"' + "x" * 2000 + '"}'
    [reply] = session.receive(big)
    assert json.loads(reply.frame)["code"] == "too-large"  # type: ignore[union-attr]
    # Multi-byte characters count as bytes, not characters.
    wide = '{"type":"broadcast","data":"' + "€" * 400 + '"}'
    [reply] = session.receive(wide)
    assert json.loads(reply.frame)["code"] == "too-large"  # type: ignore[union-attr]


def test_transition_table_names_the_state() -> None:
    with pytest.raises(InvalidTransition, match="'closed'"):
        transition(PeerState.CLOSED, "join")


# Peers in rooms ----------------------------------------------------------------


async def test_join_order_presence_and_relay(make_client: Any) -> None:
    a, b, c = make_client(), make_client(), make_client()
    joined_a = await a.join("room", "Ann")
    assert joined_a["peers"] == []
    joined_b = await b.join("room", "Bo")
    assert joined_b["peers"] == [{"id": joined_a["id"], "name": "Ann"}]
    assert a.inbox.take() == [{"type": "peer-joined", "peer": {"id": joined_b["id"], "name": "Bo"}}]
    joined_c = await c.join("room", "Cy")
    assert [p["id"] for p in joined_c["peers"]] == [joined_a["id"], joined_b["id"]]
    a.inbox.take(), b.inbox.take()

    offer = {"description": {"type": "offer", "sdp": "v=0..."}}
    assert await c.send({"type": "signal", "to": joined_a["id"], "data": offer}) == []
    assert a.inbox.take() == [{"type": "signal", "from": joined_c["id"], "data": offer}]
    assert b.inbox.take() == []

    assert await b.send({"type": "broadcast", "data": {"chat": "hi"}}) == []
    expected = {"type": "broadcast", "from": joined_b["id"], "data": {"chat": "hi"}}
    assert a.inbox.take() == [expected]
    assert c.inbox.take() == [expected]
    assert b.inbox.take() == []


async def test_leave_and_disconnect_announce_peer_left(make_client: Any) -> None:
    a, b, c = make_client(), make_client(), make_client()
    await a.join("r", "Ann")
    joined_b = await b.join("r", "Bo")
    joined_c = await c.join("r", "Cy")
    a.inbox.take(), b.inbox.take()
    assert await b.send({"type": "leave"}) == []
    assert a.inbox.take() == [{"type": "peer-left", "id": joined_b["id"]}]
    assert c.inbox.take() == [{"type": "peer-left", "id": joined_b["id"]}]
    await c.disconnect()
    assert a.inbox.take() == [{"type": "peer-left", "id": joined_c["id"]}]
    # b left but kept its connection: it can join again, under a new id.
    again = await b.join("r", "Bo")
    assert again["id"] != joined_b["id"]
    assert [p["name"] for p in again["peers"]] == ["Ann"]


async def test_rooms_are_isolated(make_client: Any) -> None:
    a, b = make_client(), make_client()
    joined_a = await a.join("one", "Ann")
    joined_b = await b.join("two", "Bo")
    assert joined_b["peers"] == []
    assert a.inbox.take() == []
    [error] = await b.send({"type": "signal", "to": joined_a["id"], "data": {}})
    assert error["code"] == "unknown-peer"
    assert a.inbox.take() == []
    await b.send({"type": "broadcast", "data": 1})
    assert a.inbox.take() == []


async def test_errors_leave_the_connection_usable(make_client: Any) -> None:
    a, b = make_client(), make_client()
    joined_b = await b.join("r", "Bo")
    b.inbox.take()
    cases: list[tuple[dict[str, Any] | str, str]] = [
        ("{oops", "bad-message"),
        ({"type": "hop"}, "unknown-type"),
        ({"type": "signal", "to": joined_b["id"], "data": {}}, "not-joined"),
        ({"type": "broadcast", "data": {}}, "not-joined"),
        ({"type": "leave"}, "not-joined"),
        ({"type": "join", "room": "bad room!", "name": "Ann"}, "bad-message"),
    ]
    for message, code in cases:
        [error] = await a.send(message)
        assert error["type"] == "error"
        assert error["code"] == code
        assert error["message"]
    joined_a = await a.join("r", "Ann")
    [error] = await a.send({"type": "join", "room": "r", "name": "Ann"})
    assert error["code"] == "already-joined"
    [error] = await a.send({"type": "signal", "to": "nobody", "data": {}})
    assert error["code"] == "unknown-peer"
    [error] = await a.send({"type": "signal", "to": joined_a["id"], "data": {}})
    assert error["code"] == "unknown-peer"
    await a.send({"type": "signal", "to": joined_b["id"], "data": {"ok": True}})
    assert b.inbox.take()[-1] == {"type": "signal", "from": joined_a["id"], "data": {"ok": True}}


async def test_room_full(make_client: Any) -> None:
    clients = [make_client() for _ in range(4)]
    for i, client in enumerate(clients[:3]):
        await client.join("r", f"n{i}")
    [error] = await clients[3].send({"type": "join", "room": "r", "name": "late"})
    assert error["code"] == "room-full"
    for client in clients[:3]:
        assert all(
            m["type"] != "peer-joined" or m["peer"]["name"] != "late" for m in client.inbox.take()
        )
    # When someone leaves, the late one gets in.
    await clients[0].disconnect()
    joined = await clients[3].join("r", "late")
    assert len(joined["peers"]) == 2


async def test_oversized_message_is_never_relayed(make_client: Any) -> None:
    a, b = make_client(max_message_size=1024), make_client()
    await a.join("r", "Ann")
    await b.join("r", "Bo")
    a.inbox.take()
    [error] = await a.send({"type": "broadcast", "data": "x" * 2048})
    assert error["code"] == "too-large"
    assert b.inbox.take() == []


async def test_empty_rooms_are_forgotten(make_client: Any) -> None:
    a = make_client()
    await a.join("r", "Ann")
    assert "r" in a.broker.rooms
    await a.disconnect()
    assert a.broker.rooms == {}


def test_turn_credentials_are_minted_per_peer_and_renewed() -> None:
    ice = IceConfig(turn_urls=["turn:t.example:3478"], turn_secret="s" * 16, turn_ttl=600)
    session = Session(peer_id_factory=lambda: "me", ice=ice)
    assert session.renew_ice() == []  # not in a room: nothing to renew
    session.receive('{"type":"join","room":"r","name":"Ann"}')
    reply, _ = session.admitted([])
    [server] = json.loads(reply.frame)["iceServers"]  # type: ignore[union-attr]
    assert server["urls"] == ["turn:t.example:3478"]
    expiry, peer = server["username"].split(":")
    assert peer == "me"
    [renewal] = session.renew_ice(now=int(expiry))
    fresh = json.loads(renewal.frame)  # type: ignore[union-attr]
    assert fresh["type"] == "ice-servers"
    assert fresh["iceServers"][0]["username"] == f"{int(expiry) + 600}:me"
    assert ice.renewal_period == 480


# Participant state and reactions -------------------------------------------------


async def test_participant_state_reaches_the_room_and_newcomers(make_client: Any) -> None:
    a, b, c = make_client(), make_client(), make_client()
    # A join may say how the others first see us: muted, a recorder.
    joined_a = await a.send(
        {"type": "join", "room": "r", "name": "Ann", "state": {"mic": "off", "kind": "recorder"}}
    )
    joined_b = await b.join("r", "Bo")
    assert joined_b["peers"] == [
        {"id": joined_a[0]["id"], "name": "Ann", "state": {"mic": "off", "kind": "recorder"}}
    ]
    a.inbox.take()
    # The whole state each time: what is left out is back to its default.
    assert await b.send({"type": "state", "state": {"camera": "off", "hand": True}}) == []
    expected = {"type": "state", "peer": joined_b["id"], "state": {"camera": "off", "hand": True}}
    assert a.inbox.take() == [expected]
    # The same state again tells nobody.
    assert await b.send({"type": "state", "state": {"hand": True, "camera": "off"}}) == []
    assert a.inbox.take() == []
    joined_c = await c.join("r", "Cy")
    assert [p.get("state") for p in joined_c["peers"]] == [
        {"mic": "off", "kind": "recorder"},
        {"camera": "off", "hand": True},
    ]
    # Back to the default: the peer carries no state.
    await b.send({"type": "state", "state": {}})
    assert c.inbox.take() == [{"type": "state", "peer": joined_b["id"], "state": {}}]
    roster = await a.broker.list_rooms()
    assert [p.state for p in roster["r"]][1] == Status()


async def test_state_and_reactions_are_checked(make_client: Any) -> None:
    a, b = make_client(), make_client()
    [error] = await a.send({"type": "state", "state": {"mic": "off"}})
    assert error["code"] == "not-joined"
    [error] = await a.send({"type": "react", "emoji": "\U0001f44d"})
    assert error["code"] == "not-joined"
    joined_a = await a.join("r", "Ann")
    await b.join("r", "Bo")
    a.inbox.take()
    for bad in ({"mic": "loud"}, {"hand": "yes"}, {"kind": "admin"}, "off"):
        [error] = await a.send({"type": "state", "state": bad})
        assert error["code"] == "bad-message"
    [error] = await a.send({"type": "react", "emoji": "hello everyone"})
    assert error["code"] == "bad-message"
    assert "\U0001f44d" in error["message"]
    assert b.inbox.take() == []
    # A reaction goes to the others once and is kept nowhere.
    for emoji in REACTIONS:
        assert await a.send({"type": "react", "emoji": emoji}) == []
    assert b.inbox.take() == [
        {"type": "reaction", "peer": joined_a["id"], "emoji": emoji} for emoji in REACTIONS
    ]
