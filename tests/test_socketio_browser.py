"""The seeds' Socket.IO tutorial clients, unchanged, in headless Chromium against rtcroom.

Their pages (tests/tutorials/, socket.io-client from npm) are served from
another origin, as the tutorials do (python -m http.server), and point at
rtcroom instead of their own signaling server.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser import close, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningServer, free_port, stop_process
from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

TUTORIALS = Path(__file__).resolve().parent / "tutorials"

# Frames decoded by the tutorial page's remote <video> (Firefox: painted; see
# browser.FRAME_COUNTS).
REMOTE_FRAMES = """() => {
  const v = document.querySelector('#remoteStream');
  return v.videoWidth > 0 ? (v.mozPaintedFrames ?? v.getVideoPlaybackQuality().totalVideoFrames) : 0;
}"""


@pytest.fixture(scope="module")
def pages_url() -> Iterator[str]:
    """The tutorial pages on their own static server, as the tutorials serve them."""
    if not (TUTORIALS / "node_modules/socket.io-client/dist/socket.io.min.js").exists():
        raise RuntimeError(
            "socket.io-client is missing: run scripts/test (npm ci in tests/tutorials)"
        )
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=TUTORIALS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/flask/index.html", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    stop_process(process)


def open_tutorial(browser: Browser, url: str) -> Page:
    context = browser.new_context(permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto(url)
    return page


def wait_remote_video(page: Page, timeout: float = 30.0) -> None:
    """Wait until the tutorial page plays its remote video, frames advancing."""
    deadline = time.monotonic() + timeout
    first = 0
    while time.monotonic() < deadline:
        frames: int = page.evaluate(REMOTE_FRAMES)
        if frames > 0 and not first:
            first = frames
        elif first and frames > first:
            return
        time.sleep(0.25)
    raise AssertionError(f"{page.url}: no advancing remote video (frames: {first})")


def flask_page(pages_url: str, server: RunningServer, room: str, username: str) -> str:
    query = urlencode({"server": server.url, "room": room, "username": username})
    return f"{pages_url}/flask/index.html?{query}"


def aiohttp_page(pages_url: str, server: RunningServer) -> str:
    return f"{pages_url}/aiohttp/index.html?{urlencode({'server': server.url})}"


def test_two_flask_tutorial_pages_call_each_other(
    chromium: Browser, server: RunningServer, pages_url: str
) -> None:
    a = open_tutorial(chromium, flask_page(pages_url, server, "tut", "ann"))
    b = open_tutorial(chromium, flask_page(pages_url, server, "tut", "bo"))
    # Another pair in another room: rooms keep them apart.
    c = open_tutorial(chromium, flask_page(pages_url, server, "other", "cy"))
    try:
        wait_remote_video(a)
        wait_remote_video(b)
        assert c.evaluate(REMOTE_FRAMES) == 0
    finally:
        for page in (a, b, c):
            close(page)


def test_two_aiohttp_tutorial_pages_call_each_other(
    chromium: Browser, server: RunningServer, pages_url: str
) -> None:
    a = open_tutorial(chromium, aiohttp_page(pages_url, server))
    # The second tab comes a moment later, as a person opens it.
    time.sleep(1.0)
    b = open_tutorial(chromium, aiohttp_page(pages_url, server))
    try:
        wait_remote_video(a)
        wait_remote_video(b)
    finally:
        for page in (a, b):
            close(page)


def test_tutorial_page_and_web_app_in_one_call(
    chromium: Browser, server: RunningServer, pages_url: str
) -> None:
    # The tutorial page first: the web app is the newcomer and offers.
    tutorial = open_tutorial(chromium, flask_page(pages_url, server, "mixed", "tut"))
    time.sleep(1.0)
    web = open_call(chromium, server.url, "mixed", "web")
    try:
        peers = web.evaluate("() => [...window.rtcroom.peers.values()].map(p => p.id)")
        assert len(peers) == 1
        wait_frames_advancing(web, set(peers))
        wait_remote_video(tutorial)
        label = web.locator(f'figure.tile:has(video[data-peer-id="{peers[0]}"]) figcaption')
        assert "tut" in label.inner_text()
    finally:
        close(tutorial)
        close(web)

    # The web app first: the tutorial page (single-room variant) is the
    # newcomer, gets ready and offers; the web app answers.
    web = open_call(chromium, server.url, "room", "web")
    tutorial = open_tutorial(chromium, aiohttp_page(pages_url, server))
    try:
        web.wait_for_function("() => window.rtcroom.peers.size === 1", timeout=ms(10_000))
        peers = web.evaluate("() => [...window.rtcroom.peers.values()].map(p => p.id)")
        wait_frames_advancing(web, set(peers))
        wait_remote_video(tutorial)
        own = peer_id(web)
        assert own not in peers
    finally:
        close(tutorial)
        close(web)
