"""`rtcroom serve`: the app on uvicorn and uvloop, /ws on the fast path, drained on a signal."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import sys
import time
from types import FrameType

import uvicorn

from .app import RoomServer
from .config import Config
from .endpoints.websocket import WebSocketUpgrade

log = logging.getLogger("rtcroom")


class Server(uvicorn.Server):
    """uvicorn's server with rtcroom's drain: SIGTERM or SIGINT says bye to every client.

    The process exits once they are gone or after `shutdown_deadline`; a
    second signal exits at once.
    """

    def __init__(self, config: uvicorn.Config, app: RoomServer) -> None:
        super().__init__(config)
        self.app = app
        self.draining = False
        # When the drain began: a signal within a second of it is the same
        # stop, delivered twice (systemd signals every process of the unit,
        # and the --workers parent passes it on too).
        self.drain_started = 0.0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining and time.monotonic() - self.drain_started < 1.0:
            return
        if self.draining:
            log.info("second signal: exiting now")
            self.force_exit = True
            self.should_exit = True
            return
        admission = self.app.admission
        loop = asyncio.get_running_loop()

        def start() -> None:
            # Not in the signal handler itself: on the loop, at its next turn.
            task = loop.create_task(admission.drain("the server is restarting", self.app.broker))
            task.add_done_callback(lambda _: setattr(self, "should_exit", True))

        self.draining = True
        self.drain_started = time.monotonic()
        loop.call_soon_threadsafe(start)


def run(app: RoomServer, config: Config, sock: socket.socket | None = None) -> None:
    """Serve `app` with uvicorn on uvloop, as `rtcroom serve` does.

    `sock`: accept on this listening socket (shared by the workers of
    --workers) instead of binding host and port.
    """
    ws: object = "websockets-sansio"
    if config.websocket == "fast":
        # /ws is served on the transport itself (endpoints/websocket.py);
        # other upgrades (/socket.io/) by uvicorn's websockets-sansio protocol.
        ws = functools.partial(WebSocketUpgrade, admission=app.admission, broker=app.broker)
    server = Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            loop="uvloop" if sys.platform != "win32" else "asyncio",
            ws=ws,  # type: ignore[arg-type]
            # Frames above the protocol limit get a `too-large` error and the
            # connection stays open; only far larger ones end the connection.
            ws_max_size=max(4 * config.max_message_size, 1 << 20),
            # Signaling messages are small: compressing them costs CPU on
            # every frame and a zlib context per connection, and saves little.
            ws_per_message_deflate=False,
            ws_ping_interval=config.ping_interval,
            ws_ping_timeout=config.ping_timeout,
            # uvicorn's debug level logs frame contents (tokens among them):
            # rtcroom's own debug logging never goes that far.
            log_level="info" if config.log_level == "debug" else config.log_level,
            access_log=False,
            # Behind these, X-Forwarded-For is the client (per-address limits).
            proxy_headers=True,
            forwarded_allow_ips=list(config.trusted_proxies),
            # Through the root logger's handler (logs.configure: text or JSON).
            log_config=None,
            lifespan="on",
            timeout_graceful_shutdown=1,
        ),
        app,
    )
    server.run(sockets=[sock] if sock is not None else None)
