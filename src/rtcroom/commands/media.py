"""Media bots: `rtcroom bot echo`, `rtcroom bot play`, `rtcroom record`."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from rich.console import Console

from ..client import RemotePeer, Room, RoomError, Status
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
        # It sends each participant their own picture and sound back.
        room = await Room.join(url, room_name, name, token=token, state=Status(kind="bot"))
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


def _file_name(peer: RemotePeer, part: int = 1) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", peer.name or "guest").strip("._") or "guest"
    return f"{safe}-{peer.id[:8]}{'' if part == 1 else f'.part{part}'}.mp4"


# How long a participant's recording waits, once connected, for its other
# track (a page joins while its camera starts, and its video often comes in
# a renegotiation after the audio), and then for each track's first frame.
SETTLE = 3.0


class Recording:
    """One participant's tracks into one file (mp4: H.264 and AAC, as aiortc's MediaRecorder).

    Nothing is written before the tracks have sent their first frames: an
    mp4's header is written with the first packet, and a video stream whose
    size was not known by then was lost, leaving files of audio only when
    the camera started after the microphone. The file begins once one track
    has sent a frame and the others have too, or SETTLE s later; a track
    still silent then is left out, and `on_late` is called when it sends its
    first frame (the next part of the recording takes it).
    """

    def __init__(
        self,
        path: Path,
        tracks: list[MediaStreamTrack],
        on_begin: Callable[[list[str]], None],
        on_late: Callable[[], None],
    ) -> None:
        self.path = path
        self.tracks = tracks
        self.on_begin = on_begin
        self.on_late = on_late
        self.container: Any = None
        self._task: asyncio.Task[None] | None = None
        # Frames the encoder or muxer refused, and the last reason.
        self.skipped = 0
        self.error = ""

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        waits = {asyncio.ensure_future(track.recv()): track for track in self.tracks}
        try:
            # However long the first frame takes (a busy machine), then the others.
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                more, pending = await asyncio.wait(pending, timeout=SETTLE)
                done |= more
        finally:
            for wait in waits:
                wait.cancel()  # (a recv cancelled before its frame loses nothing)
        started: list[tuple[MediaStreamTrack, Any]] = [
            (waits[wait], wait.result())
            for wait in done
            if not wait.cancelled() and wait.exception() is None
        ]
        late = [waits[wait] for wait in pending]
        if not started:
            return
        self.container = container = av.open(str(self.path), mode="w")
        self.on_begin(sorted(track.kind for track, _ in started))
        work = [self._late(track) for track in late]
        for track, frame in started:
            if track.kind == "audio":
                work.append(self._pump(track, container.add_stream("aac"), frame))
                continue
            video = container.add_stream("libx264", rate=30)
            video.pix_fmt = "yuv420p"
            video.width, video.height = frame.width, frame.height
            work.append(self._pump(track, video, frame))
        await asyncio.gather(*work)

    async def _late(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            await track.recv()
            self.on_late()

    async def _pump(self, track: MediaStreamTrack, stream: Any, frame: Any) -> None:
        while True:
            try:
                for packet in stream.encode(frame):
                    self.container.mux(packet)
            except av.FFmpegError as exc:
                # One frame the encoder or muxer refuses (a timestamp going
                # back after packet loss, say) costs that frame, not the file.
                self.skipped += 1
                self.error = str(exc)
            try:
                frame = await track.recv()
            except MediaStreamError:
                return

    async def stop(self) -> None:
        """End the file, always playable (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.container is not None:
            container, self.container = self.container, None
            try:
                for stream in container.streams:
                    with contextlib.suppress(av.FFmpegError):
                        for packet in stream.encode(None):
                            container.mux(packet)
            finally:
                container.close()


async def record(url: str, room_name: str, name: str, token: Token, folder: Path) -> int:
    """Record each participant to a playable file of its own, until stopped.

    A file holds the tracks its participant had when it began. A track that
    comes later (a camera turned on, a new connection after an ICE restart
    or the move to the SFU) closes that file and begins the next part
    (`NAME-ID.part2.mp4`, ...) with all of them: nothing is lost.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        # Everyone in the call is told that it is recorded while we are in it.
        recorder = Status(mic="none", camera="none", kind="recorder")
        room = await Room.join(url, room_name, name, token=token, state=recorder)
    except RoomError as exc:
        console.print(f"[red]rtcroom record: {exc.message}")
        return 1
    loop = asyncio.get_running_loop()
    # Per peer id: its latest track of each kind, the recorder and the tracks
    # it records, the number of its last part, the settle timer.
    tracks: dict[str, dict[str, MediaStreamTrack]] = {}
    recorders: dict[str, Recording] = {}
    recorded: dict[str, dict[str, MediaStreamTrack]] = {}
    parts: dict[str, int] = {}
    timers: dict[str, asyncio.TimerHandle] = {}
    work: set[asyncio.Task[None]] = set()

    def spawn(coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        work.add(task)
        task.add_done_callback(work.discard)

    def begin(peer: RemotePeer) -> None:
        timer = timers.pop(peer.id, None)
        if timer is not None:
            timer.cancel()
        if peer.id in recorders or not tracks.get(peer.id) or peer.id not in room.peers:
            return
        parts[peer.id] = part = parts.get(peer.id, 0) + 1
        path = folder / _file_name(peer, part)

        def began(kinds: list[str]) -> None:
            # Once the file has its first frames: what it holds.
            console.print(f"Recording [bold]{peer.name}[/bold] ({' and '.join(kinds)}) to {path}")

        recorder = Recording(
            path, list(tracks[peer.id].values()), began, lambda: spawn(next_part(peer))
        )
        recorders[peer.id] = recorder
        recorded[peer.id] = dict(tracks[peer.id])
        recorder.start()

    async def next_part(peer: RemotePeer) -> None:
        recorder = recorders.pop(peer.id, None)
        if recorder is not None:
            await recorder.stop()
        begin(peer)

    @room.on("track")
    def on_track(peer: RemotePeer, track: MediaStreamTrack) -> None:
        tracks.setdefault(peer.id, {})[track.kind] = track
        if peer.id in recorders:
            if recorded[peer.id].get(track.kind) is not track:
                spawn(next_part(peer))
        elif room.mode == "sfu" or len(tracks[peer.id]) == 2:
            # Through the SFU a peer's tracks arrive together, with its offer;
            # with both kinds there is nothing more to wait for.
            loop.call_soon(begin, peer)
        elif peer.pc.connectionState == "connected":
            on_state(peer, "connected")

    @room.on("connectionstatechange")
    def on_state(peer: RemotePeer, state: str) -> None:
        if state == "connected" and peer.id not in recorders and peer.id not in timers:
            timers[peer.id] = loop.call_later(SETTLE, begin, peer)

    async def finish(peer_id: str) -> None:
        timer = timers.pop(peer_id, None)
        if timer is not None:
            timer.cancel()
        recorder = recorders.pop(peer_id, None)
        if recorder is not None:
            await recorder.stop()
            if recorder.skipped:
                console.print(
                    f"[yellow]{recorder.path.name}: {recorder.skipped} frame(s) left out "
                    f"({recorder.error})"
                )

    @room.on("peerleft")
    def on_left(peer: RemotePeer) -> None:
        spawn(finish(peer.id))
        tracks.pop(peer.id, None)
        console.print(f"{peer.name} left; their recording is complete")

    console.print(f"Recording room [bold]{room_name}[/bold] into {folder} (Ctrl-C to stop)")
    try:
        await _run_until_stopped(room)
    finally:
        await asyncio.gather(*work, return_exceptions=True)
        await asyncio.gather(
            *(finish(peer_id) for peer_id in {*recorders, *timers}), return_exceptions=True
        )
        await room.leave()
        console.print("Recordings closed")
    return 0
