"""Scaling out on Redis: relay throughput, the cross-process hop, Redis memory.

Side by side in one run, each started as a user would (`rtcroom serve`):

- 1 process with rooms in memory (the default),
- 1 process with --broker redis://,
- --workers 2 with --broker redis:// (one machine's cores),

under the same closed-loop load: pairs of peers in rooms of two bounce a
signal back and forth, from load-generator processes of their own (Python,
websockets on uvloop). Rounds are interleaved so that the machine's noise
hits every configuration alike; medians are reported. The rate limit is
raised out of the way (its bookkeeping still runs).

Then the latency a cross-process hop adds: one pair, one message in flight,
round trips with both peers on one process against peers on two processes
sharing Redis. And the Redis memory that each joined peer costs.

    python bench/scale_out.py [--pairs 40] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvloop
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import RunningRedis, free_port, stop_process

UNLIMITED = [
    *("--rate", "1000000", "--burst", "1000000"),
    *("--max-connections-per-address", "100000", "--joins-per-minute", "1000000"),
    *("--max-rooms", "1000000", "--log-level", "warning"),
]


class Server:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rtcroom", "serve", "--port", str(self.port), *UNLIMITED, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"rtcroom serve {' '.join(args)} did not start")
        self.url = f"ws://127.0.0.1:{self.port}/ws"

    def pids(self) -> list[int]:
        """This server's processes: the parent, and its workers if any."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            children = []
        return [pid, *map(int, children)]

    def stop(self) -> None:
        stop_process(self.process)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by `pids` (from /proc)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def join(url: str, room: str, name: str) -> tuple[Any, str]:
    ws = await websockets.connect(url, max_queue=None, compression=None)
    await ws.send(json.dumps({"type": "join", "room": room, "name": name}))
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "joined":
            return ws, message["id"]


async def _bounce(urls: list[str], pairs: int, seconds: float, tag: str) -> int:
    """Closed loop: every pair bounces one signal; return messages relayed."""
    connections = []
    for i in range(pairs):
        room = f"{tag}-{i}"
        a, a_id = await join(urls[i % len(urls)], room, "a")
        b, b_id = await join(urls[(i + 1) % len(urls)], room, "b")
        await a.recv()  # b's peer-joined
        connections.append((a, a_id, b, b_id))
    count = 0
    deadline = 0.0

    async def pair(a: Any, a_id: str, b: Any, b_id: str) -> None:
        nonlocal count
        to_b = json.dumps({"type": "signal", "to": b_id, "data": {"candidate": None}})
        to_a = json.dumps({"type": "signal", "to": a_id, "data": {"candidate": None}})
        while time.monotonic() < deadline:
            await a.send(to_b)
            await b.recv()
            await b.send(to_a)
            await a.recv()
            count += 2

    deadline = time.monotonic() + seconds
    await asyncio.gather(*(pair(*c) for c in connections))
    for a, _, b, _ in connections:
        await a.close()
        await b.close()
    return count


def _generator(urls: list[str], pairs: int, seconds: float, tag: str, out: Any) -> None:
    out.put(uvloop.run(_bounce(urls, pairs, seconds, tag)))


def throughput(urls: list[str], pairs: int, seconds: float, generators: int, tag: str) -> float:
    """Messages relayed per second, from `generators` load processes."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    processes = [
        context.Process(
            target=_generator, args=(urls, pairs // generators, seconds, f"{tag}-{g}", out)
        )
        for g in range(generators)
    ]
    for process in processes:
        process.start()
    total = sum(out.get(timeout=seconds + 120) for _ in processes)
    for process in processes:
        process.join()
    return total / seconds


async def _round_trips(url_a: str, url_b: str, count: int, tag: str) -> list[float]:
    a, a_id = await join(url_a, tag, "a")
    b, b_id = await join(url_b, tag, "b")
    await a.recv()
    to_b = json.dumps({"type": "signal", "to": b_id, "data": {"candidate": None}})
    to_a = json.dumps({"type": "signal", "to": a_id, "data": {"candidate": None}})
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await a.send(to_b)
        await b.recv()
        await b.send(to_a)
        await a.recv()
        times.append((time.perf_counter() - started) * 1e3)
    await a.close()
    await b.close()
    return times


async def _redis_memory(redis_port: int, url: str, peers: int) -> float:
    """Bytes of Redis memory per joined peer (rooms of five).

    Redis's dataset only (used_memory_dataset): the rest of used_memory is
    mostly its clients' buffers, which grow and shrink between two readings
    by more than a few peers' keys take (the smoke run's 20 peers once read
    as -1,208 bytes each on a busy machine).
    """

    async def used() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", redis_port)
        writer.write(b"MEMORY PURGE\r\nINFO memory\r\n")
        await writer.drain()
        await reader.readline()  # +OK
        header = await reader.readline()  # $<length>
        body = await reader.readexactly(int(header[1:]) + 2)
        writer.close()
        await writer.wait_closed()
        for line in body.decode().splitlines():
            if line.startswith("used_memory_dataset:"):
                return int(line.split(":")[1])
        raise RuntimeError("no used_memory_dataset in INFO")

    before = await used()
    connections = [await join(url, f"mem-{i // 5}", f"peer {i}") for i in range(peers)]
    after = await used()
    for ws, _ in connections:
        await ws.close()
    return (after - before) / peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--generators", type=int, default=2)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--memory-peers", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        redis = RunningRedis(Path(directory))
        redis.start()
        broker = ("--broker", redis.url)
        servers = {
            "1 process, rooms in memory": Server(),
            "1 process, Redis broker": Server(*broker),
            "--workers 2, Redis broker": Server(*broker, "--workers", "2"),
        }
        second = Server(*broker)  # for the cross-process hop
        try:
            rates: dict[str, list[float]] = {name: [] for name in servers}
            costs: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(args.rounds):
                for name, server in servers.items():
                    # CPU of the server's processes and of Redis, per message.
                    pids = [*server.pids(), redis.process.pid]  # type: ignore[union-attr]
                    before = cpu_seconds(pids)
                    rate = throughput(
                        [server.url], args.pairs, args.seconds, args.generators, f"t{r}"
                    )
                    used = cpu_seconds(pids) - before
                    rates[name].append(rate)
                    costs[name].append(used / (rate * args.seconds) * 1e6)
            floor = statistics.median(rates["1 process, rooms in memory"])
            print(f"Relay throughput, {args.pairs} pairs, closed loop, {args.rounds} rounds")
            print()
            print(
                "| configuration | messages/s (median) | ratio to 1 process in memory "
                "| server + Redis CPU per message |"
            )
            print("|---|---|---|---|")
            for name, samples in rates.items():
                median = statistics.median(samples)
                cost = statistics.median(costs[name])
                print(f"| {name} | {median:,.0f} | {median / floor:.2f} | {cost:.1f} us |")
            print()

            one = servers["1 process, Redis broker"]
            same: list[float] = []
            cross: list[float] = []
            for r in range(args.rounds):
                same += uvloop.run(_round_trips(one.url, one.url, args.round_trips, f"s{r}"))
                cross += uvloop.run(_round_trips(one.url, second.url, args.round_trips, f"c{r}"))
            memory = Server()
            local: list[float] = []
            for r in range(args.rounds):
                local += uvloop.run(_round_trips(memory.url, memory.url, args.round_trips, f"m{r}"))
            memory.stop()
            print(f"Round trips (a -> b -> a, two relays), {len(same)} each")
            print()
            print("| peers | p50 ms | p99 ms |")
            print("|---|---|---|")
            for name, samples in [
                ("on 1 process, rooms in memory", local),
                ("on 1 process, Redis broker", same),
                ("on 2 processes, Redis broker", cross),
            ]:
                q = statistics.quantiles(samples, n=100)
                print(f"| {name} | {q[49]:.3f} | {q[98]:.3f} |")
            hop = (statistics.median(cross) - statistics.median(same)) / 2
            print()
            print(f"A cross-process hop adds {hop * 1000:.0f} us per relayed message (p50).")
            print()
            per_peer = uvloop.run(_redis_memory(redis.port, one.url, args.memory_peers))
            print(
                f"Redis memory: {per_peer:,.0f} bytes per joined peer "
                f"({args.memory_peers} peers in rooms of 5)."
            )
            print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}.")
        finally:
            for server in (*servers.values(), second):
                server.stop()
            redis.stop()


if __name__ == "__main__":
    main()
