"""Real calls: the web app in headless Chromium with fake camera and microphone."""

from __future__ import annotations

import time

import pytest
from browser import ARTIFACT_DIR, close, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("parties", [2, 3, 4])
def test_everyone_sees_everyone(chromium: Browser, server: RunningServer, parties: int) -> None:
    pages = [open_call(chromium, server.url, "standup", f"user{i}") for i in range(parties)]
    ids = [peer_id(page) for page in pages]
    assert len(set(ids)) == parties
    for page, own in zip(pages, ids, strict=True):
        wait_frames_advancing(page, set(ids) - {own})
    for page in pages:
        labels = page.locator("figure.tile figcaption").all_inner_texts()
        assert len(labels) == parties
    if parties == 3:
        ARTIFACT_DIR.mkdir(exist_ok=True)
        pages[0].screenshot(path=str(ARTIFACT_DIR / "call-3.png"))

    # The last one leaves: its tile disappears from every other page within a second.
    leaver = pages.pop()
    gone = ids.pop()
    leaver.click("#leave")
    started = time.monotonic()
    for page in pages:
        page.wait_for_selector(f'video[data-peer-id="{gone}"]', state="detached", timeout=ms(3000))
    assert time.monotonic() - started < 2.0
    close(leaver)
    for page in pages:
        close(page)
