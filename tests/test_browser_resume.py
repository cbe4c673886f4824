"""Calls survive the signaling connection: dropped sockets resume, restarts reconnect."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from browser import FRAME_COUNTS, close, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser, Page
from proxy import Proxy

pytestmark = pytest.mark.browser


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[Proxy]:
    forwarder = Proxy(server.port)
    yield forwarder
    forwarder.close()


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


def test_after_a_server_restart_pages_reconnect_and_call_again(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server()
    a = open_call(chromium, server.url, "restart", "Ann")
    b = open_call(chromium, server.url, "restart", "Bo")
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
        assert page.locator("figure.tile").count() == 2
        assert "2 in the call" in page.inner_text("#status")
    restarted.stop()
    for page in (a, b):
        close(page)
