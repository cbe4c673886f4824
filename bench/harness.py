"""What the browser benchmarks share: an rtcroom server with extra pages, and Chromium."""

from __future__ import annotations

import multiprocessing
import socket
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Playwright
from starlette.requests import Request
from starlette.responses import HTMLResponse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import NO_DEVICES, renderer_memory
from conftest import CHROMIUM, CHROMIUM_ARGS

from rtcroom.config import Config
from rtcroom.server import create_app, run

# The tests' helpers that the benchmarks use too.
__all__ = ["NO_DEVICES", "launch", "renderer_memory", "rtcroom_server"]


def _serve(port: int, pages: dict[str, str]) -> None:
    config = Config(port=port, log_level="warning")
    app = create_app(config)
    for path, html in pages.items():

        async def page(request: Request, html: str = html) -> HTMLResponse:
            return HTMLResponse(html)

        app.add_route(path, page)
    run(app, config)


@contextmanager
def rtcroom_server(pages: dict[str, str]) -> Iterator[str]:
    """Run rtcroom's app (as `rtcroom serve` does) plus `pages`; yield its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, pages), daemon=True
    )
    process.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.join(10)


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
