"""Bad input and faults against a real `rtcroom serve`, over real WebSockets.

Each case asserts what the misbehaving client sees, and that a call in
another room goes on untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import websockets
from conftest import RunningServer
from test_serve import Peer, raw_join

from rtcroom.auth import mint_token

# Every case against /ws on the fast path and through the ASGI route.
pytestmark = pytest.mark.every_websocket_path

SECRET = "fault-suite-secret-long-enough-for-hs256"


_opened: list[websockets.ClientConnection] = []


async def connect(server: RunningServer) -> Peer:
    ws = await websockets.connect(server.ws_url)
    _opened.append(ws)
    return Peer(ws)


@pytest.fixture(autouse=True)
async def close_connections() -> AsyncIterator[None]:
    yield
    for ws in _opened:
        ws.transport.abort()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.wait_closed(), 1)
    _opened.clear()


class Bystanders:
    """Two peers in a room of their own, checking their call is unaffected."""

    def __init__(self, a: Peer, b: Peer, b_id: str) -> None:
        self.a, self.b, self.b_id = a, b, b_id

    async def still_fine(self) -> None:
        for i in range(3):
            data = {"candidate": {"candidate": "", "n": i}}
            await self.a.send({"type": "signal", "to": self.b_id, "data": data})
            message = await self.b.recv(timeout=2)
            assert message["data"] == data, message
        await self.a.nothing(0.1)


async def bystanders(server: RunningServer, token: str | None = None) -> Bystanders:
    a, b = await connect(server), await connect(server)
    extra = {"token": token} if token else {}
    await a.send({"type": "join", "room": "elsewhere", "name": "A", **extra})
    assert (await a.recv())["type"] == "joined"
    await b.send({"type": "join", "room": "elsewhere", "name": "B", **extra})
    joined_b = await b.recv()
    assert joined_b["type"] == "joined"
    await a.recv()  # peer-joined
    return Bystanders(a, b, joined_b["id"])


@pytest.fixture
async def open_server(
    start_server: Callable[..., RunningServer],
) -> AsyncIterator[tuple[RunningServer, Bystanders]]:
    server = start_server("--max-message-size", "4096", "--rate", "50", "--burst", "100")
    yield server, await bystanders(server)


async def test_malformed_and_mistyped_messages(open_server: Any) -> None:
    server, others = open_server
    peer = await connect(server)
    cases: list[tuple[str, str, str]] = [
        ("{not json", "bad-message", "not valid JSON"),
        ("[1, 2]", "bad-message", "JSON object"),
        ('{"type": "join", "room": 5, "name": "x"}', "bad-message", "room"),
        ('{"type": "join", "room": "ok", "name": ""}', "bad-message", "name"),
        ('{"type": "signal", "to": 7, "data": {}}', "bad-message", "to"),
        ('{"type": "teleport"}', "unknown-type", "teleport"),
        ('{"no": "type"}', "bad-message", "type"),
        ('{"type": "broadcast", "data": 1}', "not-joined", "join"),
    ]
    for frame, code, words in cases:
        await peer.ws.send(frame)
        error = await peer.recv()
        assert (error["type"], error["code"]) == ("error", code), frame
        assert words in error["message"], error
    await peer.ws.send(b"\x00binary")
    assert (await peer.recv())["code"] == "bad-message"
    # Still usable afterwards.
    await peer.join("mine", "P")
    await others.still_fine()


async def test_huge_messages(open_server: Any) -> None:
    server, others = open_server
    peer = await connect(server)
    await peer.join("mine", "P")
    await peer.send({"type": "broadcast", "data": "x" * 5000})
    error = await peer.recv()
    assert error["code"] == "too-large"
    assert "4096" in error["message"]
    # Far above the limit (over 1 MiB), the frame is not even read: the
    # connection ends with 1009 (message too big), often before the client
    # has finished writing the frame, so that its send fails already.
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.ws.send("x" * (2 << 20))
        await peer.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await others.still_fine()


async def test_ten_thousand_messages_in_a_burst(open_server: Any) -> None:
    server, others = open_server
    flooder, victim = await connect(server), await connect(server)
    await flooder.join("mine", "F")
    victim_id = (await victim.join("mine", "V"))["id"]
    await flooder.recv()
    frame = json.dumps({"type": "signal", "to": victim_id, "data": {"candidate": None}})
    started = time.monotonic()
    for _ in range(10_000):
        await flooder.ws.send(frame)
    errors = []
    with pytest.raises(TimeoutError):
        while True:
            errors.append(await flooder.recv(timeout=0.5))
    elapsed = time.monotonic() - started
    # At most one error a second for the flood, not one per message.
    assert {e["code"] for e in errors} == {"rate-limited"}
    assert 1 <= len(errors) <= elapsed + 1
    # The victim got the burst allowance (100, with the join) and the rate.
    received = 0
    with pytest.raises(TimeoutError):
        while True:
            await victim.recv(timeout=0.5)
            received += 1
    assert 90 <= received <= 100 + 50 * elapsed
    await others.still_fine()
    # After a pause the flooder may speak again.
    await asyncio.sleep(0.5)
    await flooder.send({"type": "signal", "to": victim_id, "data": {"ok": 1}})
    assert (await victim.recv())["data"] == {"ok": 1}


async def test_a_client_that_never_joins_is_closed(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server("--join-timeout", "0.5")
    others = await bystanders(server)
    idle = await connect(server)
    started = time.monotonic()
    error = await idle.recv(timeout=3)
    assert error["code"] == "join-timeout"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await idle.recv(timeout=3)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert 0.4 < time.monotonic() - started < 2.5
    await others.still_fine()  # joined long ago and still there


async def test_too_many_connections_from_one_address(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server("--max-connections-per-address", "3")
    kept = [await connect(server) for _ in range(3)]
    extra = await connect(server)
    error = await extra.recv()
    assert error["code"] == "rate-limited"
    assert "connections" in error["message"]
    with pytest.raises(websockets.ConnectionClosed):
        await extra.recv()
    await kept[0].ws.close()
    await asyncio.sleep(0.2)
    again = await connect(server)
    await again.join("r", "back")


async def test_cross_origin_upgrades_are_refused(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server("--allow-origin", "https://app.example.org")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, origin=websockets.Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    for origin in (
        f"http://127.0.0.1:{server.port}",
        "http://localhost:3000",
        "https://app.example.org",
    ):
        ws = await websockets.connect(server.ws_url, origin=websockets.Origin(origin))
        _opened.append(ws)
        await Peer(ws).join("r", "ok")
        await ws.close()


def token(room: str, grants: list[str], **options: Any) -> str:
    return mint_token(
        SECRET, room=room, identity=options.pop("identity", "u"), grants=grants, **options
    )


@pytest.fixture
async def auth_server(
    start_server: Callable[..., RunningServer],
) -> AsyncIterator[tuple[RunningServer, Bystanders]]:
    server = start_server("--log-level", "debug", env={"RTCROOM_AUTH_SECRET": SECRET})
    yield server, await bystanders(server, token("elsewhere", ["publish", "subscribe", "data"]))


async def test_forged_expired_and_wrong_room_tokens(auth_server: Any) -> None:
    server, others = auth_server
    host = await connect(server)
    await host.send({"type": "join", "room": "team", "name": "H", "token": token("team", ["data"])})
    assert (await host.recv())["type"] == "joined"
    forged = mint_token("an-attacker-secret-that-is-long-enough", room="team", identity="x")
    header, payload, _ = token("team", ["publish"]).split(".")
    bad_tokens = {
        "missing": None,
        "forged": forged,
        "tampered": f"{header}.{payload}.AAAA",
        "expired": token("team", ["data"], ttl=60, now=time.time() - 3600),
        "wrong-room": token("other", ["data"]),
    }
    guest = await connect(server)
    for label, bad in bad_tokens.items():
        message: dict[str, Any] = {"type": "join", "room": "team", "name": "G"}
        if bad:
            message["token"] = bad
        await guest.send(message)
        error = await guest.recv()
        assert error["code"] == "unauthorized", label
    # Nobody heard of the guest.
    await host.nothing()
    await others.still_fine()
    log = server.log.read_text()
    for bad in (*bad_tokens.values(), token("team", ["data"])):
        if bad:
            for part in bad.split("."):
                assert not part or part not in log
    assert SECRET not in log
    assert "access tokens required" in log


async def test_subscriber_only_peer_cannot_offer_to_send(auth_server: Any) -> None:
    server, others = auth_server
    host, viewer = await connect(server), await connect(server)
    await host.send(
        {
            "type": "join",
            "room": "live",
            "name": "H",
            "token": token("live", ["publish", "subscribe", "data"]),
        }
    )
    host_id = (await host.recv())["id"]
    await viewer.send(
        {"type": "join", "room": "live", "name": "V", "token": token("live", ["subscribe"])}
    )
    joined = await viewer.recv()
    assert joined["grants"] == ["subscribe"]
    await host.recv()
    sdp = (
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendrecv\r\n"
    )
    await viewer.send(
        {"type": "signal", "to": host_id, "data": {"description": {"type": "offer", "sdp": sdp}}}
    )
    error = await viewer.recv()
    assert error["code"] == "forbidden"
    assert "publish" in error["message"]
    await host.nothing()
    recvonly = sdp.replace("a=sendrecv", "a=recvonly")
    await viewer.send(
        {
            "type": "signal",
            "to": host_id,
            "data": {"description": {"type": "offer", "sdp": recvonly}},
        }
    )
    assert (await host.recv())["data"]["description"]["sdp"] == recvonly
    await others.still_fine()


async def test_resume_after_a_dropped_connection(server: RunningServer) -> None:
    a, b = await connect(server), await connect(server)
    joined_a = await a.join("r", "Ann")
    b_id = (await b.join("r", "Bo"))["id"]
    await a.recv()
    a.ws.transport.abort()  # the network drops; no closing handshake
    await asyncio.sleep(0.3)
    await b.send({"type": "signal", "to": joined_a["id"], "data": {"candidate": None}})
    again = await connect(server)
    await again.send({"type": "join", "room": "r", "name": "Ann", "resume": joined_a["resume"]})
    resumed = await again.recv()
    assert resumed["id"] == joined_a["id"]
    assert resumed["peers"] == [{"id": b_id, "name": "Bo"}]
    # What b sent meanwhile was kept for it.
    assert await again.recv() == {"type": "signal", "from": b_id, "data": {"candidate": None}}
    await b.nothing(0.5)  # no peer-left, no peer-joined
    # A clean close, by contrast, is a departure at once.
    await again.ws.close()
    assert await b.recv() == {"type": "peer-left", "id": joined_a["id"]}


async def test_a_close_frame_without_a_code_is_a_departure(server: RunningServer) -> None:
    """A browser's ws.close() sends a close frame with no code: the peer left on purpose."""
    a, b = await connect(server), await connect(server)
    a_id = (await a.join("r", "Ann"))["id"]
    await b.join("r", "Bo")
    await a.recv()  # peer-joined
    a.ws.protocol.send_close()  # no code, no reason: an empty close frame
    a.ws.send_data()
    assert await b.recv(timeout=2) == {"type": "peer-left", "id": a_id}


async def test_sigterm_drains_and_a_second_one_exits_at_once(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server("--shutdown-deadline", "30", "--rate", "1000", "--burst", "1000")
    peer = await connect(server)
    await peer.join("r", "P")
    # A client that stopped reading, with megabytes on their way to it,
    # keeps the drain from finishing: its frames cannot go out.
    stuck, _ = raw_join(server, "r", "stuck")
    await peer.recv()
    for _ in range(200):
        await peer.send({"type": "broadcast", "data": "x" * 60_000})
    await asyncio.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    assert await peer.recv() == {"type": "bye", "reason": "the server is restarting"}
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await peer.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    # New clients are turned away while it drains.
    with pytest.raises((websockets.InvalidStatus, OSError)):
        await websockets.connect(server.ws_url)
    await asyncio.sleep(1.0)
    assert server.process.poll() is None  # still draining the stuck client
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(server.process.wait, 10)
    assert time.monotonic() - started < 5
    stuck.close()


async def test_sigterm_with_nobody_connected_exits_cleanly(server: RunningServer) -> None:
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(server.process.wait, 10) == 0


def token_command(*args: str, secret: str = SECRET) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtcroom", "token", *args],
        env={**os.environ, "RTCROOM_AUTH_SECRET": secret},
        capture_output=True,
        text=True,
    )


async def test_token_command_and_python_peer(auth_server: Any) -> None:
    from rtcroom.client import Room, RoomError

    server, _ = auth_server
    minted = token_command(
        *("--room", "bots-*", "--identity", "bot-1", "--name", "Bot"),
        *("--grant", "publish", "--grant", "subscribe", "--grant", "data"),
    )
    assert minted.returncode == 0, minted.stderr
    room = await Room.join(server.url, "bots-1", "ignored", token=minted.stdout.strip())
    try:
        assert room.id
        with pytest.raises(RoomError) as refused:
            await Room.join(server.url, "bots-1", "no token")
        assert refused.value.code == "unauthorized"
    finally:
        await room.leave()
    link = token_command("--room", "team", "--identity", "u", "--link", server.url)
    assert link.returncode == 0, link.stderr
    assert link.stdout.strip().startswith(f"{server.url}/r/team?token=ey")
    short = token_command("--room", "team", "--identity", "u", secret="short")
    assert short.returncode == 2 and "32 bytes" in short.stderr


async def test_pings_drop_dead_clients_and_keep_live_ones(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server(
        *("--ping-interval", "0.5", "--ping-timeout", "0.5", "--resume-grace", "0.5")
    )
    live = await connect(server)  # the websockets library answers pings
    await live.join("r", "live")
    # A client that vanished without a word: it never answers a ping.
    dead, dead_id = raw_join(server, "r", "dead")
    assert (await live.recv())["type"] == "peer-joined"
    started = time.monotonic()
    assert await live.recv(timeout=5) == {"type": "peer-left", "id": dead_id}
    assert time.monotonic() - started < 3
    await live.nothing(1.5)  # still connected, still in the room
    await live.send({"type": "broadcast", "data": "still here"})
    await live.nothing(0.2)
    dead.close()


async def test_per_address_limits_see_the_client_behind_a_trusted_proxy(
    start_server: Callable[..., RunningServer],
) -> None:
    # A reverse proxy on loopback (trusted by default) names each client.
    server = start_server("--max-connections-per-address", "1")
    first = await websockets.connect(
        server.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.1"}
    )
    other = await websockets.connect(
        server.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.2"}
    )
    await Peer(other).join("r", "other client")  # a different client: admitted
    same = Peer(
        await websockets.connect(
            server.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.1"}
        )
    )
    assert (await same.recv())["code"] == "rate-limited"
    # Not from a trusted proxy: the header is ignored, the socket's address counts.
    strict = start_server("--max-connections-per-address", "1", "--trusted-proxy", "10.0.0.2")
    one = await websockets.connect(
        strict.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.1"}
    )
    two = Peer(
        await websockets.connect(
            strict.ws_url, additional_headers={"X-Forwarded-For": "203.0.113.2"}
        )
    )
    assert (await two.recv())["code"] == "rate-limited"
    for ws in (first, other, same.ws, one, two.ws):
        await ws.close()
