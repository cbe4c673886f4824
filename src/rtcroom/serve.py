"""`rtcroom serve`: the app on uvicorn and uvloop, /ws on the fast path, drained on a signal."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import signal
import socket
import sys
import time
from types import FrameType

import uvicorn

from .app import RoomServer, StartError
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
        # The app could not start (StartError, said in one line): exit 1.
        self.failed = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start rtcroom (broker, SFU, webhooks), then accept connections.

        rtcroom starts the app itself rather than through uvicorn's lifespan,
        which would print a start-up failure as a traceback: a user's mistake
        or an absent service is one line that says what to do.
        """
        try:
            await self.app.start()
        except StartError as exc:
            log.error("%s", exc)
            self.failed = self.should_exit = True
            return
        await super().startup(sockets=sockets)
        if not self.should_exit:
            config = self.config
            host = f"[{config.host}]" if ":" in config.host else config.host
            port = sockets[0].getsockname()[1] if sockets else config.port
            log.info("ready on http://%s:%d", host, port)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets=sockets)
        await self.app.stop()

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

        cause = f"{signal.Signals(sig).name} received" if sig else "stopping"

        def start() -> None:
            # Not in the signal handler itself: on the loop, at its next turn.
            # Clients cannot tell a restart from a stop, nor can we: they are
            # told to reconnect (1012), and find this server back or not.
            task = loop.create_task(
                admission.drain("the server is restarting", self.app.broker, cause)
            )
            task.add_done_callback(lambda _: setattr(self, "should_exit", True))

        self.draining = True
        self.drain_started = time.monotonic()
        loop.call_soon_threadsafe(start)


def listen(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """The server's socket, bound (not yet listening), or BindError saying what to do.

    `shared`: with SO_REUSEPORT, for the processes of --workers (workers.py).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            why = "another program listens there: stop it, or choose another --port"
        elif exc.errno == errno.EACCES:
            why = "ports below 1024 need root: choose a port from 1024 up (--port)"
        elif exc.errno == errno.EADDRNOTAVAIL:
            why = "this machine has no such address: give one of its own to --host"
        else:
            why = exc.strerror or str(exc)
        raise BindError(f"cannot listen on {where}: {why}") from None
    return sock


class BindError(OSError):
    """The server's address cannot be bound; the message says why and what to do."""


def run(app: RoomServer, config: Config, sock: socket.socket | None = None) -> bool:
    """Serve `app` with uvicorn on uvloop, as `rtcroom serve` does; False if it could not start.

    `sock`: accept on this socket (bound by `listen`, or shared by the
    workers of --workers) instead of binding host and port.
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
            # Server.startup and shutdown start and stop the app.
            lifespan="off",
            timeout_graceful_shutdown=1,
        ),
        app,
    )
    server.run(sockets=[sock] if sock is not None else None)
    return not server.failed
