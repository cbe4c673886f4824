"""README's token flow, then its Python peers next to a page (tests/doc_commands.py).

A browser test apart from tests/test_docs.py: Playwright's sync API keeps an
event loop running in the module that opens it.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import av
import pytest
from browser import FRAME_COUNTS, close, enter, ms
from conftest import stop_process
from doc_commands import marked, reader_environment, shell
from playwright.sync_api import Browser, expect
from test_docs import port_is_free, wait_for, wait_for_text

# README: "To require access tokens", then "from Python, next to the browsers".


@pytest.mark.browser
def test_readme_tokens_then_python_peers_next_to_a_page(chromium: Browser, tmp_path: Path) -> None:
    tokens, peers = marked("tokens")
    port_is_free(8080)
    env = reader_environment()
    # The user's shell keeps the exported secret: the test learns it the same way.
    script = tokens.text + 'echo "$RTCROOM_AUTH_SECRET" > secret\nwait\n'
    log = tmp_path / "tokens.log"
    with shell(script, tmp_path, env, log) as server:
        wait_for("http://127.0.0.1:8080/healthz", server, log)
        # `rtcroom token` runs beside the starting server: its link may come after /healthz.
        pattern = r"^http://127\.0\.0\.1:8080/r/standup\?name=Ann&token=\S+$"
        deadline = time.monotonic() + 30
        while not re.search(pattern, log.read_text(), re.M):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        [link] = re.findall(pattern, log.read_text(), re.M)
        # The line after the link's command writes it: wait for it too.
        secret = tmp_path / "secret"
        while not secret.exists() or not secret.read_text().strip():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        env["RTCROOM_AUTH_SECRET"] = secret.read_text().strip()

        # The link opens the call as Ann.
        context = chromium.new_context(permissions=["camera", "microphone"])
        context.set_default_timeout(ms(30_000))
        page = context.new_page()
        page.goto(link)
        enter(page)
        page.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
        expect(page.locator("figure.tile.local figcaption")).to_contain_text("Ann")

        (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 400)
        bot_line, send_line, record_line = peers.lines()
        processes = {}
        try:
            for name, line in (("bot", bot_line), ("record", record_line)):
                with (tmp_path / f"{name}.log").open("wb") as output:
                    processes[name] = subprocess.Popen(
                        ["bash", "-c", f"exec {line}"],
                        cwd=tmp_path,
                        env=env,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
            # The test pattern is in the call, its video playing on Ann's page.
            wait_for_text(tmp_path / "bot.log", "Playing a test pattern", processes["bot"])
            player = page.locator("figure.tile:not(.local)", has_text="player")
            expect(player).to_be_visible()
            bot_id = player.get_attribute("data-peer-id")
            assert bot_id
            pattern_plays(page, bot_id)
            expect(page.locator("figure.tile", has_text="recorder")).to_be_visible()
            # The file reaches Ann.
            sent = subprocess.run(
                ["bash", "-c", send_line], cwd=tmp_path, env=env, capture_output=True,
                text=True, timeout=120,
            )  # fmt: skip
            assert sent.returncode == 0, sent.stdout + sent.stderr
            assert "Delivered notes.pdf to Ann" in sent.stderr
            expect(page.locator(".transfer.receive")).to_have_attribute("data-state", "done")
            # The recorder records Ann and the pattern; Ctrl-C ends the files.
            record_log = tmp_path / "record.log"
            wait_for_text(record_log, "Recording Ann", processes["record"])
            wait_for_text(record_log, "Recording player", processes["record"])
            time.sleep(3)
            processes["record"].send_signal(signal.SIGINT)
            assert processes["record"].wait(30) == 0, record_log.read_text()
        finally:
            for process in processes.values():
                stop_process(process)  # type: ignore[arg-type]
            close(page)
    files = sorted((tmp_path / "recordings").glob("*.mp4"))
    kinds: dict[str, set[str]] = {}  # by participant, over its parts (NAME-ID.part2.mp4, ...)
    for path in files:
        with av.open(str(path)) as container:
            kinds.setdefault(path.name.split("-")[0], set()).update(
                s.type for s in container.streams
            )
    assert kinds == {"Ann": {"audio", "video"}, "player": {"video"}}, kinds


def pattern_plays(page: Any, peer: str, timeout: float = 30) -> None:
    """The page decodes advancing video from `peer`."""
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        count = page.evaluate(FRAME_COUNTS).get(peer, 0)
        if first is not None and count > first:
            return
        if count:
            first = first if first is not None else count
        time.sleep(0.25)
    raise AssertionError(f"no advancing video from {peer}")
