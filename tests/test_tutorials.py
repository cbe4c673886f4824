"""The Socket.IO translator alone: tutorial events in, v1 frames out, and back.

Then tutorial clients and v1 clients in rooms through real Sessions and the
MemoryBroker, no sockets: who gets `ready`, who offers, what arrives.
"""

from __future__ import annotations

import json
from typing import Any

from test_session import Inbox

from rtcroom.broker import MemoryBroker
from rtcroom.connection import Executor
from rtcroom.session import Session
from rtcroom.tutorials import SOCKET_IO, Emit, Translator

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
CANDIDATE = {"type": "candidate", "candidate": {"candidate": "candidate:1", "sdpMid": "0"}}


def frames(messages: list[str]) -> list[dict[str, Any]]:
    return [json.loads(m) for m in messages]


def test_flask_join_and_data_become_v1_frames() -> None:
    t = Translator()
    assert t.connected() == []
    assert frames(t.event("join", {"username": "ann", "room": "r1"})) == [
        {"type": "join", "room": "r1", "name": "ann"}
    ]
    with_token = Translator(token="T")
    assert frames(with_token.event("join", {"username": "ann", "room": "r1"}))[0]["token"] == "T"
    t.frame(
        json.dumps(
            {
                "type": "joined",
                "id": "me",
                "room": "r1",
                "peers": [{"id": "p", "name": "P"}],
                "iceServers": [],
            }
        )
    )
    # Flask payloads wrap the data; descriptions and candidates become signals.
    assert frames(t.event("data", {"username": "ann", "room": "r1", "data": OFFER})) == [
        {"type": "signal", "to": "p", "data": {"description": OFFER}}
    ]
    assert frames(t.event("data", {"username": "ann", "room": "r1", "data": CANDIDATE})) == [
        {"type": "signal", "to": "p", "data": {"candidate": CANDIDATE["candidate"]}}
    ]
    assert frames(t.event("data", {"username": "a", "room": "r1", "data": {"hello": 1}})) == [
        {"type": "broadcast", "data": {"hello": 1}}
    ]
    assert t.event("unknown", {}) == []


def test_implicit_room_joins_on_connect_and_takes_raw_data() -> None:
    t = Translator(implicit_room="room")
    assert frames(t.connected()) == [{"type": "join", "room": "room", "name": "guest"}]
    assert t.event("join", {"username": "x", "room": "other"}) == []  # no join in this contract
    t.frame(
        json.dumps({"type": "joined", "id": "me", "room": "room", "peers": [], "iceServers": []})
    )
    t.frame(json.dumps({"type": "peer-joined", "peer": {"id": "p", "name": "g", "via": SOCKET_IO}}))
    assert frames(t.event("data", OFFER)) == [
        {"type": "signal", "to": "p", "data": {"description": OFFER}}
    ]


def test_v1_frames_become_tutorial_events() -> None:
    t = Translator()
    signal = {"type": "signal", "from": "p", "data": {"description": OFFER}}
    assert t.frame(json.dumps(signal)) == [Emit("data", OFFER)]
    candidate = {"type": "signal", "from": "p", "data": {"candidate": CANDIDATE["candidate"]}}
    assert t.frame(json.dumps(candidate)) == [Emit("data", CANDIDATE)]
    end = {"type": "signal", "from": "p", "data": {"candidate": None}}
    assert t.frame(json.dumps(end)) == []
    assert t.frame(json.dumps({"type": "broadcast", "from": "p", "data": [1]})) == [
        Emit("data", [1])
    ]
    error = {"type": "error", "code": "room-full", "message": "full"}
    assert t.frame(json.dumps(error)) == [
        Emit("rtcroom-error", {"code": "room-full", "message": "full"})
    ]


class Client:
    """A Session with an Inbox; `translator` set for a tutorial client."""

    def __init__(self, broker: MemoryBroker, n: int, translator: Translator | None = None) -> None:
        self.broker = broker
        self.translator = translator
        self.session = Session(
            peer_id_factory=lambda: f"peer{n}", via=SOCKET_IO if translator else None
        )
        self.inbox = Inbox()

    async def send(self, frames_: list[str]) -> None:
        for frame in frames_:
            await Executor(self.session, self.broker, self.inbox).run(self.session.receive(frame))

    def received(self) -> list[Any]:
        """What the client got: v1 messages, or Socket.IO events through the translator."""
        out = list(self.inbox.frames)
        self.inbox.frames.clear()
        if self.translator is None:
            return [json.loads(f) for f in out]
        return [e for f in out for e in self.translator.frame(f)]


async def test_two_tutorial_clients_follow_the_tutorial_contract() -> None:
    broker = MemoryBroker()
    a = Client(broker, 1, Translator())
    b = Client(broker, 2, Translator())
    assert a.translator and b.translator
    await a.send(a.translator.event("join", {"username": "ann", "room": "r"}))
    assert a.received() == []
    await b.send(b.translator.event("join", {"username": "bo", "room": "r"}))
    # The one already there gets ready and offers; the newcomer waits.
    assert a.received() == [Emit("ready", {"username": "bo"})]
    assert b.received() == []
    await a.send(a.translator.event("data", {"username": "ann", "room": "r", "data": OFFER}))
    assert b.received() == [Emit("data", OFFER)]


async def test_tutorial_client_meets_a_v1_peer_either_way() -> None:
    broker = MemoryBroker()
    v1 = Client(broker, 1)
    await v1.send(['{"type":"join","room":"r","name":"web"}'])
    v1.received()
    # A tutorial newcomer gets ready itself: it must offer, as v1 newcomers do.
    sio = Client(broker, 2, Translator())
    assert sio.translator
    await sio.send(sio.translator.event("join", {"username": "tut", "room": "r"}))
    assert sio.received() == [Emit("ready", {"username": "tut"})]
    assert v1.received() == [
        {"type": "peer-joined", "peer": {"id": "peer2", "name": "tut", "via": SOCKET_IO}}
    ]
    await sio.send(sio.translator.event("data", {"username": "tut", "room": "r", "data": OFFER}))
    assert v1.received() == [{"type": "signal", "from": "peer2", "data": {"description": OFFER}}]
    answer = {"description": {"type": "answer", "sdp": "v=0\r\n"}}
    await v1.send([json.dumps({"type": "signal", "to": "peer2", "data": answer})])
    assert sio.received() == [Emit("data", {"type": "answer", "sdp": "v=0\r\n"})]

    # A v1 newcomer offers to a tutorial client, which gets no ready (no glare).
    broker2 = MemoryBroker()
    first = Client(broker2, 3, Translator())
    assert first.translator
    await first.send(first.translator.event("join", {"username": "tut", "room": "r"}))
    newcomer = Client(broker2, 4)
    await newcomer.send(['{"type":"join","room":"r","name":"web"}'])
    assert first.received() == []
    await newcomer.send(
        [json.dumps({"type": "signal", "to": "peer3", "data": {"description": OFFER}})]
    )
    assert first.received() == [Emit("data", OFFER)]


def test_descriptions_and_candidates_go_to_the_one_partner() -> None:
    t = Translator()
    t.frame(json.dumps({"type": "joined", "id": "me", "room": "r", "peers": [], "iceServers": []}))
    sio = {"type": "peer-joined", "peer": {"id": "s", "name": "s", "via": SOCKET_IO}}
    assert t.frame(json.dumps(sio)) == [Emit("ready", {"username": "s"})]
    t.frame(json.dumps({"type": "peer-joined", "peer": {"id": "w", "name": "w"}}))
    # Its offer follows the ready it got: to s alone, not to w.
    assert [m["to"] for m in frames(t.event("data", {"data": OFFER}))] == ["s"]
    # w (a v1 newcomer) offers: the answer and candidates go back to w.
    t.frame(json.dumps({"type": "signal", "from": "w", "data": {"description": OFFER}}))
    assert [m["to"] for m in frames(t.event("data", {"data": CANDIDATE}))] == ["w"]
    # Once the partner leaves, the room again.
    t.frame(json.dumps({"type": "peer-left", "id": "w"}))
    assert [m["to"] for m in frames(t.event("data", {"data": CANDIDATE}))] == ["s"]
    # A newcomer among v1 peers offers to the latest of them.
    n = Translator()
    joined = {
        "type": "joined",
        "id": "me",
        "room": "r",
        "peers": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}],
        "iceServers": [],
    }
    assert n.frame(json.dumps(joined)) == [Emit("ready", {"username": "guest"})]
    assert [m["to"] for m in frames(n.event("data", {"data": OFFER}))] == ["b"]
