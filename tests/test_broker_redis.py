"""Rooms shared by three `rtcroom serve` processes through a real redis-server.

Faults are real too: kill -9 of a process, redis-server stopped and started.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from conftest import RunningRedis, RunningServer
from proxy import Proxy
from test_serve import Peer, connect, team_scenario


def three(
    start_server: Callable[..., RunningServer], redis: RunningRedis, *args: str
) -> list[RunningServer]:
    return [start_server("--broker", redis.url, *args) for _ in range(3)]


async def test_peers_on_different_processes_share_rooms(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    # a, b, c in one room on three processes; d in another, on b's process.
    await team_scenario(await connect(s1), await connect(s2), await connect(s3), await connect(s2))


async def test_capacity_holds_under_concurrent_joins_across_processes(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    servers = three(start_server, redis_server, "--max-peers", "10")
    peers = [await connect(servers[i % 3]) for i in range(50)]

    async def attempt(i: int, peer: Peer) -> str:
        await peer.send({"type": "join", "room": "big", "name": f"p{i}"})
        while True:
            message = await peer.recv(timeout=10)
            if message["type"] in ("joined", "error"):
                return str(message.get("code", "joined"))

    results = await asyncio.gather(*(attempt(i, p) for i, p in enumerate(peers)))
    assert results.count("joined") == 10
    assert results.count("room-full") == 40
    for peer in peers:
        await peer.ws.close()


async def joined_room(servers: list[RunningServer], room: str, names: str) -> list[Any]:
    """One peer per name, the i-th on servers[i], all in `room`; each has seen the others."""
    peers: list[Peer] = []
    joins: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        peer = await connect(servers[i])
        joins.append(await peer.join(room, name))
        for earlier in peers:
            assert (await earlier.recv())["type"] == "peer-joined"
        peers.append(peer)
    return [(peer, joined["id"], joined) for peer, joined in zip(peers, joins, strict=True)]


async def test_peers_of_a_killed_process_are_announced_as_left_once(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    (a, a_id, _), (b, b_id, _), (c, c_id, c_joined), (d, d_id, _) = await joined_room(
        [s1, s2, s3, s3], "team", "ABCD"
    )
    s3.process.kill()
    killed = time.monotonic()
    # c's client reconnects at once, to s1, with its resume key: its old
    # process cannot hand it over, so it joins afresh with a new id.
    again = await connect(s1)
    await again.send({"type": "join", "room": "team", "name": "C", "resume": c_joined["resume"]})
    rejoined = await again.recv()
    assert rejoined["type"] == "joined" and rejoined["id"] != c_id
    assert [p["id"] for p in rejoined["peers"]] == [a_id, b_id, d_id]
    # The survivors hear that c and d left, each exactly once, within the bound.
    for peer in (a, b):
        seen: list[dict[str, Any]] = []
        while len([m for m in seen if m["type"] == "peer-left"]) < 2:
            seen.append(await peer.recv(timeout=20))
        assert time.monotonic() - killed <= 15
        left = [m["id"] for m in seen if m["type"] == "peer-left"]
        assert sorted(left) == sorted([c_id, d_id])
        assert {"type": "peer-joined", "peer": {"id": rejoined["id"], "name": "C"}} in seen
    assert await again.recv() == {"type": "peer-left", "id": d_id}
    for peer in (a, b, again):
        await peer.nothing(3.0)  # no second announcement from the other reaper
    # The survivors keep working.
    await a.send({"type": "signal", "to": b_id, "data": {"candidate": None}})
    assert await b.recv() == {"type": "signal", "from": a_id, "data": {"candidate": None}}
    newcomer = await connect(s2)
    assert [p["id"] for p in (await newcomer.join("team", "E"))["peers"]] == [
        a_id,
        b_id,
        rejoined["id"],
    ]
    for peer in (a, b, again, newcomer, c, d):
        await peer.ws.close()


async def test_resume_on_another_process(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    (a, a_id, a_joined), (b, b_id, _) = await joined_room([s1, s2], "r", "AB")
    a.ws.transport.abort()  # the network drops; no closing handshake
    await asyncio.sleep(0.3)
    # Sent while a is away: held for it on s1.
    await b.send({"type": "signal", "to": a_id, "data": {"candidate": None}})
    await b.send({"type": "broadcast", "data": "while away"})
    again = await connect(s3)
    await again.send({"type": "join", "room": "r", "name": "A", "resume": a_joined["resume"]})
    resumed = await again.recv()
    assert resumed["id"] == a_id
    assert resumed["peers"] == [{"id": b_id, "name": "B"}]
    assert await again.recv() == {"type": "signal", "from": b_id, "data": {"candidate": None}}
    assert await again.recv() == {"type": "broadcast", "from": b_id, "data": "while away"}
    await b.nothing(0.5)  # the others saw nothing change
    # a now lives on s3, both ways.
    await b.send({"type": "signal", "to": a_id, "data": {"n": 1}})
    assert await again.recv() == {"type": "signal", "from": b_id, "data": {"n": 1}}
    await again.send({"type": "signal", "to": b_id, "data": {"n": 2}})
    assert await b.recv() == {"type": "signal", "from": a_id, "data": {"n": 2}}
    await b.send({"type": "broadcast", "data": "once"})
    assert await again.recv() == {"type": "broadcast", "from": b_id, "data": "once"}
    await again.nothing()

    # Resuming while the old connection is still open: the old one is ended.
    third = await connect(s1)
    await third.send({"type": "join", "room": "r", "name": "A", "resume": resumed["resume"]})
    assert (await third.recv())["id"] == a_id
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await again.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    await b.nothing(0.5)
    await third.ws.close()  # a clean close: a departure, announced once
    assert await b.recv() == {"type": "peer-left", "id": a_id}
    await b.nothing()
    await b.ws.close()


async def test_participant_state_is_shared_and_resumed_across_processes(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    (a, a_id, a_joined), (b, b_id, _) = await joined_room([s1, s2], "r", "AB")
    await a.send({"type": "state", "state": {"mic": "off", "hand": True}})
    assert await b.recv() == {"type": "state", "peer": a_id, "state": {"mic": "off", "hand": True}}
    await b.send({"type": "react", "emoji": "\U0001f389"})
    assert await a.recv() == {"type": "reaction", "peer": b_id, "emoji": "\U0001f389"}
    # A newcomer on another process sees a's state in its joined.
    c = await connect(s2)
    joined_c = await c.join("r", "C")
    assert joined_c["peers"][0] == {"id": a_id, "name": "A", "state": {"mic": "off", "hand": True}}
    # (Once its arrival is told: a peer that drops while a newcomer is being
    # announced to it is at times not resumed on another process, state or
    # not; a race in the Redis handoff, noted for issue 34.)
    assert (await a.recv())["type"] == "peer-joined"
    assert (await b.recv())["type"] == "peer-joined"
    # a drops and resumes on s3: its state stays, nobody hears a change.
    a.ws.transport.abort()
    await asyncio.sleep(0.3)
    again = await connect(s3)
    await again.send({"type": "join", "room": "r", "name": "A", "resume": a_joined["resume"]})
    assert (await again.recv())["id"] == a_id
    d = await connect(s2)
    joined_d = await d.join("r", "D")
    assert joined_d["peers"][0]["state"] == {"mic": "off", "hand": True}
    for peer in (b, c, again, d):
        await peer.ws.close()


async def test_redis_outage_fails_fast_and_recovers(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2, s3 = three(start_server, redis_server)
    (a, a_id, _), (b, b_id, _), (c, c_id, _), (a2, a2_id, _) = await joined_room(
        [s1, s2, s3, s1], "call", "ABCD"
    )
    redis_server.stop()
    stopped = time.monotonic()
    # Peers on the same process still reach each other.
    await a.send({"type": "signal", "to": a2_id, "data": {"candidate": None}})
    assert await a2.recv() == {"type": "signal", "from": a_id, "data": {"candidate": None}}
    # Across processes: a clear error, fast, and the connection stays usable.
    started = time.monotonic()
    await a.send({"type": "signal", "to": b_id, "data": {"candidate": None}})
    error = await a.recv()
    assert error["type"] == "error" and error["code"] == "unavailable"
    assert time.monotonic() - started < 3
    await a.send({"type": "broadcast", "data": "hi"})
    assert await a2.recv() == {"type": "broadcast", "from": a_id, "data": "hi"}
    assert (await a.recv())["code"] == "unavailable"
    newcomer = await connect(s2)
    started = time.monotonic()
    await newcomer.send({"type": "join", "room": "call", "name": "E"})
    assert (await newcomer.recv())["code"] == "unavailable"
    assert time.monotonic() - started < 3
    await newcomer.ws.close()
    # c leaves while Redis is down; only its own process can know for now.
    await c.ws.close()

    await asyncio.sleep(10 - (time.monotonic() - stopped))
    redis_server.start()  # empty: it kept nothing
    await asyncio.sleep(1.0)  # the processes notice and write their peers back
    newcomer = await connect(s2)
    for _ in range(10):
        await newcomer.send({"type": "join", "room": "call", "name": "E"})
        answer = await newcomer.recv()
        if answer["type"] == "joined":
            break
        assert answer["code"] == "unavailable"
        await asyncio.sleep(1)
    assert answer["type"] == "joined", answer
    assert sorted(p["id"] for p in answer["peers"]) == sorted([a_id, b_id, a2_id])
    for peer in (a, b, a2):
        # c's departure reached the others once Redis was back; then e came.
        messages = [await peer.recv(), await peer.recv()]
        assert {"type": "peer-left", "id": c_id} in messages
        assert {"type": "peer-joined", "peer": {"id": answer["id"], "name": "E"}} in messages
    await b.send({"type": "signal", "to": a_id, "data": {"n": 1}})
    assert await a.recv() == {"type": "signal", "from": b_id, "data": {"n": 1}}
    await newcomer.send({"type": "broadcast", "data": "back"})
    for peer in (a, b, a2):
        assert await peer.recv() == {"type": "broadcast", "from": answer["id"], "data": "back"}
    for server in (s1, s2, s3):
        assert server.process.poll() is None
    for peer in (a, b, a2, newcomer):
        await peer.ws.close()


def socket_owners(port: int) -> set[int]:
    """Process ids holding the established connections to `port` (ss from iproute2)."""
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {int(pid) for pid in re.findall(r"pid=(\d+)", out)}


async def test_workers_share_the_port_and_the_rooms(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    server = start_server("--workers", "2", "--broker", redis_server.url, "--max-peers", "16")
    peers = [await connect(server) for _ in range(16)]
    ids = []
    for i, peer in enumerate(peers):
        joined = await peer.join("w", f"p{i}")
        assert [p["id"] for p in joined["peers"]] == ids
        ids.append(joined["id"])
    # Each hears of exactly those who came after it (in any order: two
    # processes announce independently).
    for i, peer in enumerate(peers):
        heard = [(await peer.recv())["peer"]["id"] for _ in ids[i + 1 :]]
        assert sorted(heard) == sorted(ids[i + 1 :])
    # Both workers hold some of the connections; the parent holds none.
    owners = socket_owners(server.port)
    assert len(owners) == 2 and server.process.pid not in owners
    for peer, peer_id in zip(peers[1:], ids[1:], strict=True):
        await peer.send({"type": "signal", "to": ids[0], "data": {"candidate": None}})
        assert await peers[0].recv() == {
            "type": "signal",
            "from": peer_id,
            "data": {"candidate": None},
        }
    # SIGTERM to the parent drains every worker's clients, then all exit.
    server.process.send_signal(signal.SIGTERM)
    for peer in peers:
        assert await peer.recv() == {"type": "bye", "reason": "the server is restarting"}
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await peer.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    assert await asyncio.to_thread(server.process.wait, 10) == 0
    assert socket_owners(server.port) == set()


def test_workers_need_a_broker() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rtcroom", "serve", "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers" in result.stderr and "--broker" in result.stderr


async def test_rolling_restart_hands_peers_to_another_process(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2 = start_server("--broker", redis_server.url), start_server("--broker", redis_server.url)
    (a, a_id, a_joined), (b, b_id, _) = await joined_room([s1, s2], "r", "AB")
    s1.process.send_signal(signal.SIGTERM)
    assert await a.recv() == {"type": "bye", "reason": "the server is restarting"}
    with pytest.raises(websockets.ConnectionClosed):
        await a.recv()
    # The client reconnects, through the load balancer, to a process that stays.
    again = await connect(s2)
    await again.send({"type": "join", "room": "r", "name": "A", "resume": a_joined["resume"]})
    resumed = await again.recv()
    assert resumed["id"] == a_id and resumed["peers"] == [{"id": b_id, "name": "B"}]
    # s1 leaves once it has handed its peer over, well before its deadline.
    assert await asyncio.to_thread(s1.process.wait, 5) == 0
    await b.nothing(0.5)  # for b, nothing happened
    await b.send({"type": "signal", "to": a_id, "data": {"candidate": None}})
    assert await again.recv() == {"type": "signal", "from": b_id, "data": {"candidate": None}}
    for peer in (again, b):
        await peer.ws.close()


async def test_a_process_frozen_past_its_ttl_is_declared_dead_and_ends_its_clients(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    s1, s2 = (start_server("--broker", redis_server.url, "--node-ttl", "2") for _ in range(2))
    await asyncio.sleep(2.5)  # the reapers wait a full TTL of good health first
    (a, a_id, _), (b, b_id, _) = await joined_room([s1, s2], "r", "AB")
    s2.process.send_signal(signal.SIGSTOP)  # a VM pause, a stuck process: no heartbeat
    try:
        assert await a.recv(timeout=6) == {"type": "peer-left", "id": b_id}
    finally:
        s2.process.send_signal(signal.SIGCONT)
    # Back, it learns it was declared dead: its clients must join again.
    assert await b.recv(timeout=6) == {
        "type": "bye",
        "reason": "the server lost its place in the room",
    }
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await b.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    again = await connect(s2)
    joined = await again.join("r", "B")
    assert joined["id"] != b_id and joined["peers"] == [{"id": a_id, "name": "A"}]
    assert await a.recv() == {"type": "peer-joined", "peer": {"id": joined["id"], "name": "B"}}
    await a.nothing()
    for peer in (a, again):
        await peer.ws.close()


async def test_a_frame_whose_answer_from_redis_is_late_is_not_sent_twice(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    # s2 reaches Redis through a proxy that can hold Redis's answers: the
    # PUBLISH of b's broadcast reaches Redis (and a), its answer comes after
    # the broker's 2 s timeout, as when the process was paused. Repeating
    # the command then would repeat the frame.
    s1 = start_server("--broker", redis_server.url)
    proxy = Proxy(redis_server.port)
    try:
        s2 = start_server("--broker", f"redis://127.0.0.1:{proxy.port}")
        (a, _, _), (b, b_id, _) = await joined_room([s1, s2], "r", "AB")
        proxy.hold()
        try:
            await b.send({"type": "broadcast", "data": "once"})
            # Past the broker's timeout: b is told the broadcast may have failed
            # (waited for, not slept: a busy machine may take longer).
            told = await b.recv(timeout=30)
            assert told["type"] == "error" and told["code"] == "unavailable", told
        finally:
            proxy.release()
        # a gets "once" at most once. Usually once (the PUBLISH went out on an
        # idle connection); none when s2 had to open a connection for it, whose
        # handshake answers the proxy held too: then it was never sent.
        once = {"type": "broadcast", "from": b_id, "data": "once"}
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await a.recv(timeout=1.5))
        assert got in ([once], []), got
        # And the room works on: the next frame arrives, once.
        await b.send({"type": "broadcast", "data": "again"})
        assert await a.recv(timeout=10) == {"type": "broadcast", "from": b_id, "data": "again"}
        await a.nothing(0.5)
        for peer in (a, b):
            await peer.ws.close()
    finally:
        proxy.close()


def get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


async def test_readyz_is_503_while_redis_is_unreachable_and_while_draining(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    server = start_server("--broker", redis_server.url, "--node-ttl", "2")
    assert await asyncio.to_thread(get, server.url + "/readyz") == (200, "ready")
    redis_server.stop()

    async def until(expected: tuple[int, str]) -> None:
        deadline = time.monotonic() + 15
        while (answer := await asyncio.to_thread(get, server.url + "/readyz")) != expected:
            assert time.monotonic() < deadline, answer
            await asyncio.sleep(0.1)

    await until((503, "broker unreachable"))
    # Alive all the same: a restart would not bring Redis back.
    assert (await asyncio.to_thread(get, server.url + "/healthz"))[0] == 200
    redis_server.start()
    await until((200, "ready"))

    # A peer that stays resumable keeps the drain going for a few seconds.
    peer = await connect(server)
    await peer.join("r", "A")
    server.process.send_signal(signal.SIGTERM)
    await until((503, "draining"))
    await peer.ws.close()
