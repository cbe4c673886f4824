"""`rtcroom serve` as a user starts it, spoken to over real WebSockets on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from conftest import RunningServer

# Every case against /ws on the fast path, through the ASGI route, and
# mounted at /rtc inside a host app.
pytestmark = pytest.mark.every_websocket_path(mounted=True)


class Peer:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message

    async def nothing(self, wait: float = 0.2) -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(self.ws.recv(), wait)

    async def join(self, room: str, name: str) -> dict[str, Any]:
        await self.send({"type": "join", "room": room, "name": name})
        joined = await self.recv()
        assert joined["type"] == "joined", joined
        return joined


def raw_join(server: RunningServer, room: str, name: str) -> tuple[socket.socket, str]:
    """Join over a bare socket (RFC 6455 handshake by hand) that we can stop reading."""
    port = server.port
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {server.prefix}/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    payload = json.dumps({"type": "join", "room": room, "name": name}).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    received = b""
    while b'"joined"' not in received or not received.endswith(b"}"):
        received += sock.recv(4096)
    match = re.search(rb'"id":"([^"]+)"', received)
    assert match, received
    return sock, match.group(1).decode()


async def connect(server: RunningServer) -> Peer:
    return Peer(await websockets.connect(server.ws_url))


async def team_scenario(a: Peer, b: Peer, c: Peer, d: Peer) -> None:
    """Protocol v1 among four connected clients: a, b and c in one room, d in another.

    Join order, relay, broadcast, room isolation, leave and disconnect; the
    Redis tests run it with the clients spread over processes.
    """
    ja = await a.join("team", "Ann")
    jb = await b.join("team", "Bo")
    assert jb["peers"] == [{"id": ja["id"], "name": "Ann"}]
    assert await a.recv() == {"type": "peer-joined", "peer": {"id": jb["id"], "name": "Bo"}}
    jc = await c.join("team", "Cy")
    assert jc["peers"] == [{"id": ja["id"], "name": "Ann"}, {"id": jb["id"], "name": "Bo"}]
    assert jc["iceServers"] == []
    await a.recv(), await b.recv()
    jd = await d.join("other", "Di")
    assert jd["peers"] == []

    offer = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
    await c.send({"type": "signal", "to": ja["id"], "data": offer})
    assert await a.recv() == {"type": "signal", "from": jc["id"], "data": offer}
    await a.send({"type": "signal", "to": jb["id"], "data": {"candidate": None}})
    assert await b.recv() == {"type": "signal", "from": ja["id"], "data": {"candidate": None}}
    await a.send({"type": "broadcast", "data": {"hello": "team"}})
    for peer in (b, c):
        assert await peer.recv() == {
            "type": "broadcast",
            "from": ja["id"],
            "data": {"hello": "team"},
        }
    # Rooms stay apart: d hears nothing and cannot reach team.
    await d.send({"type": "signal", "to": ja["id"], "data": offer})
    assert (await d.recv())["code"] == "unknown-peer"
    await d.nothing()
    await a.nothing()

    await b.send({"type": "leave"})
    for peer in (a, c):
        assert await peer.recv() == {"type": "peer-left", "id": jb["id"]}
    await c.ws.close()
    assert await a.recv() == {"type": "peer-left", "id": jc["id"]}
    await d.nothing()
    for peer in (a, b, d):
        await peer.ws.close()


async def test_protocol_v1_end_to_end(server: RunningServer) -> None:
    await team_scenario(*[await connect(server) for _ in range(4)])


async def test_disconnect_without_close_is_announced_after_the_grace_period(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server("--resume-grace", "1.5")
    a, b = await connect(server), await connect(server)
    await a.join("r", "Ann")
    jb = await b.join("r", "Bo")
    await a.recv()
    # Drop the TCP connection without a closing handshake: b may come back
    # within the grace period, so a hears nothing until it ends.
    b.ws.transport.abort()
    await a.nothing(1.0)
    assert await a.recv() == {"type": "peer-left", "id": jb["id"]}
    await a.ws.close()


async def test_configuration_from_flags_and_environment(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server(
        "--ice-server",
        "stun:stun.example.org:3478",
        "--max-message-size",
        "2048",
        "--max-peers",
        "2",
    )
    a, b, c = [await connect(server) for _ in range(3)]
    joined = await a.join("r", "Ann")
    assert joined["iceServers"] == [{"urls": "stun:stun.example.org:3478"}]
    await b.join("r", "Bo")
    assert (await a.recv())["type"] == "peer-joined"
    await c.send({"type": "join", "room": "r", "name": "Cy"})
    assert (await c.recv())["code"] == "room-full"
    await a.send({"type": "broadcast", "data": "x" * 3000})
    assert (await a.recv())["code"] == "too-large"
    for peer in (a, b, c):
        await peer.ws.close()

    env_server = start_server(env={"RTCROOM_ICE_SERVERS": "stun:a.example:1 turn:b.example:2"})
    e = await connect(env_server)
    joined = await e.join("r", "Eve")
    assert joined["iceServers"] == [{"urls": "stun:a.example:1"}, {"urls": "turn:b.example:2"}]
    await e.ws.close()


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--ice-server", "http://x"], {}, "--ice-server"),
        (["--port", "70000"], {}, "--port"),
        ([], {"RTCROOM_PORT": "eighty"}, "RTCROOM_PORT"),
        (["--max-peers", "1"], {}, "--max-peers"),
        (["--trusted-proxy", "lb.example"], {}, "--trusted-proxy"),
        (["--workers", "0"], {}, "--workers"),
        (["--broker", "redis://127.0.0.1:1/0", "--node-ttl", "0.5"], {}, "--node-ttl"),
        (["--socketio-room", "no spaces"], {}, "--socketio-room"),
        ([], {"RTCROOM_SOCKETIO": "maybe"}, "RTCROOM_SOCKETIO"),
    ],
)
def test_bad_configuration_stops_at_start(
    args: list[str], env: dict[str, str], fragment: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rtcroom", "serve", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=30,
    )
    assert result.returncode == 2
    assert fragment in result.stderr


async def test_a_slow_reader_is_dropped_and_never_holds_up_the_room(
    start_server: Callable[..., RunningServer],
) -> None:
    # A fast sender is allowed here: the point is the reader that never reads.
    server = start_server("--rate", "100000", "--burst", "100000")
    sender, reader = await connect(server), await connect(server)
    await sender.join("r", "sender")
    await reader.join("r", "reader")
    await sender.recv()
    # A client that joins and then never reads again: the TCP buffers fill,
    # then the server's per-connection queue.
    slow, slow_id = raw_join(server, "r", "slow")
    await sender.recv(), await reader.recv()
    payload = "x" * 60_000
    count = 1500  # 90 MB: more than the kernel buffers and the 1024-frame queue
    received = 0
    left: list[str] = []

    async def read() -> None:
        nonlocal received
        while received < count:
            message = await reader.recv(timeout=20)
            if message["type"] == "broadcast":
                received += 1
            elif message["type"] == "peer-left":
                left.append(message["id"])

    reading = asyncio.create_task(read())
    for sent in range(count):
        # The reader keeps up (a few hundred frames behind at most); the
        # slow one never reads at all.
        while sent - received > 300:
            await asyncio.sleep(0.001)
        await sender.send({"type": "broadcast", "data": payload})
    await asyncio.wait_for(reading, 60)
    assert received == count  # the reader got everything, in time
    for _ in range(50):
        if left:
            break
        message = await reader.recv(timeout=10)
        if message["type"] == "peer-left":
            left.append(message["id"])
    assert left == [slow_id]
    for peer in (sender, reader):
        await peer.ws.close()
    slow.close()
