"""rtcroom.client and the command-line peers next to the web app in Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack
from browser import close, enter, ms, open_call, peer_id, seconds, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser, Page, Route, expect

from rtcroom.client import ChatMessage, RemotePeer, Room, Transfer, send_file

pytestmark = pytest.mark.browser


class Background:
    """An asyncio loop in a thread, for Python peers next to Playwright's sync API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def call(self, function: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return function()

        return self.run(wrapper())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def background() -> Any:
    loop = Background()
    yield loop
    loop.close()


def test_python_peer_and_page_see_each_other_and_chat(
    chromium: Browser, server: RunningServer, background: Background
) -> None:
    page = open_call(chromium, server.url, "mixed", "Ann")
    frames: dict[str, int] = {}
    chats: list[ChatMessage] = []
    counters: set[asyncio.Task[None]] = set()

    async def join() -> Room:
        room = await Room.join(server.url, "mixed", "python", tracks=[VideoStreamTrack()])

        @room.on("track")
        def on_track(peer: RemotePeer, track: MediaStreamTrack) -> None:
            if track.kind == "video":
                counters.add(asyncio.ensure_future(count(peer, track)))

        room.on("chat", lambda peer, message: chats.append(message))
        return room

    async def count(peer: RemotePeer, track: MediaStreamTrack) -> None:
        while True:
            await track.recv()
            frames[peer.name] = frames.get(peer.name, 0) + 1

    room: Room = background.run(join())
    try:
        wait_frames_advancing(page, {room.id})
        for _ in range(100):
            if frames.get("Ann", 0) >= 30:
                break
            page.wait_for_timeout(200)
        assert frames.get("Ann", 0) >= 30, frames
        # Chat both ways with the web app.
        page.click("#toggle-chat")
        page.fill("#chat-input", "hi python")
        page.press("#chat-input", "Enter")
        for _ in range(50):
            if chats:
                break
            page.wait_for_timeout(100)
        assert [(m.name, m.text) for m in chats] == [("Ann", "hi python")]
        background.call(lambda: room.send_chat("hello from Python"))
        expect(page.locator(".message", has_text="hello from Python")).to_contain_text("python")
    finally:
        background.run(room.leave())
        for task in counters:
            background.loop.call_soon_threadsafe(task.cancel)
        close(page)


class Output:
    """A command's output, read line by line as it comes (by a thread of its
    own), so that a wait for a line has a deadline and says what was printed."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.ended = False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.ended = True
            self.changed.notify_all()
        process.stdout.close()

    def text(self) -> str:
        with self.changed:
            return "".join(self.lines)

    def wait_for(self, texts: set[str], timeout: float = 60) -> None:
        """Until each of `texts` has been printed, in any order."""
        deadline = time.monotonic() + seconds(timeout)
        with self.changed:
            while True:
                missing = {t for t in texts if not any(t in line for line in self.lines)}
                if not missing:
                    return
                left = deadline - time.monotonic()
                if self.ended or left <= 0:
                    said = "".join(self.lines)
                    raise AssertionError(f"{sorted(missing)} not printed; it printed:\n{said}")
                self.changed.wait(left)


OUTPUTS: dict[int, Output] = {}


def rtcroom_cli(*args: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "rtcroom", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    OUTPUTS[process.pid] = Output(process)
    return process


def finish(process: subprocess.Popen[str], timeout: float = 90) -> str:
    """Wait for the command to end; all it printed."""
    process.wait(seconds(timeout))
    output = OUTPUTS.pop(process.pid)
    output.thread.join(10)
    return output.text()


def test_send_command_to_a_page(chromium: Browser, server: RunningServer, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024)
    source = tmp_path / "notes.bin"
    source.write_bytes(data)
    page = open_call(chromium, server.url, "cli-send", "Ann")
    other = open_call(chromium, server.url, "cli-send", "Bo")
    process = rtcroom_cli("send", server.url, "cli-send", str(source), "--to", "Ann")
    output = finish(process)
    assert process.returncode == 0, output
    assert "Delivered notes.bin to Ann" in output
    received = page.locator(".transfer.receive")
    expect(received).to_have_attribute("data-state", "done")
    expect(received).to_contain_text("rtcroom-send sent notes.bin")
    download_and_check(page, data, tmp_path)
    expect(other.locator(".transfer")).to_have_count(0)
    close(page)
    close(other)


def test_a_file_sent_before_the_page_loaded_file_transfer_arrives(
    chromium: Browser, server: RunningServer, background: Background, tmp_path: Path
) -> None:
    """The call page loads transfer.js a moment after joining. A Python peer
    sends a file the moment the page connects; transfer.js is held back here
    until the whole file, end and checksum included, has reached the page:
    the page keeps what arrived and shows the file once the module is in."""
    data = os.urandom(600 * 1024)
    source = tmp_path / "early.bin"
    source.write_bytes(data)
    sending: list[asyncio.Future[Transfer]] = []
    progress: list[Transfer] = []

    async def join() -> Room:
        room = await Room.join(server.url, "early-file", "python")

        @room.on("connectionstatechange")
        def on_state(peer: RemotePeer, state: str) -> None:
            if state == "connected" and not sending:
                sending.append(
                    asyncio.ensure_future(send_file(peer, source, on_progress=progress.append))
                )

        return room

    room: Room = background.run(join())
    context = chromium.new_context(permissions=["camera", "microphone"])
    held: list[Route] = []
    try:
        context.route("**/static/transfer.js", lambda route: held.append(route))
        page = context.new_page()
        page.goto(f"{server.url}/r/early-file?name=Ann")
        enter(page)
        for _ in range(150):
            if progress and progress[-1].sha256:
                break
            page.wait_for_timeout(100)
        assert progress and progress[-1].sha256, "the Python peer did not send the file"
        page.wait_for_timeout(500)  # for the end of the file to reach the page
        assert len(held) == 1 and not sending[0].done()
        expect(page.locator(".transfer")).to_have_count(0)
        held[0].continue_()
        received = page.locator(".transfer.receive")
        expect(received).to_have_attribute("data-state", "done")
        expect(received).to_contain_text("python sent early.bin")
        download_and_check(page, data, tmp_path)

        async def delivered() -> Transfer:
            return await sending[0]

        assert background.run(delivered()).state == "done"
    finally:
        background.run(room.leave())
        context.close()


def download_and_check(page: Page, data: bytes, folder: Path) -> None:
    if page.locator("#chat-panel").is_hidden():
        page.click("#toggle-chat")
    with page.expect_download() as info:
        page.click("a.download")
    path = folder / "downloaded"
    info.value.save_as(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_page_to_receive_command(chromium: Browser, server: RunningServer, tmp_path: Path) -> None:
    out = tmp_path / "inbox"
    process = rtcroom_cli("receive", server.url, "cli-recv", "--out", str(out), "--count", "1")
    page = open_call(chromium, server.url, "cli-recv", "Ann")
    page.click("#toggle-chat")
    page.wait_for_selector("#file-to option:has-text('rtcroom-receive')", state="attached")
    receiver = page.locator("#file-to option", has_text="rtcroom-receive").get_attribute("value")
    assert receiver
    page.select_option("#file-to", receiver)
    data = os.urandom(5 * 1024 * 1024)
    page.set_input_files(
        "#file-input", files=[{"name": "photo.raw", "mimeType": "image/x-raw", "buffer": data}]
    )
    output = finish(process)
    assert process.returncode == 0, output
    assert "Saved" in output
    saved = out / "photo.raw"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    expect(page.locator(".transfer.send")).to_have_attribute("data-state", "done")
    assert list(out.iterdir()) == [saved]  # no partial file left behind
    assert peer_id(page)
    close(page)


def stop(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user stops it; all it printed."""
    process.send_signal(signal.SIGINT)
    return finish(process, timeout=30)


@pytest.mark.parametrize("bot_first", [True, False], ids=["bot-first", "page-first"])
def test_echo_bot_returns_a_page_video_to_it(
    chromium: Browser, server: RunningServer, bot_first: bool
) -> None:
    echo_bot_mirrors(chromium, server, "mirror", "Ann", bot_first=bot_first)


def echo_bot_mirrors(
    browser: Browser, server: RunningServer, room: str, name: str, *, bot_first: bool
) -> None:
    """`rtcroom bot echo` sends the page's own video back to it."""
    bot = None
    if bot_first:
        bot = rtcroom_cli("bot", "echo", server.url, room)
        wait_for_output_line(bot, "Echo bot in room")
    page = open_call(browser, server.url, room, name)
    if bot is None:
        bot = rtcroom_cli("bot", "echo", server.url, room)
    try:
        page.wait_for_function("document.querySelectorAll('video[data-peer-id]').length === 1")
        echo_id = page.evaluate("document.querySelector('video[data-peer-id]').dataset.peerId")
        # The bot has no camera: the only video it can send is the page's own.
        wait_frames_advancing(page, {echo_id})
    finally:
        output = stop(bot)
        close(page)
    assert f"Mirroring video of {name}" in output


def wait_for_output_line(process: subprocess.Popen[str], text: str) -> None:
    OUTPUTS[process.pid].wait_for({text})


def wait_for_output_lines(process: subprocess.Popen[str], texts: set[str]) -> None:
    """Until each of `texts` has been printed, in any order."""
    OUTPUTS[process.pid].wait_for(texts)


def test_play_pattern_reaches_the_page(chromium: Browser, server: RunningServer) -> None:
    page = open_call(chromium, server.url, "tv", "Ann")
    player = rtcroom_cli("bot", "play", server.url, "tv", "--pattern")
    try:
        page.wait_for_function("document.querySelectorAll('video[data-peer-id]').length === 1")
        player_id = page.evaluate("document.querySelector('video[data-peer-id]').dataset.peerId")
        wait_frames_advancing(page, {player_id})
        assert page.evaluate("document.querySelector('video[data-peer-id]').videoWidth") == 640
    finally:
        stop(player)
        close(page)


# True once the page's peer connections have sent 75 video frames in all.
SENT_75_FRAMES = """async () => {
  let frames = 0;
  for (const peer of window.rtcroom.peers.values()) {
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp" && s.kind === "video") frames += s.framesSent ?? 0;
    });
  }
  return frames >= 75;
}"""


def test_record_writes_a_playable_file_per_participant(
    chromium: Browser, server: RunningServer, tmp_path: Path
) -> None:
    page = open_call(chromium, server.url, "rec", "Ann")
    recorder = rtcroom_cli("record", server.url, "rec", "--out", str(tmp_path))
    try:
        wait_for_output_line(recorder, "Recording Ann")
        # At least 4 s, and until the page has sent 75 video frames, however
        # long a busy machine takes: the fixed wait alone once stopped the
        # recorder before its file was playable.
        page.wait_for_timeout(4000)
        page.wait_for_function(SENT_75_FRAMES, polling=250, timeout=ms(60_000))
    finally:
        output = stop(recorder)
        close(page)
    files = list(tmp_path.glob("Ann-*.mp4"))
    assert len(files) == 1, output
    with av.open(str(files[0])) as container:
        stream = container.streams.video[0]
        times = [
            float(frame.pts * stream.time_base)
            for frame in container.decode(stream)
            if frame.pts is not None
        ]
    assert len(times) >= 40, len(times)
    assert max(times) - min(times) >= 2.0, (min(times), max(times))


def test_record_keeps_every_pages_audio_and_video_whenever_they_joined(
    chromium: Browser, server: RunningServer, tmp_path: Path
) -> None:
    # Pages before and after the recorder: a page joins while its camera
    # starts, so its video often comes after its audio. Each file must still
    # hold both (it held audio alone when the mp4's header went out before the
    # first video frame), and be playable.
    ann = open_call(chromium, server.url, "rec4", "Ann")
    recorder = rtcroom_cli("record", server.url, "rec4", "--out", str(tmp_path))
    pages = [ann]
    try:
        wait_for_output_line(recorder, "Recording Ann")
        # Opened at once, one after the other, as people do at a meeting's start.
        for name in ("Bo", "Cy", "Dee"):
            context = chromium.new_context(permissions=["camera", "microphone"])
            pages.append(context.new_page())
            pages[-1].goto(f"{server.url}/r/rec4?name={name}")
            enter(pages[-1])
        wait_for_output_lines(recorder, {"Recording Bo", "Recording Cy", "Recording Dee"})
        for page in pages:
            page.wait_for_function(SENT_75_FRAMES, polling=250, timeout=ms(60_000))
    finally:
        output = stop(recorder)
        for page in pages:
            close(page)
    # Each participant's files (a camera later than 3 s after the microphone,
    # on a busy machine, begins a second part: NAME-ID.part2.mp4): every file
    # playable, and audio and video in the last part of each.
    parts: dict[str, list[Path]] = {}
    for path in sorted(tmp_path.glob("*.mp4")):
        with av.open(str(path)):  # every part opens: its index was written
            pass
        parts.setdefault(path.name.split("-")[0], []).append(path)
    assert sorted(parts) == ["Ann", "Bo", "Cy", "Dee"], output

    def part(path: Path) -> int:
        found = re.search(r"\.part(\d+)\.mp4$", path.name)
        return int(found.group(1)) if found else 1

    for name, files in parts.items():
        with av.open(str(max(files, key=part))) as container:
            assert sorted(s.type for s in container.streams) == ["audio", "video"], (name, output)
            assert next(container.decode(video=0)).width > 0, name


def test_a_file_to_everyone_is_refused_in_words_by_a_bot(
    chromium: Browser, server: RunningServer, tmp_path: Path
) -> None:
    # The bot takes no files: the page is told at once, and the person who
    # does take it gets it.
    ann = open_call(chromium, server.url, "everyone", "Ann")
    bo = open_call(chromium, server.url, "everyone", "Bo")
    player = rtcroom_cli("bot", "play", server.url, "everyone", "--pattern", "--name", "player")
    try:
        ann.wait_for_function("document.querySelectorAll('video[data-peer-id]').length === 2")
        picked = tmp_path / "agenda.txt"
        picked.write_bytes(b"1. hello\n" * 1000)
        ann.click("#toggle-chat")
        ann.select_option("#file-to", "")  # Everyone
        ann.set_input_files("#file-input", picked)
        refused = ann.locator(".transfer.send", has_text="player")
        # At once: within seconds, not after a timeout (it used to stay at 100 % for good).
        expect(refused).to_have_attribute("data-state", "cancelled", timeout=ms(5_000))
        expect(refused.locator(".transfer-status")).to_have_text(
            "Cancelled: player does not take files"
        )
        delivered = ann.locator(".transfer.send", has_text="Bo")
        expect(delivered).to_have_attribute("data-state", "done")
        expect(bo.locator(".transfer.receive")).to_have_attribute("data-state", "done")
    finally:
        stop(player)
        close(ann)
        close(bo)
