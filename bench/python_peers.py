"""Python peers: data channel throughput through rtcroom.client against bare aiortc,
and the echo bot's CPU use per participant.

Throughput. floor: two aiortc RTCPeerConnections in this process, connected
to each other directly (no signaling server), one data channel; rtcroom:
two rtcroom.client Rooms in this process joined through a real `rtcroom
serve`, one data channel opened with RemotePeer.createDataChannel. Both send
the same bytes in 64 KiB messages with the same flow control; the clock runs
from the first send to the last byte received. Runs alternate.

Echo bot CPU: `rtcroom bot echo` in its own process; N Python participants
each send a 640x480 test pattern at 30 fps and get it back; CPU seconds of
the bot's process per second of wall time, divided by N.

    scripts/netns python bench/python_peers.py --size-mb 32 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from aiortc import RTCDataChannel, RTCPeerConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port

from rtcroom.client import RemotePeer, Room
from rtcroom.commands.media import PatternTrack

CHUNK = 64 * 1024


async def pump(channel: RTCDataChannel, size: int) -> None:
    """Send `size` bytes with the flow control rtcroom's file transfer uses."""
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = 1024 * 1024
    channel.on("bufferedamountlow", drained.set)
    chunk = os.urandom(CHUNK)
    sent = 0
    while sent < size:
        while channel.bufferedAmount > 4 * 1024 * 1024:
            drained.clear()
            await drained.wait()
        channel.send(chunk)
        sent += CHUNK
        await asyncio.sleep(0)


async def measure(
    channel: RTCDataChannel, incoming: asyncio.Future[RTCDataChannel], size: int
) -> float:
    remote = await incoming
    done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
    received = 0

    @remote.on("message")
    def on_message(data: bytes) -> None:
        nonlocal received
        received += len(data)
        if received >= size and not done.done():
            done.set_result(time.perf_counter())

    started = time.perf_counter()
    await pump(channel, size)
    return await asyncio.wait_for(done, 300) - started


async def floor_run(size: int) -> float:
    a, b = RTCPeerConnection(), RTCPeerConnection()
    channel = a.createDataChannel("bench")
    incoming: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
    b.on("datachannel", lambda c: incoming.done() or incoming.set_result(c))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    await asyncio.wait_for(opened.wait(), 30)
    seconds = await measure(channel, incoming, size)
    await a.close()
    await b.close()
    return seconds


async def rtcroom_run(url: str, size: int, run: int) -> float:
    ann = await Room.join(url, f"bench{run}", "Ann")
    incoming: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()
    ann.on("datachannel", lambda peer, c: incoming.done() or incoming.set_result(c))
    bo = await Room.join(url, f"bench{run}", "Bo")
    peer: RemotePeer = await bo.wait_for_peer("Ann", timeout=10)
    channel = peer.createDataChannel("bench")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), 30)
    seconds = await measure(channel, incoming, size)
    await bo.leave()
    await ann.leave()
    return seconds


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def echo_cpu(url: str, participants: int, seconds: float) -> tuple[float, float]:
    bot = subprocess.Popen(
        [sys.executable, "-m", "rtcroom", "bot", "echo", url, "echo-bench"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(3)
        rooms = [
            await Room.join(url, "echo-bench", f"p{i}", tracks=[PatternTrack()])
            for i in range(participants)
        ]
        consumers = []
        frames = [0]
        for room in rooms:

            def consume(peer: RemotePeer, track: object) -> None:
                async def drain() -> None:
                    while True:
                        await track.recv()  # type: ignore[attr-defined]
                        if getattr(track, "kind", "") == "video":
                            frames[0] += 1

                consumers.append(asyncio.ensure_future(drain()))

            room.on("track", consume)
        await asyncio.sleep(5)  # connect and ramp up
        before, started, counted = cpu_seconds(bot.pid), time.perf_counter(), frames[0]
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        used = (cpu_seconds(bot.pid) - before) / elapsed
        fps = (frames[0] - counted) / elapsed / participants
        for task in consumers:
            task.cancel()
        for room in rooms:
            await room.leave()
        return used, fps
    finally:
        bot.terminate()
        bot.wait(10)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--echo-seconds", type=float, default=10.0)
    parser.add_argument("--participants", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rtcroom", "serve", "--port", str(port), "--log-level", "warning"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(2)
        speeds: dict[str, list[float]] = {"rtcroom.client": [], "bare aiortc": []}
        for run in range(args.runs):
            speeds["rtcroom.client"].append(size / await rtcroom_run(url, size, run) / 1e6)
            speeds["bare aiortc"].append(size / await floor_run(size) / 1e6)
        print(f"data channel, {args.size_mb} MiB, {args.runs} runs of each, alternating")
        print("| case | median MB/s | min MB/s | max MB/s |")
        print("|---|---:|---:|---:|")
        for name, values in speeds.items():
            print(
                f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} "
                f"| {max(values):.2f} |"
            )
        ratio = statistics.median(speeds["rtcroom.client"]) / statistics.median(
            speeds["bare aiortc"]
        )
        print(f"ratio rtcroom.client / bare aiortc (medians): {ratio:.2f} (target >= 0.90)")
        print()
        print("| participants | echo bot CPU (cores) | per participant | echoed fps each |")
        print("|---:|---:|---:|---:|")
        for n in args.participants:
            used, fps = await echo_cpu(url, n, args.echo_seconds)
            print(f"| {n} | {used:.2f} | {used / n:.2f} | {fps:.1f} |")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
