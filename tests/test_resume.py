"""Resume: a client whose connection drops comes back as the same peer.

The core and the MemoryBroker alone; tests/test_serve_faults.py and the
browser tests do it over real sockets.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from test_session import Client

from rtcroom.broker import MemoryBroker
from rtcroom.protocol import Status

GRACE = 0.2


@pytest.fixture
def make() -> Any:
    broker = MemoryBroker(resume_grace=GRACE, held_frames=8)
    ids = itertools.count(1)
    return lambda: Client(broker, ids)


async def pair(make: Any) -> tuple[Client, Client, dict[str, Any], dict[str, Any]]:
    a, b = make(), make()
    joined_a = await a.join("r", "Ann")
    joined_b = await b.join("r", "Bo")
    a.inbox.take()
    return a, b, joined_a, joined_b


async def test_resume_within_grace_keeps_the_id_and_the_others_see_nothing(make: Any) -> None:
    a, b, joined_a, joined_b = await pair(make)
    await a.disconnect()
    # Meanwhile b signals a: the frame waits for a's return.
    await b.send({"type": "signal", "to": joined_a["id"], "data": {"candidate": None}})
    await asyncio.sleep(GRACE / 2)
    again = make()
    messages = await again.send(
        {"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]}
    )
    assert messages[0]["type"] == "joined"
    assert messages[0]["id"] == joined_a["id"]
    assert messages[0]["peers"] == [{"id": joined_b["id"], "name": "Bo"}]
    assert messages[1:] == [{"type": "signal", "from": joined_b["id"], "data": {"candidate": None}}]
    await asyncio.sleep(GRACE)
    assert b.inbox.take() == []  # no peer-left, no peer-joined
    await b.send({"type": "signal", "to": joined_a["id"], "data": 1})
    assert again.inbox.take()[0]["data"] == 1


async def test_after_the_grace_period_the_peer_is_gone(make: Any) -> None:
    a, b, joined_a, _ = await pair(make)
    await a.disconnect()
    await asyncio.sleep(GRACE * 2)
    assert b.inbox.take() == [{"type": "peer-left", "id": joined_a["id"]}]
    # Resuming too late joins afresh, under a new id, announced as new.
    late = make()
    joined = (
        await late.send({"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]})
    )[0]
    assert joined["type"] == "joined" and joined["id"] != joined_a["id"]
    assert b.inbox.take() == [{"type": "peer-joined", "peer": {"id": joined["id"], "name": "Ann"}}]


async def test_a_key_resumes_only_in_its_room(make: Any) -> None:
    a, _, joined_a, _ = await pair(make)
    await a.disconnect()
    other = make()
    [joined] = await other.send(
        {"type": "join", "room": "s", "name": "A", "resume": joined_a["resume"]}
    )
    assert joined["id"] != joined_a["id"]
    [joined] = await make().send({"type": "join", "room": "r", "name": "A", "resume": "guess"})
    assert joined["id"] != joined_a["id"]


async def test_resume_while_the_old_connection_lingers_evicts_it(make: Any) -> None:
    a, b, joined_a, _ = await pair(make)
    again = make()
    [joined] = await again.send(
        {"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]}
    )
    assert joined["id"] == joined_a["id"]
    assert a.inbox.evicted
    # The server ends the evicted connection without a departure.
    assert a.session.evicted() == []
    await b.send({"type": "broadcast", "data": "x"})
    assert again.inbox.take()[0]["data"] == "x"
    assert a.inbox.take() == []
    assert b.inbox.take() == []


async def test_a_peer_that_missed_frames_cannot_resume(make: Any) -> None:
    a, b, joined_a, _ = await pair(make)
    await a.disconnect()
    for i in range(9):  # one more than the broker holds
        await b.send({"type": "broadcast", "data": i})
    [joined] = await make().send(
        {"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]}
    )
    assert joined["id"] != joined_a["id"]
    assert b.inbox.take()[0] == {"type": "peer-left", "id": joined_a["id"]}


async def test_leave_is_final(make: Any) -> None:
    a, b, joined_a, _ = await pair(make)
    await a.send({"type": "leave"})
    assert b.inbox.take() == [{"type": "peer-left", "id": joined_a["id"]}]
    [joined] = await make().send(
        {"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]}
    )
    assert joined["id"] != joined_a["id"]


async def test_a_resume_keeps_the_state_and_brings_what_changed_while_away(make: Any) -> None:
    a, b, joined_a, joined_b = await pair(make)
    await b.send({"type": "state", "state": {"camera": "off"}})
    await a.send({"type": "state", "state": {"mic": "off"}})
    a.inbox.take(), b.inbox.take()
    await a.disconnect()
    # While a is away, b raises its hand: a hears it on its return.
    await b.send({"type": "state", "state": {"camera": "off", "hand": True}})
    again = make()
    # a's page turned its camera off while the connection was down: its
    # join says so, and b hears it once a is back.
    messages = await again.send(
        {
            "type": "join",
            "room": "r",
            "name": "Ann",
            "resume": joined_a["resume"],
            "state": {"mic": "off", "camera": "off"},
        }
    )
    assert messages[0]["peers"] == [
        {"id": joined_b["id"], "name": "Bo", "state": {"camera": "off"}}
    ]
    assert messages[1:] == [
        {"type": "state", "peer": joined_b["id"], "state": {"camera": "off", "hand": True}}
    ]
    assert b.inbox.take() == [
        {"type": "state", "peer": joined_a["id"], "state": {"mic": "off", "camera": "off"}}
    ]
    # A resume that says nothing about state keeps what the server has.
    await again.disconnect()
    third = make()
    messages = await third.send(
        {"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]}
    )
    assert messages[0]["id"] == joined_a["id"]
    assert b.inbox.take() == []
    ann, bo = (await third.broker.list_rooms())["r"]
    assert ann.state == Status(mic="off", camera="off")
    assert bo.state == Status(camera="off", hand=True)
