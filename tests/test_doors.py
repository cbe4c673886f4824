"""The same rules at every door: /ws on the fast path, /ws through the ASGI route, Socket.IO.

Each door is a thin Link around one Connection core (connection.py), so a
client meets the same limits, errors, departures and drain through any of
them. Each case runs once per door against a real `rtcroom serve`, with a
v1 client watching the room.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import socketio
import websockets
from conftest import RunningServer
from test_endpoints_socketio import Tutorial
from test_serve import Peer

DOORS = ["fast", "asgi", "socketio"]


class V1Client:
    """A protocol v1 client over /ws."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.peer: Peer | None = None
        self.pending: list[dict[str, Any]] = []

    async def connect(self) -> None:
        self.peer = Peer(await websockets.connect(self.server.ws_url))

    async def join(self, room: str, name: str) -> None:
        """Join; a refusal is kept for error()."""
        assert self.peer is not None
        await self.peer.send({"type": "join", "room": room, "name": name})
        answer = await self.peer.recv()
        if answer["type"] == "error":
            self.pending.append(answer)
        else:
            assert answer["type"] == "joined", answer

    async def broadcast(self, data: Any) -> None:
        assert self.peer is not None
        await self.peer.send({"type": "broadcast", "data": data})

    async def error(self) -> str:
        assert self.peer is not None
        message = self.pending.pop(0) if self.pending else await self.peer.recv()
        assert message["type"] == "error", message
        code: str = message["code"]
        return code

    async def refusal(self) -> str:
        """Connect while the server refuses us: the error's code."""
        await self.connect()
        return await self.error()

    async def close(self) -> None:
        if self.peer is not None:
            await self.peer.ws.close()

    async def bye(self) -> None:
        """The server's bye, then its close with 1012 (service restart: resume elsewhere)."""
        assert self.peer is not None
        assert (await self.peer.recv())["type"] == "bye"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await self.peer.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012


class SocketIOClient:
    """A client of the Flask-SocketIO tutorial's contract."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.tutorial = Tutorial()
        self.room = ""

    async def connect(self) -> None:
        await self.tutorial.connect(self.server)

    async def join(self, room: str, name: str) -> None:
        self.room = room
        await self.tutorial.emit("join", {"username": name, "room": room})

    async def broadcast(self, data: Any) -> None:
        await self.tutorial.emit("data", {"username": "x", "room": self.room, "data": data})

    async def error(self) -> str:
        event, data = await self.tutorial.next()
        while event == "ready":  # told to offer to the v1 peer: not what we look for
            event, data = await self.tutorial.next()
        assert event == "rtcroom-error", (event, data)
        code: str = data["code"]
        return code

    async def refusal(self) -> str:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await self.connect()
        message: str = self.tutorial.refusal["message"]
        return message.split(":")[0]

    async def close(self) -> None:
        await self.tutorial.close()

    async def bye(self) -> None:
        """Disconnected by the server (the tutorials' clients have no bye)."""
        await asyncio.wait_for(self.tutorial.disconnected.wait(), 5)


Client = V1Client | SocketIOClient


class Door:
    """One door of a real `rtcroom serve`: its clients, and v1 watchers of its rooms."""

    def __init__(self, kind: str, start_server: Callable[..., RunningServer]) -> None:
        self.kind = kind
        self.start_server = start_server
        self.server: RunningServer
        self.made: list[Client] = []
        self.watchers: list[Peer] = []

    def start(self, *args: str) -> RunningServer:
        websocket = "asgi" if self.kind == "asgi" else "fast"
        self.server = self.start_server(*args, env={"RTCROOM_WEBSOCKET": websocket})
        return self.server

    def client(self) -> Client:
        made = SocketIOClient(self.server) if self.kind == "socketio" else V1Client(self.server)
        self.made.append(made)
        return made

    async def watch(self, room: str) -> Peer:
        """A v1 client in `room`, over /ws as this door's server serves it."""
        watcher = Peer(await websockets.connect(self.server.ws_url))
        self.watchers.append(watcher)
        await watcher.join(room, "watcher")
        return watcher

    async def close(self) -> None:
        for client in self.made:
            await client.close()
        for watcher in self.watchers:
            await watcher.ws.close()


@pytest.fixture(params=DOORS)
async def door(
    request: pytest.FixtureRequest, start_server: Callable[..., RunningServer]
) -> AsyncIterator[Door]:
    opened = Door(request.param, start_server)
    yield opened
    await opened.close()


async def test_a_departure_is_announced_at_once(door: Door) -> None:
    door.start()
    watcher = await door.watch("r")
    subject = door.client()
    await subject.connect()
    await subject.join("r", "subject")
    joined = await watcher.recv()
    assert joined["type"] == "peer-joined" and joined["peer"]["name"] == "subject"
    await subject.close()
    # The default resume grace is 20 s: a departure does not wait for it.
    assert await watcher.recv(timeout=1.0) == {"type": "peer-left", "id": joined["peer"]["id"]}


async def test_the_same_limits_and_errors(door: Door) -> None:
    door.start(
        *("--max-connections-per-address", "3", "--max-message-size", "2048", "--max-peers", "2")
    )
    watcher = await door.watch("r")
    subject = door.client()
    await subject.connect()
    await subject.join("r", "subject")
    assert (await watcher.recv())["type"] == "peer-joined"
    # Over the size limit: an error, nothing relayed, still usable.
    await subject.broadcast({"blob": "x" * 4000})
    assert await subject.error() == "too-large"
    await watcher.nothing()
    await subject.broadcast({"ok": 1})
    assert (await watcher.recv())["data"] == {"ok": 1}
    # The room holds two.
    third = door.client()
    await third.connect()
    await third.join("r", "third")
    assert await third.error() == "room-full"
    # Three connections from this address are open: a fourth is refused.
    assert await door.client().refusal() == "rate-limited"


async def test_a_drain_says_bye_at_every_door(door: Door) -> None:
    server = door.start()
    subject = door.client()
    await subject.connect()
    await subject.join("r", "subject")
    await asyncio.sleep(0.2)
    server.process.send_signal(signal.SIGTERM)
    await subject.bye()
    assert await asyncio.to_thread(server.process.wait, 15) == 0
