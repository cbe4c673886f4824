"""Media bots: `rtcroom bot echo`, `rtcroom bot play`, `rtcroom record`."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import av
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.contrib.media import MediaPlayer, MediaRecorder, MediaRelay
from aiortc.mediastreams import MediaStreamTrack
from rich.console import Console

from ..client import RemotePeer, Room, RoomError
from ..client.room import Token

console = Console(stderr=True, soft_wrap=True)


class PatternTrack(VideoStreamTrack):
    """A test pattern: colour bars with a bar that sweeps once a second."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width, self.height = width, height
        colors = np.array(
            [
                [192, 192, 192],
                [192, 192, 0],
                [0, 192, 192],
                [0, 192, 0],
                [192, 0, 192],
                [192, 0, 0],
                [0, 0, 192],
            ],
            dtype=np.uint8,
        )
        columns = np.repeat(np.arange(7), -(-width // 7))[:width]
        self.bars = np.broadcast_to(colors[columns], (height, width, 3)).copy()
        self.started = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        image = self.bars.copy()
        x = int(((time.monotonic() - self.started) % 1.0) * self.width)
        image[:, max(0, x - 8) : x + 8] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


async def _run_until_stopped(room: Room) -> None:
    """Wait for Ctrl-C (cancellation) or the room closing (refused for good).

    A dropped server connection is not the end: the Room reconnects; say so.
    """

    @room.on("reconnecting")
    def lost(attempt: int) -> None:
        if attempt == 1:
            console.print("[yellow]Lost the server; reconnecting (the calls go on meanwhile)…")

    @room.on("reconnected")
    def back(resumed: bool) -> None:
        console.print(
            "Back in the room" if resumed else "Back as someone new: calling everyone again"
        )

    @room.on("error")
    def refused(error: RoomError) -> None:
        console.print(f"[red]{error.message}")

    with contextlib.suppress(asyncio.CancelledError):
        await room.wait_closed()


async def echo(url: str, room_name: str, name: str, token: Token) -> int:
    """Send every participant's own video and audio back to them."""
    relay = MediaRelay()
    try:
        room = await Room.join(url, room_name, name, token=token)
    except RoomError as exc:
        console.print(f"[red]rtcroom bot echo: {exc.message}")
        return 1

    mirrors: set[asyncio.Task[None]] = set()

    @room.on("track")
    def mirror(peer: RemotePeer, track: MediaStreamTrack) -> None:
        console.print(f"Mirroring {track.kind} of [bold]{peer.name}[/bold]")
        if room.mode == "sfu":
            # Through the SFU, the mirror goes to everyone (the SFU sends no
            # one a stream of its own).
            task = asyncio.ensure_future(room.publish(relay.subscribe(track)))
            mirrors.add(task)
            task.add_done_callback(mirrors.discard)
            return
        # Runs while the peer's offer is applied: the answer then sends the
        # track back on the same transceiver (no extra negotiation).
        peer.pc.addTrack(relay.subscribe(track))
        if not peer.answering:
            # The track came with an answer to our offer (we joined after
            # them): offer once more to send it back.
            peer.renegotiate_soon()

    room.on("peerleft", lambda peer: console.print(f"{peer.name} left"))
    console.print(f"Echo bot in room [bold]{room_name}[/bold] (Ctrl-C to stop)")
    try:
        await _run_until_stopped(room)
    finally:
        await room.leave()
    return 0


async def play(
    url: str, room_name: str, name: str, token: Token, source: Path | None, loop: bool
) -> int:
    """Stream a media file (or a test pattern) into the room."""
    tracks: list[MediaStreamTrack] = []
    player: MediaPlayer | None = None
    if source is None:
        tracks.append(PatternTrack())
    else:
        if not source.exists():
            console.print(f"[red]rtcroom bot play: {source} does not exist")
            return 2
        try:
            player = MediaPlayer(str(source), loop=loop)
        except av.FFmpegError as exc:
            console.print(f"[red]rtcroom bot play: cannot read {source}: {exc}")
            return 2
        tracks.extend(t for t in (player.audio, player.video) if t is not None)
        if not tracks:
            console.print(f"[red]rtcroom bot play: {source} has no audio or video to play")
            return 2
    try:
        room = await Room.join(url, room_name, name, tracks=tracks, token=token)
    except RoomError as exc:
        console.print(f"[red]rtcroom bot play: {exc.message}")
        return 1
    what = "a test pattern" if source is None else source.name
    console.print(f"Playing {what} into room [bold]{room_name}[/bold] (Ctrl-C to stop)")
    room.on("peerjoined", lambda peer: console.print(f"{peer.name or peer.id} joined"))
    try:
        await _run_until_stopped(room)
    finally:
        await room.leave()
        for track in tracks:
            track.stop()
    return 0


def _file_name(peer: RemotePeer) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", peer.name or "guest").strip("._") or "guest"
    return f"{safe}-{peer.id[:8]}.mp4"


async def record(url: str, room_name: str, name: str, token: Token, folder: Path) -> int:
    """Record each participant to a playable file of its own, until stopped."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        room = await Room.join(url, room_name, name, token=token)
    except RoomError as exc:
        console.print(f"[red]rtcroom record: {exc.message}")
        return 1
    recorders: dict[str, MediaRecorder] = {}
    pending: dict[str, list[MediaStreamTrack]] = {}
    starts: set[asyncio.Task[None]] = set()

    @room.on("track")
    def on_track(peer: RemotePeer, track: MediaStreamTrack) -> None:
        pending.setdefault(peer.id, []).append(track)
        if room.mode == "sfu":
            # Everyone comes through one subscription: a peer's tracks arrive
            # together, with the SFU's offer; start once they are all there.
            asyncio.get_running_loop().call_soon(on_state, peer, "connected")

    @room.on("connectionstatechange")
    def on_state(peer: RemotePeer, state: str) -> None:
        if state == "connected" and peer.id not in recorders and pending.get(peer.id):
            path = folder / _file_name(peer)
            recorder = MediaRecorder(str(path))
            for track in pending.pop(peer.id):
                recorder.addTrack(track)
            recorders[peer.id] = recorder
            starts.add(asyncio.ensure_future(recorder.start()))
            console.print(f"Recording [bold]{peer.name}[/bold] to {path}")

    async def finish(peer_id: str) -> None:
        recorder = recorders.pop(peer_id, None)
        if recorder is not None:
            await recorder.stop()

    @room.on("peerleft")
    def on_left(peer: RemotePeer) -> None:
        starts.add(asyncio.ensure_future(finish(peer.id)))
        console.print(f"{peer.name} left; their recording is complete")

    console.print(f"Recording room [bold]{room_name}[/bold] into {folder} (Ctrl-C to stop)")
    try:
        await _run_until_stopped(room)
    finally:
        await asyncio.gather(*starts, return_exceptions=True)
        await asyncio.gather(
            *(finish(peer_id) for peer_id in list(recorders)), return_exceptions=True
        )
        await room.leave()
        console.print("Recordings closed")
    return 0
