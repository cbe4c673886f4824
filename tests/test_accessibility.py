"""The lobby and the call page for everyone: axe-core at zero WCAG 2.1 AA
violations in every state, in Chromium and Firefox, and what axe cannot see
(keyboard only, focus, announcements, shortcuts)."""

from __future__ import annotations

import pytest
from browser import (
    check_accessibility,
    close,
    ms,
    open_call,
    peer_id,
)
from conftest import RunningServer
from playwright.sync_api import Browser, expect
from test_browser_features import PICK_GENERATED_FILE, open_chat, wait_connected

pytestmark = pytest.mark.browser


@pytest.fixture(params=["chromium", "firefox"])
def browser(request: pytest.FixtureRequest) -> Browser:
    value: Browser = request.getfixturevalue(request.param)
    return value


def test_every_state_of_the_app_passes_axe(browser: Browser, server: RunningServer) -> None:
    context = browser.new_context(permissions=["camera", "microphone"])
    lobby = context.new_page()
    lobby.goto(server.url + "/")
    check_accessibility(lobby, "lobby")

    # A link without a name: the name dialog.
    lobby.goto(server.url + "/r/a11y")
    expect(lobby.locator("#name-dialog")).to_be_visible()
    check_accessibility(lobby, "name dialog")
    lobby.fill("#dialog-name", "Ann")
    lobby.press("#dialog-name", "Enter")
    lobby.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    ann = lobby
    expect(ann.locator("#status")).to_have_text("Waiting for others…")
    check_accessibility(ann, "alone in a room")

    bo = open_call(browser, server.url, "a11y", "Bo")
    cy = open_call(browser, server.url, "a11y", "Cy")
    wait_connected([ann, bo, cy])
    check_accessibility(ann, "3-party call")

    open_chat(ann)
    ann.fill("#chat-input", "hello")
    ann.press("#chat-input", "Enter")
    expect(bo.locator(".message", has_text="hello")).to_have_count(1)
    check_accessibility(ann, "chat open")

    ann.select_option("#file-to", peer_id(bo))
    ann.evaluate(PICK_GENERATED_FILE, ["big.bin", 300 * 1024 * 1024])
    expect(ann.locator(".transfer.send")).to_have_attribute("data-state", "sending")
    open_chat(bo)
    expect(bo.locator(".transfer.receive")).to_have_attribute("data-state", "receiving")
    check_accessibility(ann, "transfer in progress (sender)")
    check_accessibility(bo, "transfer in progress (receiver)")
    ann.click(".transfer button.cancel")
    expect(bo.locator(".transfer.receive")).to_have_attribute("data-state", "cancelled")

    ann.click("#open-settings")
    expect(ann.locator("#settings-dialog")).to_be_visible()
    check_accessibility(ann, "settings")
    ann.click("#settings-done")

    ann.click("#toggle-stats")
    expect(ann.locator(".tile .stats").first).to_be_visible()
    ann.wait_for_function(
        "() => { const dd = document.querySelector('.stats dd[data-stat=\"in\"]');"
        " return dd && !dd.textContent.startsWith('0 '); }"
    )
    check_accessibility(ann, "stats")
    for page in (ann, bo, cy):
        close(page)


def test_axe_reports_what_it_should(chromium: Browser, server: RunningServer) -> None:
    """The check fails on a page that breaks the rules: a nameless button and
    grey text on grey."""
    page = chromium.new_page()
    page.goto(server.url + "/")
    page.evaluate(
        """() => {
          const bad = document.createElement("button");
          bad.style.cssText = "color: #777; background: #666";
          const text = document.createElement("p");
          text.textContent = "hard to read";
          text.style.cssText = "color: #777; background: #666";
          document.querySelector("main").append(bad, text);
        }"""
    )
    with pytest.raises(AssertionError) as failure:
        check_accessibility(page, "lobby, broken on purpose")
    assert "button-name" in str(failure.value)
    assert "color-contrast" in str(failure.value)
    page.close()
