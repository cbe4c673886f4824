"""Round-trip time and data channel throughput through coturn, next to a direct connection.

Two rtcroom.client peers in one room of a real `rtcroom serve`; once with
relay-only policy through a real coturn (configured by `rtcroom turn-config`,
plus the testing-only loopback allowance: both peers are on this machine),
once direct. RTT: median of 200 data channel ping-pongs. Throughput: 16 MiB
in 64 KiB messages with the file transfer's flow control. Runs alternate.

    scripts/netns python bench/turn_relay.py --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiortc import RTCDataChannel
from python_peers import pump

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port, write_coturn_config

from rtcroom.client import RemotePeer, Room

SECRET = "bench-secret-0123456789abcdef"


def start_coturn(folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    config = write_coturn_config(
        folder, port, SECRET, allow_loopback_relay=True, relay_ports=(51000, 51999)
    )
    process = subprocess.Popen(
        [
            "turnserver",
            "-c",
            str(config),
            "--pidfile",
            str(folder / "turn.pid"),
            "--log-file=stdout",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    return process, port


async def pair(
    url: str, room: str, relay: bool
) -> tuple[Room, Room, RTCDataChannel, RTCDataChannel]:
    ann = await Room.join(url, room, "Ann", relay_only=relay)
    incoming: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
    ann.on("datachannel", lambda peer, c: incoming.done() or incoming.set_result(c))
    bo = await Room.join(url, room, "Bo", relay_only=relay)
    peer: RemotePeer = await bo.wait_for_peer("Ann", timeout=10)
    channel = peer.createDataChannel("bench")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), 30)
    return ann, bo, channel, await asyncio.wait_for(incoming, 30)


async def measure(url: str, room: str, relay: bool, size: int) -> tuple[float, float]:
    ann, bo, channel, remote = await pair(url, room, relay)
    replies: asyncio.Queue[float] = asyncio.Queue()
    remote.on("message", lambda data: remote.send(data) if isinstance(data, str) else None)
    channel.on("message", lambda data: replies.put_nowait(time.perf_counter()))
    rtts = []
    for _ in range(200):
        sent = time.perf_counter()
        channel.send("ping")
        rtts.append(await asyncio.wait_for(replies.get(), 10) - sent)
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    received = 0

    def count(data: str | bytes) -> None:
        nonlocal received
        if isinstance(data, bytes):
            received += len(data)
            if received >= size and not done.done():
                done.set_result(time.perf_counter())

    remote.on("message", count)
    started = time.perf_counter()
    await pump(channel, size)
    seconds = await asyncio.wait_for(done, 300) - started
    await bo.leave()
    await ann.leave()
    return statistics.median(rtts) * 1000, size / seconds / 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        turn, turn_port = start_coturn(Path(folder))
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                *("-m", "rtcroom", "serve", "--port", str(port), "--log-level", "warning"),
                *("--turn-url", f"turn:127.0.0.1:{turn_port}?transport=udp"),
            ],
            env={**os.environ, "RTCROOM_TURN_SECRET": SECRET},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            await asyncio.sleep(2)
            results: dict[str, list[tuple[float, float]]] = {"direct": [], "through coturn": []}
            for run in range(args.runs):
                size = args.size_mb * 1024 * 1024
                results["direct"].append(await measure(url, f"d{run}", False, size))
                results["through coturn"].append(await measure(url, f"r{run}", True, size))
        finally:
            server.terminate()
            server.wait(10)
            turn.terminate()
            turn.wait(10)
    print(f"{args.runs} runs of each, alternating; RTT median of 200 pings; {args.size_mb} MiB")
    print("| path | RTT ms (median of runs) | throughput MB/s (median of runs) |")
    print("|---|---:|---:|")
    for name, values in results.items():
        rtt = statistics.median(v[0] for v in values)
        speed = statistics.median(v[1] for v in values)
        print(f"| {name} | {rtt:.2f} | {speed:.2f} |")
    direct = statistics.median(v[1] for v in results["direct"])
    relayed = statistics.median(v[1] for v in results["through coturn"])
    print(f"throughput through coturn / direct: {relayed / direct:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
