"""Property-based tests of the core: any sequence of client actions keeps its invariants."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from test_session import Client

from rtcroom.broker import MemoryBroker
from rtcroom.protocol import decode_server

ROOMS = ["a", "b"]
CLIENTS = 4

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)

operations = st.lists(
    st.tuples(
        st.integers(0, CLIENTS - 1),
        st.one_of(
            st.tuples(st.just("join"), st.sampled_from(ROOMS)),
            st.tuples(st.just("signal"), st.integers(0, CLIENTS - 1), json_values),
            st.tuples(st.just("broadcast"), json_values),
            st.tuples(st.just("leave")),
            st.tuples(st.just("disconnect")),
            st.tuples(st.just("drop")),
            st.tuples(st.just("reconnect")),
            st.tuples(st.just("garbage"), st.binary(max_size=20)),
        ),
    ),
    max_size=40,
)


class View:
    """What one client believes about its room, built only from what it received."""

    def __init__(self) -> None:
        self.id: str | None = None
        self.room: str | None = None
        self.others: list[str] = []


@settings(max_examples=200, deadline=None)
@given(operations)
def test_views_match_presence_and_nothing_crosses_rooms(ops: list[Any]) -> None:
    asyncio.run(_run(ops))


async def _run(ops: list[Any]) -> None:
    # "disconnect" leaves at once; "drop" suspends for a "reconnect" to resume
    # (the grace period never ends within a run).
    broker = MemoryBroker(max_peers_per_room=3, resume_grace=3600)
    ids = itertools.count()
    clients = [Client(broker, ids) for _ in range(CLIENTS)]
    views = [View() for _ in range(CLIENTS)]
    gone: set[int] = set()
    dropped: dict[int, tuple[str, str, str]] = {}  # index -> (room, peer id, resume key)
    keys: dict[int, tuple[str, str]] = {}  # index -> (room, resume key) of its last joined

    def absorb(index: int) -> None:
        view = views[index]
        for frame in clients[index].inbox.frames:
            decode_server(frame)  # every frame is a valid server message
            message = json.loads(frame)
            kind = message["type"]
            if kind == "joined":
                view.id, view.room = message["id"], message["room"]
                view.others = [p["id"] for p in message["peers"]]
                keys[index] = (message["room"], message["resume"])
            elif kind == "peer-joined":
                assert message["peer"]["id"] not in view.others
                view.others.append(message["peer"]["id"])
            elif kind == "peer-left":
                view.others.remove(message["id"])
            elif kind in ("signal", "broadcast"):
                # Only ever from someone in our room.
                assert message["from"] in view.others
        clients[index].inbox.frames.clear()

    for index, op in ops:
        if op == ("reconnect",) and index in dropped:
            room, peer_id, key = dropped.pop(index)
            clients[index] = Client(broker, ids)
            views[index] = View()
            gone.discard(index)
            await clients[index].feed({"type": "join", "room": room, "name": "r", "resume": key})
            absorb(index)
            # Same peer, same room: nobody else heard of it.
            assert views[index].id == peer_id
            for i in range(CLIENTS):
                absorb(i)
            continue
        if index in gone:
            continue
        client = clients[index]
        match op:
            case ("join", room):
                await client.feed({"type": "join", "room": room, "name": f"n{index}"})
            case ("signal", target, data):
                to = views[target].id or "nobody"
                await client.feed({"type": "signal", "to": to, "data": data})
            case ("broadcast", data):
                await client.feed({"type": "broadcast", "data": data})
            case ("leave",):
                await client.feed({"type": "leave"})
                if client.session.room is None:
                    views[index].room = None
                    views[index].others = []
            case ("disconnect",):
                await client.executor.run(client.session.close(resumable=False))
                gone.add(index)
            case ("drop",):
                peer, joined_key = client.session.peer, keys.get(index)
                await client.disconnect()
                gone.add(index)
                if peer is not None and joined_key is not None:
                    dropped[index] = (joined_key[0], peer.id, joined_key[1])
            case ("garbage", raw):
                await client.feed(raw.decode("utf-8", "replace"))
        for i in range(CLIENTS):
            absorb(i)

    # A peer is in at most one room.
    everyone = [peer for room in broker.rooms.values() for peer in room.members]
    assert len(everyone) == len(set(everyone))
    # Every live member's view equals the broker's presence for its room.
    for index, client in enumerate(clients):
        session = client.session
        if index in gone or session.room is None or session.peer is None:
            continue
        members = list(broker.rooms[session.room].members)
        assert views[index].others == [m for m in members if m != session.peer.id]
    for room in broker.rooms.values():
        assert 0 < len(room.members) <= 3
