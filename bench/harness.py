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
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import NO_DEVICES, renderer_memory
from conftest import CHROMIUM, CHROMIUM_ARGS

from rtcroom.app import create_app
from rtcroom.config import Config
from rtcroom.serve import run
from rtcroom.webapp import WebAssets

# The tests' helpers that the benchmarks use too.
__all__ = ["NO_DEVICES", "launch", "renderer_memory", "rtcroom_server"]


def _serve(port: int, pages: dict[str, str], variants: dict[str, Path]) -> None:
    config = Config(port=port, log_level="warning")
    rtc = create_app(config)
    app = rtc.app  # the RoomServer's Starlette app: its routes and the bench pages
    for path, html in pages.items():

        async def page(request: Request, html: str = html) -> HTMLResponse:
            return HTMLResponse(html)

        app.add_route(path, page)
    if variants:
        _serve_variants(app, variants)
    run(rtc, config)


def _serve_variants(app: Starlette, variants: dict[str, Path]) -> None:
    """/r/ROOM?variant=NAME: the room page from the web directory `variants[NAME]`
    (a changed copy of src/rtcroom/web), its /static/ files from there too."""
    assets = {name: WebAssets(root) for name, root in variants.items()}
    room_page = next(r for r in app.routes if isinstance(r, Route) and r.path == "/r/{room}")

    async def room(request: Request) -> Response:
        name = request.query_params.get("variant")
        if name is None:
            return await room_page.endpoint(request)
        if name not in assets:
            return PlainTextResponse(f"no variant {name!r}", status_code=404)
        page = assets[name].assets["room.html"].body.replace(b"/static/", f"/v/{name}/".encode())
        return HTMLResponse(page)

    async def static(request: Request) -> Response:
        variant = assets.get(request.path_params["variant"])
        if variant is None:
            return PlainTextResponse("no such variant", status_code=404)
        return variant.response(request, request.path_params["name"])

    # Before the app's own routes, which would take these paths.
    app.router.routes[:0] = [Route("/r/{room}", room), Route("/v/{variant}/{name}", static)]


@contextmanager
def rtcroom_server(pages: dict[str, str], variants: dict[str, Path] | None = None) -> Iterator[str]:
    """Run rtcroom's app (as `rtcroom serve` does) plus `pages`, and the web
    asset `variants` if any (see _serve_variants); yield its base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, pages, variants or {}), daemon=True
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
