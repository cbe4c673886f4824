"""SFU rooms in the web app: headless Chromium pages and Python peers, through Janus.

`rtcroom serve --sfu` in front of Debian's Janus (from `rtcroom sfu-config`,
in the test network of scripts/netns). The pages publish their fake camera
once, in three simulcast layers, and receive everyone on one connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from aiortc.mediastreams import MediaStreamError
from browser import ARTIFACT_DIR, close, ms, open_call, peer_id, seconds, wait_frames_advancing
from conftest import JANUS_SECRET, RunningJanus, RunningServer
from playwright.sync_api import Browser, Page
from test_client_browser import Background, background  # noqa: F401 (a fixture)

from rtcroom.client import RemotePeer, Room
from rtcroom.commands.media import PatternTrack

pytestmark = pytest.mark.browser


def sfu_server(
    start_server: Callable[..., RunningServer], janus: RunningJanus, *args: str
) -> RunningServer:
    return start_server("--sfu", janus.url, *args, env={"RTCROOM_SFU_SECRET": JANUS_SECRET})


class Counter:
    """Decoded video frames per sending peer's name, for a Python Room."""

    def __init__(self, room: Room) -> None:
        self.frames: dict[str, int] = {}
        self.sizes: dict[str, tuple[int, int]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

        @room.on("track")
        def on_track(peer: RemotePeer, track: object) -> None:
            if getattr(track, "kind", "") == "video":
                self.tasks.add(asyncio.ensure_future(self.count(peer, track)))

    async def count(self, peer: RemotePeer, track: object) -> None:
        while True:
            try:
                frame = await track.recv()  # type: ignore[attr-defined]
            except MediaStreamError:
                return  # the track ended
            self.frames[peer.name] = self.frames.get(peer.name, 0) + 1
            self.sizes[peer.name] = (frame.width, frame.height)


def video_width(page: Page, peer: str) -> int:
    width: int = page.evaluate(
        '(id) => document.querySelector(`video[data-peer-id="${id}"]`)?.videoWidth ?? 0', peer
    )
    return width


def test_pages_and_python_peers_all_receive_everyone(
    chromium: Browser,
    start_server: Callable[..., RunningServer],
    janus: RunningJanus,
    background: Background,  # noqa: F811
) -> None:
    server = sfu_server(start_server, janus, "--sfu-from", "1")
    sizes = {f"python{i}": (320 + 32 * i, 240) for i in range(4)}

    async def join(name: str, size: tuple[int, int]) -> tuple[Room, Counter]:
        room = await Room.join(server.url, "big", name, tracks=[PatternTrack(*size)])
        return room, Counter(room)

    peers = [background.run(join(name, size)) for name, size in sizes.items()]
    pages = [open_call(chromium, server.url, "big", name) for name in ("Ann", "Bo")]
    try:
        page_ids = [peer_id(page) for page in pages]
        python_ids = {room.id for room, _ in peers}
        for page, own in zip(pages, page_ids, strict=True):
            assert page.evaluate("() => window.rtcroom.mode") == "sfu"
            wait_frames_advancing(page, (python_ids | set(page_ids)) - {own}, timeout=45)
        # Every Python peer decodes every other publisher, at its size, and both pages.
        everyone = {*sizes, "Ann", "Bo"}
        deadline = time.monotonic() + seconds(30)
        while time.monotonic() < deadline:
            if all(
                all(counter.frames.get(name, 0) >= 10 for name in everyone - {room.name})
                for room, counter in peers
            ):
                break
            time.sleep(0.25)
        for room, counter in peers:
            assert set(counter.frames) == everyone - {room.name}, (room.name, counter.frames)
            for name, size in sizes.items():
                if name != room.name:
                    assert counter.sizes[name] == size
        # Everything goes through the SFU: one publishing and one subscribing
        # connection on each page, and no media on the connections with the peers.
        routes = pages[0].evaluate(
            """() => {
              const c = window.rtcroom;
              const media = [...c.peers.values()].flatMap((p) => p.pc.getTransceivers());
              return {publisher: c.sfu.publisher.connectionState,
                      subscriber: c.sfu.subscriber.connectionState, mesh: media.length};
            }"""
        )
        assert routes == {"publisher": "connected", "subscriber": "connected", "mesh": 0}
        ARTIFACT_DIR.mkdir(exist_ok=True)
        pages[0].screenshot(path=str(ARTIFACT_DIR / "sfu-room.png"))
    finally:
        for page in pages:
            close(page)
        for room, _ in peers:
            background.run(room.leave())


def test_the_received_layer_follows_the_tile(
    chromium: Browser, start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus, "--sfu-from", "1")
    # A 1280x720 camera, so that its three simulcast layers are 1280, 640 and 320 wide.
    hd = (
        "const gum = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);"
        "navigator.mediaDevices.getUserMedia = (c) => gum(c && c.video ?"
        " {...c, video: {width: 1280, height: 720}} : c);"
    )
    sender = open_call(chromium, server.url, "layers", "sender", init_script=hd)
    viewer = open_call(chromium, server.url, "layers", "viewer")
    try:
        sender_id = peer_id(sender)
        wait_frames_advancing(viewer, {sender_id}, timeout=45)

        def width_within(check: Callable[[int], bool], limit: float) -> int:
            deadline = time.monotonic() + seconds(limit)
            width = video_width(viewer, sender_id)
            while not check(width) and time.monotonic() < deadline:
                viewer.wait_for_timeout(50)
                width = video_width(viewer, sender_id)
            return width

        def show_at(width: int) -> None:
            viewer.evaluate(
                "([id, w]) => window.rtcroom.setReceiveWidth(window.rtcroom.peers.get(id), w)",
                [sender_id, width],
            )

        show_at(1200)
        full = width_within(lambda w: w >= 1280, 10)
        assert full >= 1280
        # Each way, once the call is steady (Janus asks for a key frame at most
        # once a second, and the subscription's start has just asked for one).
        for target, check in [
            (160, lambda w: 0 < w <= full // 2),
            (1200, lambda w: w >= full),
        ]:
            viewer.wait_for_timeout(1500)
            started = time.monotonic()
            show_at(target)
            width = width_within(check, 2)
            took = time.monotonic() - started
            assert check(width) and took < seconds(2), (target, full, width, took)
    finally:
        close(sender)
        close(viewer)


# Per remote <video>: the longest time (ms) without a new frame, since the monitor started.
FREEZE_MONITOR = """() => {
  window.freezes = {};
  const last = {};
  setInterval(() => {
    const now = performance.now();
    for (const v of document.querySelectorAll('video[data-peer-id]')) {
      const id = v.dataset.peerId;
      const frames = v.getVideoPlaybackQuality().totalVideoFrames;
      const seen = last[id];
      if (!seen || frames !== seen.frames) {
        last[id] = {frames, at: now};
      } else {
        window.freezes[id] = Math.max(window.freezes[id] ?? 0, now - seen.at);
      }
    }
  }, 50);
}"""


def test_a_mesh_switches_to_the_sfu_as_it_grows_without_freezing(
    chromium: Browser, start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus, "--sfu-from", "3")
    first = open_call(chromium, server.url, "growing", "first")
    second = open_call(chromium, server.url, "growing", "second")
    pages = [first, second]
    try:
        ids = [peer_id(page) for page in pages]
        wait_frames_advancing(first, {ids[1]})
        wait_frames_advancing(second, {ids[0]})
        assert first.evaluate("() => window.rtcroom.mode") == "mesh"
        for page in pages:
            page.evaluate(FREEZE_MONITOR)
        # How long this machine's pages stand still by themselves (a busy
        # machine's headless Chromium skips painting now and then): the
        # switch is allowed a second more than that, not a second in all.
        time.sleep(3)
        alone = [
            page.evaluate("() => Math.max(0, ...Object.values(window.freezes))") for page in pages
        ]
        for page in pages:
            page.evaluate("() => { window.freezes = {}; }")
        third = open_call(chromium, server.url, "growing", "third")
        pages.append(third)
        ids.append(peer_id(third))
        for page, own in zip(pages, ids, strict=True):
            wait_frames_advancing(page, set(ids) - {own}, timeout=45)
            assert page.evaluate("() => window.rtcroom.mode") == "sfu"
        # The first two now receive each other through the SFU, not directly...
        for page in pages[:2]:
            page.wait_for_function(
                """() => [...window.rtcroom.peers.values()].every((p) =>
                     p.sfuTracks.size >= 2 && p.pc.getTransceivers().every((t) =>
                       t.currentDirection === "stopped" || t.currentDirection === null))""",
                timeout=ms(15_000),
            )
        # ... and their video never stood still for more than a second on the way.
        time.sleep(1)
        for page, own, by_itself in zip(pages[:2], ids[:2], alone, strict=True):
            freezes: dict[str, float] = page.evaluate("() => window.freezes")
            other = next(i for i in ids[:2] if i != own)
            assert freezes.get(other, 0) <= 1000 + by_itself, (freezes, by_itself)
    finally:
        for page in pages:
            close(page)
