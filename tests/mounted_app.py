"""A host app with rtcroom mounted at /rtc, as a Starlette site would do it.

    python tests/mounted_app.py --port PORT [rtcroom serve flags...]

The flags and RTCROOM_* variables are `rtcroom serve`'s; the host has a page
of its own at / and runs rtcroom's lifespan inside its own. Run by conftest's
start_server for the tests marked every_websocket_path(mounted=True).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from rtcroom import RoomServer
from rtcroom.cli import build_parser
from rtcroom.config import from_args


def host_app(rtc: RoomServer) -> Starlette:
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse("the host's own page")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # The host's own start-up and shutdown would go around this.
        async with rtc:
            yield

    return Starlette(routes=[Route("/", home), Mount("/rtc", rtc)], lifespan=lifespan)


def main(argv: list[str]) -> None:
    config = from_args(build_parser().parse_args(["serve", *argv]))
    uvicorn.run(
        host_app(RoomServer(config)),
        host=config.host,
        port=config.port,
        log_level="warning",
        ws_ping_interval=config.ping_interval,
        ws_ping_timeout=config.ping_timeout,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
