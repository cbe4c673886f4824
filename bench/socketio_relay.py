"""Socket.IO relay: rtcroom's /socket.io/ next to the tutorials' own python-socketio server.

Side by side in one run, under the same load:

- `rtcroom serve` (the rate limit raised out of the way; its bookkeeping,
  validation and translation to protocol v1 still run),
- the seeds' python-socketio server on aiohttp (bench/servers/tutorial_socketio.py).

The load is the tutorials' own contract, from socket.io-client on Node
(bench/load/sio_pairs.mjs, WebSocket transport): pairs of clients in rooms
of two bounce a candidate back and forth, one in flight per pair. The
server runs on CPU 0 and the load generator on CPU 1 (taskset) where the
machine has two. Rounds are interleaved so that noise hits both alike;
medians are reported.

    python bench/socketio_relay.py [--pairs 20] [--seconds 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port, stop_process

BENCH = Path(__file__).resolve().parent
LOAD = BENCH / "load"

UNLIMITED = [
    *("--rate", "1000000", "--burst", "1000000"),
    *("--max-connections-per-address", "100000", "--joins-per-minute", "1000000"),
    *("--max-rooms", "1000000", "--log-level", "warning"),
]


def pinned(cpu: int) -> list[str]:
    """taskset onto `cpu` when the machine has it (and taskset exists)."""
    if (os.cpu_count() or 1) > cpu and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    def __init__(self, name: str, command: list[str], port: int) -> None:
        self.name = name
        self.port = port
        self.process = subprocess.Popen(
            [*pinned(0), *command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                probe = f"{self.url}/socket.io/?EIO=4&transport=polling"
                urllib.request.urlopen(probe, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{name} did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_process(self.process)


def load(server: Server, pairs: int, seconds: float) -> dict[str, object]:
    result = subprocess.run(
        [*pinned(1), "node", str(LOAD / "sio_pairs.mjs"), server.url, str(pairs), str(seconds)],
        capture_output=True,
        text=True,
        timeout=120 + seconds * 2,
    )
    if result.returncode != 0:
        raise RuntimeError(f"load on {server.name} failed: {result.stderr}")
    out: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (LOAD / "node_modules" / "socket.io-client").exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(LOAD), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
        )

    rtcroom_port, tutorial_port = free_port(), free_port()
    servers = [
        Server(
            "rtcroom serve",
            [sys.executable, "-m", "rtcroom", "serve", "--port", str(rtcroom_port), *UNLIMITED],
            rtcroom_port,
        ),
        Server(
            "tutorials' python-socketio (aiohttp)",
            [sys.executable, str(BENCH / "servers" / "tutorial_socketio.py"), str(tutorial_port)],
            tutorial_port,
        ),
    ]
    rates: dict[str, list[float]] = {s.name: [] for s in servers}
    costs: dict[str, list[float]] = {s.name: [] for s in servers}
    rtts: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for _ in range(args.rounds):
            for server in servers:
                before = server.cpu_seconds()
                result = load(server, args.pairs, args.seconds)
                used = server.cpu_seconds() - before
                messages = float(result["messages"])  # type: ignore[arg-type]
                rates[server.name].append(messages / float(result["seconds"]))  # type: ignore[arg-type]
                # CPU over the whole run (joins and warm-up too): an upper bound.
                costs[server.name].append(used / max(messages, 1) * 1e6)
                rtts[server.name] += result["rtt_ms"]  # type: ignore[arg-type]
    finally:
        for server in servers:
            server.stop()

    floor = statistics.median(rates[servers[1].name])
    print(
        f"Socket.IO relay, {args.pairs} pairs in rooms of two, closed loop, "
        f"{args.rounds} rounds of {args.seconds:g} s"
    )
    print()
    print("| server | messages/s (median) | ratio | CPU per message | round trip p50 | p99 |")
    print("|---|---|---|---|---|---|")
    for server in servers:
        rate = statistics.median(rates[server.name])
        q = (
            statistics.quantiles(rtts[server.name], n=100)
            if len(rtts[server.name]) > 1
            else [0] * 99
        )
        print(
            f"| {server.name} | {rate:,.0f} | {rate / floor:.2f} | "
            f"{statistics.median(costs[server.name]):.0f} us | {q[49]:.2f} ms | {q[98]:.2f} ms |"
        )
    print()
    ratio = statistics.median(rates[servers[0].name]) / floor
    print(f"ratio rtcroom / tutorials' python-socketio (medians): {ratio:.2f}")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"Machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, Node {node}.")


if __name__ == "__main__":
    main()
