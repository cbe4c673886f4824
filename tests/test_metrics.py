"""Prometheus metrics (--metrics-port) of real `rtcroom serve` processes, scraped
as Prometheus does, on their own listener."""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from conftest import RunningRedis, RunningServer, free_port
from test_broker_redis import socket_owners
from test_serve import Peer, connect

# Scrapes wait this long for a figure: the server samples every second.
SETTLE = 10.0


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics on `port`: 'name{labels}' -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


async def until(port: int, **expected: float) -> dict[str, float]:
    """Scrape until every `expected` sample (a name with __ for {, _eq_ for =) holds."""
    wanted = {_name(key): value for key, value in expected.items()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE
    while True:
        samples = await asyncio.to_thread(scrape, port)
        if all(samples.get(name) == value for name, value in wanted.items()):
            return samples
        if loop.time() > deadline:
            got = {name: samples.get(name) for name in wanted}
            raise AssertionError(f"expected {wanted}, scraped {got}")
        await asyncio.sleep(0.2)


def _name(key: str) -> str:
    # rtcroom_errors_total__code_eq_bad_message -> rtcroom_errors_total{code="bad-message"}
    if "__" not in key:
        return key
    name, label = key.split("__", 1)
    label_name, value = label.split("_eq_", 1)
    return f'{name}{{{label_name}="{value.replace("_", "-")}"}}'


async def test_peers_rooms_joins_relays_and_errors_as_clients_come_and_go(
    start_server: Callable[..., RunningServer],
) -> None:
    metrics = free_port()
    server = start_server("--metrics-port", str(metrics))
    await until(metrics, rtcroom_peers=0, rtcroom_rooms=0, rtcroom_connections=0)

    a, b = await connect(server), await connect(server)
    a_id = (await a.join("m", "A"))["id"]
    await b.join("m", "B")
    samples = await until(
        metrics, rtcroom_peers=2, rtcroom_rooms=1, rtcroom_connections=2, rtcroom_joins_total=2
    )
    assert samples["rtcroom_broker_up"] == 1
    # 64 signals: relayed, and some of them timed.
    for n in range(64):
        await b.send({"type": "signal", "to": a_id, "data": {"n": n}})
    for _ in range(64):
        await a.recv()
    await b.ws.send("not json")
    assert (await b.recv())["code"] == "bad-message"
    # The 64 signals and the two joins' announcements to the room.
    samples = await until(metrics, rtcroom_frames_relayed_total=66)
    assert samples['rtcroom_errors_total{code="bad-message"}'] == 1
    assert samples["rtcroom_frame_seconds_count"] >= 2
    assert 0 < samples["rtcroom_frame_seconds_sum"] < 1

    await a.ws.close()
    await b.send({"type": "leave"})
    await until(metrics, rtcroom_peers=0, rtcroom_rooms=0)
    await b.ws.close()
    await until(metrics, rtcroom_connections=0)
    # Never on the public port.
    with pytest.raises(urllib.error.HTTPError) as missing:
        await asyncio.to_thread(scrape, server.port)
    assert missing.value.code == 404
    missing.value.close()


async def test_refusals_are_counted_by_reason(
    start_server: Callable[..., RunningServer],
) -> None:
    metrics = free_port()
    server = start_server(
        "--metrics-port",
        str(metrics),
        "--max-connections-per-address",
        "1",
        "--rate",
        "1",
        "--burst",
        "2",
    )
    a = await connect(server)
    b = await connect(server)
    assert (await b.recv())["code"] == "rate-limited"
    await b.ws.close()
    await a.join("r", "A")
    # The join took one of the burst of 2; of these 6, 5 are dropped (one error said so).
    for _ in range(6):
        await a.send({"type": "broadcast", "data": "flood"})
    await until(
        metrics,
        rtcroom_refusals_total__reason_eq_connections=1,
        rtcroom_errors_total__code_eq_rate_limited=2,
    )
    assert (await asyncio.to_thread(scrape, metrics))[
        'rtcroom_refusals_total{reason="rate"}'
    ] >= 4  # a token may come back meanwhile (1 a second)
    await a.ws.close()


async def test_the_sum_over_workers(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    metrics = free_port()
    server = start_server(
        *("--workers", "2", "--broker", redis_server.url, "--metrics-port", str(metrics))
    )
    peers: list[Peer] = []
    # Until both workers hold some of the connections (the kernel spreads them).
    while len(peers) < 6 or len(socket_owners(server.port)) < 2:
        assert len(peers) < 40, "the connections never reached both workers"
        peers.append(await connect(server))
    for i, peer in enumerate(peers):
        await peer.join(f"room{i % 3}", f"p{i}")
    n = len(peers)
    await until(
        metrics,
        rtcroom_connections=n,
        rtcroom_peers=n,
        rtcroom_joins_total=n,
        rtcroom_rooms=3,
        rtcroom_broker_up=1,
    )
    for peer in peers:
        await peer.ws.close()
    await until(metrics, rtcroom_connections=0, rtcroom_peers=0, rtcroom_rooms=0)
    # Counters keep what the workers counted.
    assert (await asyncio.to_thread(scrape, metrics))["rtcroom_joins_total"] == n


def test_metrics_need_a_port_of_their_own(tmp_path: object) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "rtcroom", "serve", "--port", "8080", "--metrics-port", "8080"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "metrics need a port of their own" in result.stderr
    assert re.search(r"--metrics-port / RTCROOM_METRICS_PORT", result.stderr)
