"""rtcroom inside a host app (tests/hooked_app.py on uvicorn): hooks and server-side actions.

Real processes over real WebSockets: the hooks' exact semantics (refuse,
rename, grants, exactly-once leave and room lifetime, failing and slow
hooks, moderation), and send, broadcast, kick and rooms, with Redis across
two processes and a kill -9 of one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from browser import seconds
from conftest import RunningRedis, RunningServer, free_port, stop_process, wait_healthy
from test_serve import Peer

TESTS = Path(__file__).resolve().parent


class HookedApp(RunningServer):
    events_path: Path

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = [json.loads(line) for line in self.events_path.read_text().splitlines()]
        return [e for e in lines if kind is None or e["event"] == kind]

    def action(self, name: str, **body: Any) -> Any:
        base = f"http://127.0.0.1:{self.port}/actions/{name}"
        data = json.dumps(body).encode() if body else None
        with urllib.request.urlopen(urllib.request.Request(base, data=data), timeout=10) as r:
            return json.loads(r.read())

    async def connect(self, headers: dict[str, str] | None = None) -> Peer:
        return Peer(await websockets.connect(self.ws_url, additional_headers=headers))


@pytest.fixture
def start_hooked(tmp_path: Path) -> Iterator[Callable[..., HookedApp]]:
    started: list[HookedApp] = []
    events = tmp_path / "events.jsonl"

    def start(**env: str) -> HookedApp:
        port = free_port()
        log = tmp_path / f"app-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "hooked_app:app", "--app-dir", str(TESTS)),
                    *("--port", str(port), "--log-level", "warning"),
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOOK_LOG": str(events), **env},
            )
        app = HookedApp(process, port, log, "/rtc")
        app.events_path = events
        started.append(app)
        wait_healthy(app)
        return app

    yield start
    for app in started:
        app.stop()


async def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + seconds(timeout)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_the_join_hook_refuses_renames_and_limits_grants(
    start_hooked: Callable[..., HookedApp],
) -> None:
    app = start_hooked()
    a = await app.connect({"Cookie": "site=ann-session; theme=dark", "User-Agent": "test/1"})
    await a.send({"type": "join", "room": "closed", "name": "Ann"})
    assert await a.recv() == {
        "type": "error",
        "code": "forbidden",
        "message": "this room is closed today",
        "app": True,
    }
    # Refused, the connection may join elsewhere: renamed by the hook.
    joined = await a.join("team", "as:Zed")
    assert joined["name"] == "Zed"
    [first, second] = app.events("join")
    assert first["cookie"] == "ann-session" and first["agent"] == "test/1"
    assert second["room"] == "team" and not second["resume"]

    viewer = await app.connect()
    watching = await viewer.join("team", "viewer")
    assert watching["grants"] == ["subscribe"]
    assert watching["peers"] == [{"id": joined["id"], "name": "Zed", "identity": "user-Zed"}]
    assert (await a.recv())["peer"]["name"] == "viewer"
    await viewer.send({"type": "broadcast", "data": "hello"})
    assert (await viewer.recv())["code"] == "forbidden"
    await a.nothing()
    await a.ws.close()
    await viewer.ws.close()


async def test_a_failing_or_slow_hook_is_a_server_error_and_changes_nothing_else(
    start_hooked: Callable[..., HookedApp],
) -> None:
    app = start_hooked()
    a, b = await app.connect(), await app.connect()
    await a.send({"type": "join", "room": "broken", "name": "Ann"})
    error = await a.recv()
    assert (error["code"], error.get("app")) == ("server-error", None)
    started = time.monotonic()
    await a.send({"type": "join", "room": "slow", "name": "Ann"})
    assert (await a.recv(timeout=10))["code"] == "server-error"
    assert 0.9 <= time.monotonic() - started < seconds(5)
    log = app.log.read_text()
    assert "the join hook raised RuntimeError" in log
    assert "RuntimeError: the site's database is down" in log  # the traceback
    assert "the join hook took longer than 1 s" in log
    # The server and this connection go on as if nothing happened.
    await a.join("team", "Ann")
    await b.join("team", "Bo")
    await a.recv()

    await a.send({"type": "broadcast", "data": {"text": "a badword"}})
    assert await a.recv() == {
        "type": "error",
        "code": "forbidden",
        "message": "watch your language",
        "app": True,
    }
    await a.send({"type": "broadcast", "data": "explode"})
    assert (await a.recv())["code"] == "server-error"
    assert "the broadcast hook raised ValueError" in app.log.read_text()
    await a.send({"type": "broadcast", "data": {"text": "hi"}})
    assert (await b.recv())["data"] == {"text": "hi"}  # the first thing b hears
    assert [e["data"] for e in app.events("broadcast")] == [{"text": "hi"}]
    await a.ws.close()
    await b.ws.close()


async def test_leave_is_reported_once_per_peer_with_its_reason_and_the_room_lifetime_once(
    start_hooked: Callable[..., HookedApp],
) -> None:
    app = start_hooked(RTCROOM_RESUME_GRACE="1")
    a, b, c, d, e = [await app.connect() for _ in range(5)]
    ids = {}
    for peer, name in ((e, "Eve"), (a, "Ann"), (b, "Bo"), (c, "Cy"), (d, "Di")):
        ids[name] = (await peer.join("team", name))["id"]
    assert len(app.events("room-started")) == 1

    await a.send({"type": "leave"})
    await b.ws.close()
    c.ws.transport.abort()  # dropped: may resume within the grace, then leaves
    assert app.action("kick", room="team", peer=ids["Di"], reason="spam") is True
    kicked = await d.recv()
    while kicked["type"] != "error":
        kicked = await d.recv()
    assert kicked == {"type": "error", "code": "kicked", "message": "spam", "app": True}
    with pytest.raises(websockets.ConnectionClosed):
        await d.recv()
    assert d.ws.close_code == 4003 and d.ws.close_reason == "spam"

    seen: list[dict[str, Any]] = []

    async def listen() -> None:
        while True:
            seen.append(await e.recv(timeout=30))

    listening = asyncio.create_task(listen())
    await wait_for(lambda: len(app.events("leave")) == 4, timeout=15)
    listening.cancel()
    reasons = {event["peer"]: event["reason"] for event in app.events("leave")}
    assert reasons == {
        ids["Ann"]: "left",
        ids["Bo"]: "closed",
        ids["Cy"]: "timeout",
        ids["Di"]: "kicked",
    }
    # Eve saw each of them leave, once.
    assert sorted(m["id"] for m in seen if m["type"] == "peer-left") == sorted(reasons)
    assert app.events("room-finished") == []
    await e.send({"type": "leave"})
    await wait_for(lambda: len(app.events("room-finished")) == 1)
    events = [ev["event"] for ev in app.events() if ev["event"] != "join"]
    assert events.count("room-started") == 1 and events[-1] == "room-finished"
    assert events.count("leave") == 5
    for peer in (a, b, c, d, e):
        await peer.ws.close()


async def test_kicked_peers_resume_key_stops_working(
    start_hooked: Callable[..., HookedApp],
) -> None:
    app = start_hooked()
    a, d = await app.connect(), await app.connect()
    await a.join("team", "Ann")
    joined = await d.join("team", "Di")
    await a.recv()
    assert app.action("kick", room="team", peer=joined["id"], reason="bye now") is True
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await d.recv()
    assert await a.recv() == {"type": "peer-left", "id": joined["id"]}
    back = await app.connect()
    await back.send({"type": "join", "room": "team", "name": "Di", "resume": joined["resume"]})
    answer = await back.recv()
    assert answer["type"] == "joined" and answer["id"] != joined["id"]
    assert (await a.recv())["type"] == "peer-joined"  # someone new, not a resume
    assert app.action("kick", room="team", peer="nobody", reason="x") is False
    for peer in (a, d, back):
        await peer.ws.close()


async def test_hooks_and_actions_across_two_processes_and_a_kill(
    start_hooked: Callable[..., HookedApp], redis_server: RunningRedis
) -> None:
    env = {"RTCROOM_BROKER": redis_server.url, "RTCROOM_NODE_TTL": "1"}
    one, two = start_hooked(**env), start_hooked(**env)
    a = await one.connect()
    b = await two.connect()
    ja = await a.join("team", "Ann")
    jb = await b.join("team", "Bo")
    await a.recv()
    assert [e["pid"] for e in one.events("room-started")] == [one.process.pid]

    rooms = one.action("rooms")
    assert rooms == {"team": [{"id": ja["id"], "name": "Ann"}, {"id": jb["id"], "name": "Bo"}]}
    # Send from one process to a peer of the other, broadcast from the other.
    assert one.action("send", room="team", peer=jb["id"], data={"note": 1}) is True
    assert await b.recv() == {"type": "message", "data": {"note": 1}}
    two.action("broadcast", room="team", data="all hands")
    for peer in (a, b):
        assert await peer.recv() == {"type": "message", "data": "all hands"}

    # Kicked through the process that does not hold it.
    assert one.action("kick", room="team", peer=jb["id"], reason="spam") is True
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await b.recv()
    assert b.ws.close_code == 4003
    assert await a.recv() == {"type": "peer-left", "id": jb["id"]}
    await a.nothing(0.5)
    await wait_for(lambda: len(one.events("leave")) == 1)
    [kicked] = one.events("leave")
    assert kicked["reason"] == "kicked" and kicked["pid"] == two.process.pid

    # A process killed with its peers: the other reaps them, once.
    c = await two.connect()
    jc = await c.join("team", "Cy")
    await a.recv()
    s = await two.connect()
    js = await s.join("solo", "Sol")
    two.process.send_signal(signal.SIGKILL)
    two.process.wait()
    assert await a.recv(timeout=seconds(10)) == {"type": "peer-left", "id": jc["id"]}
    await wait_for(lambda: len(one.events("room-finished")) == 1, timeout=10)
    [solo] = one.events("room-finished")
    assert solo["room"] == "solo" and solo["pid"] == one.process.pid
    lost = [e for e in one.events("leave") if e["reason"] == "node-lost"]
    assert {e["peer"] for e in lost} == {jc["id"], js["id"]}
    assert {e["pid"] for e in lost} == {one.process.pid}

    await a.send({"type": "leave"})
    await wait_for(lambda: len(one.events("room-finished")) == 2)
    finished = [e["room"] for e in one.events("room-finished")]
    assert sorted(finished) == ["solo", "team"]
    assert [e["room"] for e in one.events("room-started")].count("team") == 1
    for peer in (a, b, c, s):
        await peer.ws.close()
    stop_process(one.process)
