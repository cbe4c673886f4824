"""Calls survive the signaling connection: dropped sockets resume, restarts reconnect."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import pytest
from browser import FRAME_COUNTS, close, ms, open_call, peer_id, seconds, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser, Page
from proxy import Proxy

pytestmark = pytest.mark.browser


def frames(page: Page, peer: str) -> int:
    count: int = page.evaluate(FRAME_COUNTS).get(peer, 0)
    return count


def test_a_dropped_socket_resumes_and_the_call_never_stops(
    chromium: Browser, server: RunningServer, proxy: Proxy
) -> None:
    a = open_call(chromium, server.url, "resume", "Ann")
    b = open_call(chromium, proxy.url, "resume", "Bo")  # b's signaling goes through the proxy
    a_id, b_id = peer_id(a), peer_id(b)
    wait_frames_advancing(a, {b_id})
    wait_frames_advancing(b, {a_id})

    # The network between b and the server fails, and stays down for 3 s.
    proxy.refuse = True
    assert proxy.drop() >= 1
    b.wait_for_selector("body[data-reconnecting=true]", timeout=ms(5000))
    assert "Reconnecting" in b.inner_text("#status")
    before = (frames(a, b_id), frames(b, a_id))
    time.sleep(3)
    # Media is peer to peer: it kept flowing both ways, and a kept b's tile.
    assert frames(a, b_id) > before[0] + 20
    assert frames(b, a_id) > before[1] + 20
    assert a.locator(f'video[data-peer-id="{b_id}"]').count() == 1

    proxy.refuse = False
    b.wait_for_selector("body:not([data-reconnecting])", timeout=ms(15_000))
    assert peer_id(b) == b_id  # resumed, same id
    assert "2 in the call" in b.inner_text("#status")
    # Nobody saw b leave or come back.
    assert a.evaluate("() => window.rtcroom.peers.size") == 1
    wait_frames_advancing(a, {b_id})
    wait_frames_advancing(b, {a_id})
    # And signaling works again: a newcomer reaches b through the resumed connection.
    c = open_call(chromium, server.url, "resume", "Cy")
    wait_frames_advancing(b, {a_id, peer_id(c)})
    for page in (a, b, c):
        close(page)


@pytest.mark.parametrize("second", ["chromium", "firefox"])
def test_after_a_server_restart_pages_reconnect_and_call_again(
    chromium: Browser,
    start_server: Callable[..., RunningServer],
    request: pytest.FixtureRequest,
    second: str,
) -> None:
    server = start_server()
    a = open_call(chromium, server.url, "restart", "Ann")
    b = open_call(request.getfixturevalue(second), server.url, "restart", "Bo")
    wait_frames_advancing(a, {peer_id(b)})
    server.stop()  # SIGTERM: clients get bye and close code 1012
    a.wait_for_selector("body[data-reconnecting=true]", timeout=ms(5000))
    restarted = start_server(port=server.port)
    for page in (a, b):
        page.wait_for_selector("body:not([data-reconnecting])", timeout=ms(20_000))
    # A new process knows nobody: each page joined afresh and the calls were set up again.
    a_id, b_id = peer_id(a), peer_id(b)
    wait_frames_advancing(a, {b_id})
    wait_frames_advancing(b, {a_id})
    for page in (a, b):
        assert page.locator("#grid figure.tile").count() == 2
        assert "2 in the call" in page.inner_text("#status")
    restarted.stop()
    for page in (a, b):
        close(page)


# The address the pages' connections use now, and the ICE username fragment
# of the local description (new after an ICE restart).
PATH_IN_USE = """async () => {
  const peer = [...window.rtcroom.peers.values()][0];
  let address = null;
  const stats = await peer.pc.getStats();
  stats.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") {
      address = stats.get(s.localCandidateId)?.address ?? address;
    }
  });
  return {address, ufrag: /a=ice-ufrag:(\\S+)/.exec(peer.pc.localDescription.sdp)[1]};
}"""

VETH, NEW_ADDRESS = "10.77.0.1", "10.77.0.2"

# Video frames the page has decoded from its (one) peer.
DECODED = """async () => {
  const peer = [...window.rtcroom.peers.values()][0];
  let frames = 0;
  (await peer.pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
  });
  return frames;
}"""


def wait_decoding(page: Page, frames: int = 30, timeout: float = 20) -> None:
    """Wait until `page` decodes `frames` more video frames from its peer."""
    start = page.evaluate(DECODED)
    deadline = time.monotonic() + seconds(timeout)
    while (now := page.evaluate(DECODED)) < start + frames:
        assert time.monotonic() < deadline, f"{now - start} frames decoded in {timeout} s"
        time.sleep(0.25)


def set_address(old: str, new: str) -> None:
    """The test network's interface changes address (scripts/netns: root only)."""
    subprocess.run(["ip", "addr", "del", f"{old}/24", "dev", "rtc0"], check=True)
    subprocess.run(["ip", "addr", "add", f"{new}/24", "dev", "rtc0"], check=True)


@pytest.mark.parametrize("second", ["chromium", "firefox"])
def test_a_network_change_restarts_ice_and_the_media_comes_back(
    chromium: Browser, server: RunningServer, request: pytest.FixtureRequest, second: str
) -> None:
    """The address every connection uses goes away and another comes (a
    laptop moving to another network): ICE restarts on new candidates and
    video flows again both ways, with no page reloaded."""
    if os.environ.get("RTCROOM_NETNS") != "1":
        raise RuntimeError("this test changes the test network's address: run it in scripts/netns")
    other: Browser = request.getfixturevalue(second)
    a = open_call(chromium, server.url, "roam", "Ann")
    b = open_call(other, server.url, "roam", "Bo")
    a_id, b_id = peer_id(a), peer_id(b)
    wait_frames_advancing(a, {b_id})
    wait_frames_advancing(b, {a_id})
    before = {page: page.evaluate(PATH_IN_USE) for page in (a, b)}
    assert before[a]["address"] == VETH
    set_address(VETH, NEW_ADDRESS)
    try:
        # Frozen first (the old address is gone), then back on the new one.
        for page in (a, b):
            page.wait_for_function(
                "(ufrag) => { const p = [...window.rtcroom.peers.values()][0];"
                " return p.pc.iceConnectionState === 'connected'"
                " && !p.pc.localDescription.sdp.includes(`a=ice-ufrag:${ufrag}`); }",
                arg=before[page]["ufrag"],
                timeout=ms(45_000),
            )
        # Video decoded again on both sides, over the new address. (Decoded,
        # not painted: a busy machine's headless Chromium sometimes stops
        # painting a window it does not show, whatever the network does.)
        for page in (a, b):
            wait_decoding(page)
            assert page.evaluate(PATH_IN_USE)["address"] == NEW_ADDRESS
        # The same peers, no tile lost, nobody rejoined.
        assert peer_id(a) == a_id and peer_id(b) == b_id
        assert a.locator("#grid figure.tile").count() == 2
    finally:
        set_address(NEW_ADDRESS, VETH)
    for page in (a, b):
        close(page)
