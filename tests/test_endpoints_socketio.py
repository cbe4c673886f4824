"""Socket.IO clients written to the tutorials' contracts, against `rtcroom serve`.

The clients are python-socketio's own (polling first, then the WebSocket
upgrade, as socket.io-client does); the browser tests (test_socketio_browser.py)
run socket.io-client itself.
"""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio
from conftest import RunningRedis, RunningServer
from test_serve import Peer, connect
from test_serve_faults import SECRET, token

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\n"}
CANDIDATE = {
    "type": "candidate",
    "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"},
}


class Tutorial:
    """A Socket.IO client that records every event it gets, in order."""

    def __init__(self) -> None:
        # The door loads python-socketio in the background at start-up
        # (app.py SocketIODoor): a request that comes first waits for it, up
        # to 20 s on a loaded machine, as long as socket.io-client waits.
        self.client = socketio.AsyncClient(reconnection=False, request_timeout=20)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        # What the server said when it refused the connection.
        self.refusal: Any = None

        async def record(event: str, *args: Any) -> None:
            await self.events.put((event, args[0] if args else None))

        self.client.on("*", record)
        self.client.on("disconnect", lambda *reason: self.disconnected.set())
        self.client.on("connect_error", lambda data: setattr(self, "refusal", data))

    async def connect(self, server: RunningServer, **options: Any) -> Tutorial:
        await self.client.connect(server.url, wait_timeout=20, **options)
        return self

    async def emit(self, event: str, data: Any) -> None:
        await self.client.emit(event, data)

    async def next(self, timeout: float = 15.0) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def nothing(self, wait: float = 0.3) -> None:
        with pytest.raises(TimeoutError):
            got = await asyncio.wait_for(self.events.get(), wait)
            print("unexpected", got)

    async def close(self) -> None:
        await self.client.disconnect()


@pytest.fixture
async def tutorials() -> AsyncIterator[Callable[[], Tutorial]]:
    made: list[Tutorial] = []

    def make() -> Tutorial:
        made.append(Tutorial())
        return made[-1]

    yield make
    for tutorial in made:
        await tutorial.close()


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    opened: list[Peer] = []
    yield opened
    for peer in opened:
        await peer.ws.close()


def handshake(server: RunningServer, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """The Engine.IO handshake a browser makes first: status and body."""
    url = server.url + "/socket.io/?EIO=4&transport=polling"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


async def flask_join(tutorial: Tutorial, room: str, name: str) -> None:
    await tutorial.emit("join", {"username": name, "room": room})


async def test_flask_tutorial_contract(server: RunningServer, tutorials: Any) -> None:
    ann = await tutorials().connect(server)
    await flask_join(ann, "r", "ann")
    bo = await tutorials().connect(server, transports=["websocket"])
    await flask_join(bo, "r", "bo")
    # Another room hears nothing of this one.
    elsewhere = await tutorials().connect(server)
    await flask_join(elsewhere, "other", "eve")

    # The one already there gets ready and offers; the newcomer waits.
    assert await ann.next() == ("ready", {"username": "bo"})
    await bo.nothing()
    await ann.emit("data", {"username": "ann", "room": "r", "data": OFFER})
    assert await bo.next() == ("data", OFFER)
    await bo.emit("data", {"username": "bo", "room": "r", "data": ANSWER})
    await bo.emit("data", {"username": "bo", "room": "r", "data": CANDIDATE})
    assert await ann.next() == ("data", ANSWER)
    assert await ann.next() == ("data", CANDIDATE)
    # Anything else in `data` reaches the others as it is.
    await ann.emit("data", {"username": "ann", "room": "r", "data": {"chat": "hi"}})
    assert await bo.next() == ("data", {"chat": "hi"})
    await elsewhere.nothing()


async def test_single_room_tutorial_contract(
    start_server: Callable[..., RunningServer], tutorials: Any
) -> None:
    server = start_server("--socketio-room", "lobby")
    # Connecting is joining: no join event in this contract.
    first = await tutorials().connect(server)
    await asyncio.sleep(0.8)
    second = await tutorials().connect(server)
    # Those already there get ready, without a payload.
    assert await first.next(timeout=3) == ("ready", None)
    await second.nothing()
    await first.emit("data", OFFER)
    assert await second.next() == ("data", OFFER)
    await second.emit("data", ANSWER)
    assert await first.next() == ("data", ANSWER)
    # The room is --socketio-room: a protocol v1 client there sees both.
    v1 = await connect(server)
    try:
        joined = await v1.join("lobby", "web")
        assert [(p["name"], p.get("via")) for p in joined["peers"]] == [
            ("guest", "socket.io"),
            ("guest", "socket.io"),
        ]
    finally:
        await v1.ws.close()


async def test_tutorial_client_and_v1_client_in_one_room(
    server: RunningServer, tutorials: Any, peers: list[Peer]
) -> None:
    web = await connect(server)
    peers.append(web)
    await web.join("mixed", "web")
    tut = await tutorials().connect(server)
    await flask_join(tut, "mixed", "tut")
    # The tutorial client is the newcomer: it gets ready and offers.
    assert await tut.next() == ("ready", {"username": "tut"})
    joined = await web.recv()
    assert joined["type"] == "peer-joined"
    assert joined["peer"]["name"] == "tut" and joined["peer"]["via"] == "socket.io"
    tut_id = joined["peer"]["id"]
    await tut.emit("data", {"username": "tut", "room": "mixed", "data": OFFER})
    await tut.emit("data", {"username": "tut", "room": "mixed", "data": CANDIDATE})
    assert await web.recv() == {"type": "signal", "from": tut_id, "data": {"description": OFFER}}
    assert await web.recv() == {
        "type": "signal",
        "from": tut_id,
        "data": {"candidate": CANDIDATE["candidate"]},
    }
    await web.send({"type": "signal", "to": tut_id, "data": {"description": ANSWER}})
    await web.send({"type": "signal", "to": tut_id, "data": {"candidate": None}})
    await web.send({"type": "broadcast", "data": {"chat": "hello"}})
    assert await tut.next() == ("data", ANSWER)
    # The end of candidates is not passed on: the tutorials' handler would throw.
    assert await tut.next() == ("data", {"chat": "hello"})

    # A v1 newcomer offers to the tutorial client, which gets no ready.
    late = await connect(server)
    peers.append(late)
    joined = await late.join("mixed", "late")
    assert [p["name"] for p in joined["peers"]] == ["web", "tut"]
    await late.send({"type": "signal", "to": tut_id, "data": {"description": OFFER}})
    assert await tut.next() == ("data", OFFER)
    assert (await web.recv())["type"] == "peer-joined"
    # When the tutorial client goes, v1 peers see it leave at once.
    await tut.close()
    assert await web.recv() == {"type": "peer-left", "id": tut_id}
    assert await late.recv() == {"type": "peer-left", "id": tut_id}


async def test_errors_reach_the_client_as_rtcroom_error(
    start_server: Callable[..., RunningServer], tutorials: Any
) -> None:
    server = start_server("--max-peers", "2", "--max-message-size", "2048")
    a = await tutorials().connect(server)
    await flask_join(a, "bad room!", "a")
    event, data = await a.next()
    assert event == "rtcroom-error" and data["code"] == "bad-message"
    assert "room" in data["message"]
    # Still usable afterwards.
    await flask_join(a, "full", "a")
    b = await tutorials().connect(server)
    await flask_join(b, "full", "b")
    assert (await a.next())[0] == "ready"
    c = await tutorials().connect(server)
    await flask_join(c, "full", "c")
    event, data = await c.next()
    assert (event, data["code"]) == ("rtcroom-error", "room-full")
    # Over the size limit: refused, never relayed.
    await a.emit("data", {"username": "a", "room": "full", "data": {"blob": "x" * 4000}})
    event, data = await a.next()
    assert (event, data["code"]) == ("rtcroom-error", "too-large")
    await b.nothing()
    await a.emit("data", {"username": "a", "room": "full", "data": OFFER})
    assert await b.next() == ("data", OFFER)


async def test_origin_connection_limit_and_tokens(
    start_server: Callable[..., RunningServer], tutorials: Any
) -> None:
    server = start_server("--max-connections-per-address", "2", env={"RTCROOM_AUTH_SECRET": SECRET})
    # A page of another site may not connect (cross-site hijacking).
    status, body = handshake(server, {"Origin": "https://evil.example"})
    assert status == 400 and b"not an accepted origin" in body
    # Tokens come in the Socket.IO auth payload.
    granted = token("r", ["publish", "subscribe", "data"])
    a = await tutorials().connect(server, auth={"token": granted})
    await flask_join(a, "r", "a")
    b = await tutorials().connect(server, headers={"Origin": "http://localhost:3000"})
    await flask_join(b, "r", "b")
    event, data = await b.next()
    assert (event, data["code"]) == ("rtcroom-error", "unauthorized")
    await a.nothing()
    # Two connections from this address are open: the third is refused.
    third = tutorials()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await third.connect(server)
    assert third.refusal == {"message": "rate-limited: more than 2 connections from your address"}


@pytest.mark.parametrize(
    ("args", "env"), [(["--no-socketio"], {}), ([], {"RTCROOM_SOCKETIO": "off"})]
)
async def test_off_with_a_flag(
    start_server: Callable[..., RunningServer], args: list[str], env: dict[str, str]
) -> None:
    assert handshake(start_server(*args, env=env))[0] == 404


async def test_sigterm_disconnects_socketio_clients(server: RunningServer, tutorials: Any) -> None:
    a = await tutorials().connect(server)
    await flask_join(a, "r", "a")
    await asyncio.sleep(0.2)
    server.process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(a.disconnected.wait(), 5)
    assert await asyncio.to_thread(server.process.wait, 15) == 0


async def test_tutorial_clients_on_different_processes_share_rooms(
    start_server: Callable[..., RunningServer],
    redis_server: RunningRedis,
    tutorials: Any,
    peers: list[Peer],
) -> None:
    s1, s2 = (start_server("--broker", redis_server.url) for _ in range(2))
    ann = await tutorials().connect(s1)
    await flask_join(ann, "far", "ann")
    bo = await tutorials().connect(s2)
    await flask_join(bo, "far", "bo")
    assert await ann.next() == ("ready", {"username": "bo"})
    await ann.emit("data", {"username": "ann", "room": "far", "data": OFFER})
    assert await bo.next() == ("data", OFFER)
    await bo.emit("data", {"username": "bo", "room": "far", "data": ANSWER})
    assert await ann.next() == ("data", ANSWER)
    # A v1 client on a third process sees both as Socket.IO peers.
    s3 = start_server("--broker", redis_server.url)
    web = await connect(s3)
    peers.append(web)
    joined = await web.join("far", "web")
    assert [(p["name"], p.get("via")) for p in joined["peers"]] == [
        ("ann", "socket.io"),
        ("bo", "socket.io"),
    ]
    # The v1 newcomer offers; the tutorial clients only answer.
    await ann.nothing()
    await bo.nothing()
    ann_id = joined["peers"][0]["id"]
    await web.send({"type": "signal", "to": ann_id, "data": {"description": OFFER}})
    assert await ann.next() == ("data", OFFER)
    await ann.emit("data", {"username": "ann", "room": "far", "data": ANSWER})
    assert await web.recv() == {"type": "signal", "from": ann_id, "data": {"description": ANSWER}}


async def test_workers_serve_the_websocket_transport_only(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis, tutorials: Any
) -> None:
    server = start_server("--workers", "2", "--broker", redis_server.url)
    # Polling would land on either worker: refused outright, never at random.
    status, body = handshake(server)
    assert status == 400 and b"Invalid transport" in body
    assert "transports: ['websocket']" in server.log.read_text()
    # Clients that connect with the WebSocket transport meet across workers.
    clients = []
    for i in range(6):
        clients.append(await tutorials().connect(server, transports=["websocket"]))
        await flask_join(clients[-1], f"pair{i // 2}", f"u{i}")
    for first in clients[::2]:
        assert (await first.next())[0] == "ready"
        await first.emit("data", {"username": "x", "room": "x", "data": OFFER})
    for second in clients[1::2]:
        assert await second.next() == ("data", OFFER)


async def test_a_late_join_leaves_the_single_room(
    server: RunningServer, tutorials: Any, peers: list[Peer]
) -> None:
    web = await connect(server)
    peers.append(web)
    await web.join("room", "web")
    # A client that connects and joins only later (a button click, say) is
    # in the single room meanwhile, then goes to its own.
    late = await tutorials().connect(server)
    joined = await web.recv(timeout=3)
    assert joined["type"] == "peer-joined" and joined["peer"]["via"] == "socket.io"
    assert await late.next() == ("ready", None)  # the newcomer among v1 peers offers
    await flask_join(late, "own", "late")
    assert await web.recv() == {"type": "peer-left", "id": joined["peer"]["id"]}
    other = await tutorials().connect(server)
    await flask_join(other, "own", "other")
    assert await late.next() == ("ready", {"username": "other"})
