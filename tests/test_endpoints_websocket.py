"""/ws frame handling, byte by byte, against `rtcroom serve` (both ways of serving /ws).

The fast path (endpoints/websocket.py) parses the frames clients send most; everything else goes
through websockets' parser. These tests write raw RFC 6455 frames on a
socket: several in one write, one split over many, fragments with a ping
between them, and the malformed ones that must end the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
from typing import Any

import pytest
import websockets
from conftest import RunningServer

# Every case against /ws on the fast path and through the ASGI route.
pytestmark = pytest.mark.every_websocket_path


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, masked: bool = True) -> bytes:
    """A client's frame: masked unless told otherwise."""
    head = bytes([(0x80 if fin else 0) | opcode])
    length = len(payload)
    mask_bit = 0x80 if masked else 0
    if length < 126:
        head += bytes([mask_bit | length])
    elif length < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", length)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
    if not masked:
        return head + payload
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def text(message: dict[str, Any]) -> bytes:
    return frame(json.dumps(message).encode())


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, server: RunningServer) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert response.startswith(b"HTTP/1.1 101"), response
        return cls(reader, writer)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv_frame(self) -> tuple[int, bytes]:
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        assert not second & 0x80, "server frames are not masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return first & 0x0F, await self.reader.readexactly(length)

    async def recv(self) -> dict[str, Any]:
        opcode, payload = await self.recv_frame()
        assert opcode == 0x1, (opcode, payload)
        message: dict[str, Any] = json.loads(payload)
        return message

    async def close_code(self) -> int:
        """Read until the server's close frame; its code."""
        while True:
            opcode, payload = await self.recv_frame()
            if opcode == 0x8:
                code: int = struct.unpack("!H", payload[:2])[0]
                return code

    def close(self) -> None:
        self.writer.close()


async def test_frames_together_and_apart(server: RunningServer) -> None:
    async with websockets.connect(server.ws_url) as other:
        await other.send(json.dumps({"type": "join", "room": "raw", "name": "other"}))
        other_id = json.loads(await other.recv())["id"]
        client = await RawClient.connect(server)
        try:
            # A join frame written one byte at a time.
            for byte in text({"type": "join", "room": "raw", "name": "raw"}):
                await client.write(bytes([byte]))
                await asyncio.sleep(0.001)
            joined = await client.recv()
            assert joined["type"] == "joined"
            assert [p["id"] for p in joined["peers"]] == [other_id]
            assert json.loads(await other.recv())["type"] == "peer-joined"
            # Three frames in one write: short, 16-bit and 64-bit lengths.
            medium = {"sdp": "v=0\r\n" + "a" * 300}
            huge = {"sdp": "x" * 70_000}  # above the 64 KiB protocol limit
            await client.write(
                text({"type": "signal", "to": other_id, "data": {"n": 1}})
                + text({"type": "signal", "to": other_id, "data": medium})
                + text({"type": "signal", "to": other_id, "data": huge})
            )
            first = json.loads(await other.recv())
            second = json.loads(await other.recv())
            assert first["data"] == {"n": 1} and second["data"] == medium
            assert (await client.recv())["code"] == "too-large"
            # Still usable, and the huge one was never relayed.
            await client.write(text({"type": "broadcast", "data": "after"}))
            assert json.loads(await other.recv())["data"] == "after"
        finally:
            client.close()


async def test_fragments_ping_and_binary(server: RunningServer) -> None:
    async with websockets.connect(server.ws_url) as other:
        await other.send(json.dumps({"type": "join", "room": "frag", "name": "other"}))
        await other.recv()
        client = await RawClient.connect(server)
        try:
            await client.write(text({"type": "join", "room": "frag", "name": "raw"}))
            assert (await client.recv())["type"] == "joined"
            await other.recv()  # peer-joined
            message = json.dumps({"type": "broadcast", "data": "in three parts"}).encode()
            await client.write(
                frame(message[:10], opcode=0x1, fin=False)
                + frame(b"are you there", opcode=0x9)  # a ping between fragments
                + frame(message[10:20], opcode=0x0, fin=False)
            )
            assert await client.recv_frame() == (0xA, b"are you there")
            await client.write(frame(message[20:], opcode=0x0))
            assert json.loads(await other.recv())["data"] == "in three parts"
            await client.write(frame(b"\x00\x01", opcode=0x2))
            refused = await client.recv()
            assert refused["code"] == "bad-message" and "binary" in refused["message"]
        finally:
            client.close()


async def test_malformed_frames_end_the_connection_and_the_room_hears_at_once(
    server: RunningServer,
) -> None:
    """An end the server decides is a departure: no resume grace (20 s here), no ghost."""
    cases: list[tuple[bytes, int | None]] = [
        (frame(b'{"type":"leave"}', masked=False), 1002),  # clients must mask
        (frame(b"\xff\xfe not UTF-8"), 1007),
        # Announces 2**40 bytes: refused from the header, nothing buffered.
        (b"\x81\xff" + struct.pack("!Q", 1 << 40) + os.urandom(4), 1009),
        # Over the hard limit (4x the protocol's, at least 1 MiB) for real: the
        # server may reset the connection before its close frame is read.
        (frame(b'{"type":"broadcast","data":"' + b"x" * (2 << 20) + b'"}'), None),
    ]
    async with websockets.connect(server.ws_url) as watcher:
        await watcher.send(json.dumps({"type": "join", "room": "bad", "name": "watcher"}))
        assert json.loads(await watcher.recv())["type"] == "joined"
        for data, expected in cases:
            client = await RawClient.connect(server)
            try:
                await client.write(text({"type": "join", "room": "bad", "name": "raw"}))
                joined = await client.recv()
                assert json.loads(await watcher.recv())["type"] == "peer-joined"
                with contextlib.suppress(ConnectionError):
                    await client.write(data)
                if expected is not None:
                    assert await client.close_code() == expected, data[:10]
            finally:
                client.close()
            left = json.loads(await asyncio.wait_for(watcher.recv(), 1.0))
            assert left == {"type": "peer-left", "id": joined["id"]}, data[:10]
    # The server is none the worse.
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "join", "room": "after", "name": "x"}))
        assert json.loads(await ws.recv())["type"] == "joined"
