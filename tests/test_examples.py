"""examples/: each file run as its docstring says, the call pages in headless Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser import close, enter, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningRedis, RunningServer, free_port, stop_process, wait_healthy
from playwright.sync_api import Browser, Page, expect

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.browser


@pytest.fixture
def start_example(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    """Serve `module:app` from examples/ with uvicorn, from the repository's root."""
    started: list[RunningServer] = []

    def start(module: str, prefix: str = "/rtc", **env: str) -> RunningServer:
        port = free_port()
        log = tmp_path / f"{module}-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", f"examples.{module}:app", "--port", str(port)],
                cwd=ROOT,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "APP_SECRET": "the-site-s-own-cookie-secret", **env},
            )
        server = RunningServer(process, port, log, prefix)
        started.append(server)
        wait_healthy(server)
        return server

    yield start
    for server in started:
        server.stop()


def logged_in_call(browser: Browser, site: str, user: str, room: str) -> Page:
    """Log in as `user` on the site, which sends us on to the room's call page.

    The link names someone else: the name shown must be the one from the login.
    """
    context = browser.new_context(
        permissions=["camera", "microphone"], viewport={"width": 960, "height": 600}
    )
    context.set_default_timeout(ms(30_000))
    page = context.new_page()
    target = f"/rtc/r/{room}?name=Typed-{user}"
    page.goto(f"{site}/login?{urlencode({'user': user, 'next': target})}")
    enter(page)
    page.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    assert page.url == site + target  # redirected there by the login
    return page


def names_shown(page: Page) -> list[str]:
    names: list[str] = page.eval_on_selector_all(
        "#grid figcaption", "els => els.map(e => e.textContent)"
    )
    return names


def call_between(browser: Browser, site_a: str, site_b: str) -> None:
    ann = logged_in_call(browser, site_a, "Ann", "team")
    bo = logged_in_call(browser, site_b, "Bo", "team")
    try:
        wait_frames_advancing(ann, {peer_id(bo)})
        wait_frames_advancing(bo, {peer_id(ann)})
        expect(ann.locator("#grid figcaption")).to_have_count(2)
        assert sorted(names_shown(ann)) == ["Ann (you)", "Bo"]
        assert sorted(names_shown(bo)) == ["Ann", "Bo (you)"]
    finally:
        close(ann)
        close(bo)


@pytest.mark.parametrize("module", ["fastapi_app", "django_app"])
def test_logged_in_pages_call_and_others_are_refused(
    start_example: Callable[..., RunningServer], chromium: Browser, module: str
) -> None:
    site = start_example(module)
    call_between(chromium, f"http://127.0.0.1:{site.port}", f"http://127.0.0.1:{site.port}")

    # No login, no call: the site's own words.
    context = chromium.new_context(permissions=["camera", "microphone"])
    stranger = context.new_page()
    stranger.goto(f"{site.url}/r/team?name=Eve")
    enter(stranger)
    expect(stranger.locator("#notice")).to_have_text("Log in first.")  # its words, as a sentence
    expect(stranger.locator("#end-title")).to_have_text("You could not join")
    expect(stranger.locator("#end-reason")).to_have_text("Log in first.")
    expect(stranger.locator("#status")).to_have_text("Not connected")
    context.close()


@pytest.mark.parametrize("module", ["fastapi_app", "django_app"])
def test_the_front_page_logs_in_and_opens_the_room(
    start_example: Callable[..., RunningServer], chromium: Browser, module: str
) -> None:
    site = start_example(module)
    context = chromium.new_context(permissions=["camera", "microphone"])
    context.set_default_timeout(ms(30_000))
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{site.port}/")
    page.get_by_label("Your name").fill("Ann")
    page.get_by_label("Room").fill("standup")
    page.get_by_role("button", name="Join the call").click()
    enter(page)
    page.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    assert page.url == f"http://127.0.0.1:{site.port}/rtc/r/standup?name=Ann"
    assert names_shown(page) == ["Ann (you)"]
    context.close()


def test_every_example_says_how_to_run_it() -> None:
    for path in sorted((ROOT / "examples").glob("*.py")):
        docstring = path.read_text().split('"""')[1]
        assert "pip install '.[" in docstring, path.name  # its extra, from the checkout
    usage = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "bot.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.returncode == 0 and usage.stdout.startswith("usage: bot.py"), usage.stderr
    assert "--token" in usage.stdout


def test_fastapi_example_with_redis_and_two_processes(
    start_example: Callable[..., RunningServer], chromium: Browser, redis_server: RunningRedis
) -> None:
    one = start_example("fastapi_app", RTCROOM_BROKER=redis_server.url)
    two = start_example("fastapi_app", RTCROOM_BROKER=redis_server.url)
    call_between(chromium, f"http://127.0.0.1:{one.port}", f"http://127.0.0.1:{two.port}")


def test_bot_example_joins_next_to_a_page_shows_video_and_answers_chat(
    server: RunningServer, chromium: Browser
) -> None:
    page = open_call(chromium, server.url, "standup", "Ann")
    bot = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "bot.py"), server.url, "standup"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert bot.stdout is not None
        first = bot.stdout.readline()
        assert first.startswith("joined standup as "), first
        bot_id = first.split()[-1]
        wait_frames_advancing(page, {bot_id})
        expect(page.locator("#grid figcaption", has_text="greeter")).to_be_visible()
        page.click("#toggle-chat")
        page.fill("#chat-input", "hello bot")
        page.press("#chat-input", "Enter")
        expect(page.locator(".message", has_text="Hi Ann, you said: hello bot")).to_be_visible()
    finally:
        bot.send_signal(signal.SIGINT)
        try:
            bot.wait(10)
        finally:
            stop_process(bot)
            if bot.stdout is not None:
                bot.stdout.close()  # else a ResourceWarning fails a later test
        close(page)
    assert bot.returncode == 0  # Ctrl-C leaves the room cleanly
