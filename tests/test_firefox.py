"""Firefox, a first-class browser: calls with Chromium pages and Python peers.

Debian's Firefox ESR (headless, over WebDriver BiDi) with its fake camera and
microphone, next to Chromium in the same rooms: what a call link sent to
people with either browser must give them.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from browser import (
    ARTIFACT_DIR,
    DIRECT,
    FRAME_COUNTS,
    close,
    ms,
    open_call,
    peer_id,
    seconds,
    wait_frames_advancing,
)
from conftest import RunningJanus, RunningServer
from playwright.sync_api import Browser, Page, expect
from proxy import Proxy
from test_browser_features import open_chat, send_chat, wait_connected
from test_client_browser import Background, background, echo_bot_mirrors  # noqa: F401
from test_sfu_browser import Counter, sfu_server
from test_socketio_browser import (  # noqa: F401
    flask_page,
    open_tutorial,
    pages_url,
    wait_remote_video,
)

from rtcroom.client import Room
from rtcroom.commands.media import PatternTrack

pytestmark = pytest.mark.browser

# The mean brightness (0-255) of what a page shows of `peer`'s camera.
BRIGHTNESS = """(peer) => {
  const video = document.querySelector(`video[data-peer-id="${peer}"]`);
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 48;
  const context = canvas.getContext("2d");
  context.drawImage(video, 0, 0, 64, 48);
  const pixels = context.getImageData(0, 0, 64, 48).data;
  let sum = 0;
  for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
  return sum / (pixels.length / 4) / 3;
}"""

# How loud `peer`'s audio arrives on a page (inbound-rtp audioLevel, 0-1).
AUDIO_LEVEL = """async (peer) => {
  const stats = await window.rtcroom.peers.get(peer).pc.getStats();
  let level = null;
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "audio") level = s.audioLevel ?? null; });
  return level;
}"""


# The simulcast layers a page sends to the SFU: rid -> [width, bytes sent].
LAYERS_SENT = """async () => {
  const layers = {};
  (await window.rtcroom.sfu.publisher.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video") layers[s.rid ?? "-"] = [s.frameWidth ?? 0, s.bytesSent];
  });
  return layers;
}"""


# The SHA-256 of what a download link points at, as hex.
LINK_SHA256 = """async (link) => {
  const digest = await crypto.subtle.digest("SHA-256", await (await fetch(link.href)).arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}"""


def wait_for(
    page: Page, script: str, peer: str, test: object, what: str, timeout: float = 10
) -> None:
    """Poll `script(peer)` in `page` until `test(value)` holds."""
    deadline = time.monotonic() + seconds(timeout)
    values = []
    while time.monotonic() < deadline:
        values.append(page.evaluate(script, peer))
        if test(values[-1]):  # type: ignore[operator]
            return
        time.sleep(0.25)
    raise AssertionError(f"{what}: last values {values[-8:]}")


def test_firefox_and_chromium_in_one_call(
    firefox: Browser, chromium: Browser, server: RunningServer, tmp_path: Path
) -> None:
    """Two Firefox pages and a Chromium page: video all ways, chat, files both
    ways, mute and camera off as the others hear and see them, the stats."""
    fox = open_call(firefox, server.url, "mixed", "Fox")
    chrome = open_call(chromium, server.url, "mixed", "Chrome")
    fern = open_call(firefox, server.url, "mixed", "Fern")
    pages = [fox, chrome, fern]
    wait_connected(pages)
    fox_id, chrome_id = peer_id(fox), peer_id(chrome)
    for page in pages:
        expect(page.locator("#status")).to_have_text("3 in the call")
    ARTIFACT_DIR.mkdir(exist_ok=True)
    fox.screenshot(path=str(ARTIFACT_DIR / "firefox-call-3.png"))

    send_chat(fox, "hello from Firefox")
    send_chat(chrome, "hi from Chromium")
    for page in (chrome, fern):
        expect(page.locator(".message", has_text="hello from Firefox")).to_contain_text("Fox")
    for page in (fox, fern):
        expect(page.locator(".message", has_text="hi from Chromium")).to_contain_text("Chrome")

    # Files both ways, larger than Firefox's and Chromium's SCTP message
    # limits, picked from disk as a user does.
    for sender, receiver, size in ((fox, chrome, 3 * 1024 * 1024), (chrome, fox, 5 * 1024 * 1024)):
        data = os.urandom(size)
        picked = tmp_path / f"from-{peer_id(sender)}" / "notes.bin"
        picked.parent.mkdir()
        picked.write_bytes(data)
        open_chat(sender)
        sender.select_option("#file-to", peer_id(receiver))
        sender.set_input_files("#file-input", picked)
        expect(sender.locator(".transfer.send").last).to_have_attribute(
            "data-state", "done", timeout=ms(60_000)
        )
        received = receiver.locator(".transfer.receive").last
        expect(received).to_have_attribute("data-state", "done")
        expect(received).to_contain_text("SHA-256 verified")
        # What the download link gives, read in the page (Playwright 1.64
        # reports no download event for Firefox's blob downloads).
        link = received.locator("a.download")
        expect(link).to_have_attribute("download", "notes.bin")
        assert link.evaluate(LINK_SHA256) == hashlib.sha256(data).hexdigest()

    # Mute in Firefox: Chromium hears silence; unmuted, the tone again.
    loud = lambda level: level is not None and level > 0.01  # noqa: E731
    wait_for(chrome, AUDIO_LEVEL, fox_id, loud, "Firefox's microphone never reached Chromium")
    fox.click("#toggle-mic")
    expect(fox.locator("#toggle-mic")).to_have_text("Unmute")
    wait_for(chrome, AUDIO_LEVEL, fox_id, lambda level: level == 0, "Firefox muted, still heard")
    fox.click("#toggle-mic")
    wait_for(chrome, AUDIO_LEVEL, fox_id, loud, "Firefox unmuted, not heard")
    # Camera off in Chromium: Firefox sees black, and the picture again after.
    lit = lambda value: value > 20  # noqa: E731
    wait_for(fox, BRIGHTNESS, chrome_id, lit, "Chromium's camera is dark in Firefox")
    chrome.click("#toggle-camera")
    wait_for(fox, BRIGHTNESS, chrome_id, lambda value: value < 5, "Chromium's camera still shows")
    chrome.click("#toggle-camera")
    wait_for(fox, BRIGHTNESS, chrome_id, lit, "Chromium's camera stays dark")

    # The stats overlay in Firefox: candidate types, codec and bitrate.
    fox.click("#toggle-stats")
    overlay = fox.locator(f'figure[data-peer-id="{chrome_id}"] .stats')
    expect(overlay).to_be_visible()
    # Direct; the far end is peer-reflexive when its check beats its candidate.
    expect(overlay.locator('dd[data-stat="connection"]')).to_have_text(DIRECT)
    expect(overlay.locator('dd[data-stat="codec"]')).to_have_text(
        re.compile(r"^(VP8|VP9|H264|AV1)$")
    )
    fox.wait_for_function(
        "() => { const dd = document.querySelector('.stats dd[data-stat=\"in\"]');"
        " return dd && !dd.textContent.startsWith('0 '); }"
    )
    fox.screenshot(path=str(ARTIFACT_DIR / "firefox-stats.png"))

    # Firefox leaves: its tile goes from the others.
    fox.click("#leave")
    for page in (chrome, fern):
        page.wait_for_selector(f'video[data-peer-id="{fox_id}"]', state="detached")
    for page in pages:
        close(page)


def test_headless_firefox_cannot_share_its_screen_and_says_so(
    firefox: Browser, server: RunningServer
) -> None:
    page = open_call(firefox, server.url, "screen-ff", "Fox")
    page.click("#toggle-screen")
    expect(page.locator("#notice")).to_have_text(
        "There is no screen or window this browser can share."
    )
    expect(page.locator("#toggle-screen")).to_have_text("Share screen")
    close(page)


def test_a_firefox_page_resumes_after_its_socket_drops(
    firefox: Browser, chromium: Browser, server: RunningServer, proxy: Proxy
) -> None:
    chrome = open_call(chromium, server.url, "resume-ff", "Chrome")
    fox = open_call(firefox, proxy.url, "resume-ff", "Fox")  # through the proxy
    fox_id, chrome_id = peer_id(fox), peer_id(chrome)
    wait_frames_advancing(chrome, {fox_id})
    wait_frames_advancing(fox, {chrome_id})
    proxy.refuse = True
    assert proxy.drop() >= 1
    fox.wait_for_selector("body[data-reconnecting=true]", timeout=ms(5000))
    before = chrome.evaluate(FRAME_COUNTS)[fox_id]
    time.sleep(2)
    assert chrome.evaluate(FRAME_COUNTS)[fox_id] > before + 10  # media kept flowing
    proxy.refuse = False
    fox.wait_for_selector("body:not([data-reconnecting])", timeout=ms(15_000))
    assert peer_id(fox) == fox_id
    assert chrome.evaluate("() => window.rtcroom.peers.size") == 1
    # Signaling works again: a newcomer reaches Firefox through the resumed socket.
    newcomer = open_call(chromium, server.url, "resume-ff", "Late")
    wait_frames_advancing(fox, {chrome_id, peer_id(newcomer)})
    for page in (fox, chrome, newcomer):
        close(page)


def test_a_firefox_page_and_the_echo_bot(firefox: Browser, server: RunningServer) -> None:
    """`rtcroom bot echo` (aiortc) sends a Firefox page's own video back to it."""
    echo_bot_mirrors(firefox, server, "echo-ff", "Fox", bot_first=False)


def test_a_tutorial_page_in_firefox_calls_one_in_chromium(
    firefox: Browser,
    chromium: Browser,
    server: RunningServer,
    pages_url: str,  # noqa: F811
) -> None:
    """The Flask-SocketIO tutorial's client, unchanged, against the Socket.IO door."""
    fox = open_tutorial(firefox, flask_page(pages_url, server, "tut-ff", "fox"))
    chrome = open_tutorial(chromium, flask_page(pages_url, server, "tut-ff", "chrome"))
    try:
        wait_remote_video(fox)
        wait_remote_video(chrome)
    finally:
        close(fox)
        close(chrome)


def test_firefox_in_an_sfu_room(
    firefox: Browser,
    chromium: Browser,
    start_server: Callable[..., RunningServer],
    janus: RunningJanus,
    background: Background,  # noqa: F811
) -> None:
    """Firefox publishes its simulcast layers to Janus and receives everyone on
    one connection, with a Chromium page and a Python peer in the room."""
    server = sfu_server(start_server, janus, "--sfu-from", "1")

    async def join() -> tuple[Room, Counter]:
        room = await Room.join(server.url, "sfu-ff", "python", tracks=[PatternTrack(320, 240)])
        return room, Counter(room)

    python, counter = background.run(join())
    pages = [
        open_call(firefox, server.url, "sfu-ff", "Fox"),
        open_call(chromium, server.url, "sfu-ff", "Chrome"),
    ]
    try:
        ids = {peer_id(page) for page in pages} | {python.id}
        for page in pages:
            assert page.evaluate("() => window.rtcroom.mode") == "sfu"
            wait_frames_advancing(page, ids - {peer_id(page)}, timeout=45)
        deadline = time.monotonic() + seconds(30)
        while min(counter.frames.get(name, 0) for name in ("Fox", "Chrome")) < 10:
            assert time.monotonic() < deadline, f"the Python peer decoded {counter.frames}"
            time.sleep(0.25)
        # Firefox sends its three simulcast layers to Janus (rids h, m, l), at
        # full, half and quarter size.
        deadline = time.monotonic() + seconds(10)
        while True:
            layers = pages[0].evaluate(LAYERS_SENT)
            if {rid: width for rid, (width, sent) in layers.items() if sent > 0} == {
                "h": 640,
                "m": 320,
                "l": 160,
            }:
                break
            assert time.monotonic() < deadline, f"Firefox's layers: {layers}"
            time.sleep(0.25)
        ARTIFACT_DIR.mkdir(exist_ok=True)
        pages[0].screenshot(path=str(ARTIFACT_DIR / "firefox-sfu-room.png"))
    finally:
        for page in pages:
            close(page)
        background.run(python.leave())
