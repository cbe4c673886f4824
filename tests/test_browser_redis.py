"""A browser call whose two pages are connected to different rtcroom processes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from browser import close, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningRedis, RunningServer
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


def test_call_across_two_processes(
    chromium: Browser, start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    one = start_server("--broker", redis_server.url)
    two = start_server("--broker", redis_server.url)
    a = open_call(chromium, one.url, "split", "Ann")
    b = open_call(chromium, two.url, "split", "Bo")
    b_id = peer_id(b)
    wait_frames_advancing(a, {b_id})
    wait_frames_advancing(b, {peer_id(a)})
    # Leaving on one process removes the tile on the other.
    b.click("#leave")
    a.wait_for_selector(f'video[data-peer-id="{b_id}"]', state="detached", timeout=ms(3000))
    close(a)
    close(b)
