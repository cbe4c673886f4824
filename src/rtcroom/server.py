"""The ASGI app: /healthz, the /ws signaling pump and the web app.

The WebSocket handler is a thin pump: it feeds frames to a Session and
carries out the actions it returns against the Broker. Each connection has
its own bounded Outbox drained by its own writer task, so a slow reader
never delays anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .broker import Broker, MemoryBroker
from .config import Config
from .protocol import ErrorCode, error
from .pump import execute
from .session import Action, Session
from .webapp import WebAssets

log = logging.getLogger("rtcroom")

# Close code 1008 (policy violation, RFC 6455 section 7.4.1) for a client too slow to read.
CLOSE_SLOW_CONSUMER = 1008


class Outbox:
    """Frames waiting for one connection's writer: bounded, never blocking."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.frames: deque[str] = deque()
        self.ready = asyncio.Event()
        self.overflowed = False
        self.on_overflow: Callable[[], object] = lambda: None

    def deliver(self, frame: str) -> None:
        if self.overflowed:
            return
        if len(self.frames) >= self.limit:
            # Drop the client rather than buffer without bound.
            self.frames.clear()
            self.overflowed = True
            self.on_overflow()
            return
        self.frames.append(frame)
        self.ready.set()


class Connection:
    """One /ws client: the pump between its socket, its Session and the Broker."""

    def __init__(self, websocket: WebSocket, broker: Broker, config: Config) -> None:
        self.websocket = websocket
        self.broker = broker
        self.session = Session(max_message_size=config.max_message_size, ice=config.ice_config())
        self.outbox = Outbox(config.send_queue_frames)

    async def run(self) -> None:
        await self.websocket.accept()
        task = asyncio.current_task()
        assert task is not None
        # A client that falls too far behind is dropped at once, even while
        # this task waits for it to send something.
        self.outbox.on_overflow = task.cancel
        writer = asyncio.create_task(self._write())
        renewal = self.session.ice.renewal_period
        renewer = asyncio.create_task(self._renew(renewal)) if renewal else None
        try:
            await self._read()
        except asyncio.CancelledError:
            if not self.outbox.overflowed or task.cancelling() > 1:
                raise
            task.uncancel()
        finally:
            for task in (writer, renewer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, OSError):
                        await task
            # Leave the room first: the others hear of it without waiting
            # for this socket.
            await self._execute(self.session.close())
        if self.outbox.overflowed:
            log.info("dropped a client that reads too slowly")
            # Its socket is likely still full: try to say why, but do not wait on it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.websocket.close(CLOSE_SLOW_CONSUMER, "too slow to keep up"), 1.0
                )

    async def _read(self) -> None:
        receive = self.websocket.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await self._execute(self.session.receive(text))
            else:
                self.outbox.deliver(_BINARY_REFUSED)

    async def _write(self) -> None:
        outbox, send = self.outbox, self.websocket.send
        while True:
            await outbox.ready.wait()
            outbox.ready.clear()
            while outbox.frames:
                await send({"type": "websocket.send", "text": outbox.frames.popleft()})

    async def _renew(self, period: float) -> None:
        """Hand fresh TURN credentials to the client before the old ones expire."""
        while True:
            await asyncio.sleep(period)
            await self._execute(self.session.renew_ice())

    async def _execute(self, actions: list[Action]) -> None:
        await execute(actions, self.session, self.broker, self.outbox)


_BINARY_REFUSED = error(
    ErrorCode.BAD_MESSAGE, "binary frames are not supported: send JSON text frames"
)


def create_app(config: Config | None = None, broker: Broker | None = None) -> Starlette:
    """Build the ASGI app. Tests call this directly; `rtcroom serve` runs it."""
    config = config or Config()
    broker = broker or MemoryBroker(max_peers_per_room=config.max_peers_per_room)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    web = WebAssets()

    async def lobby(request: Request) -> Response:
        return web.response(request, "index.html")

    async def room_page(request: Request) -> Response:
        return web.response(request, "room.html")

    async def static(request: Request) -> Response:
        return web.response(request, request.path_params["name"])

    async def signaling(websocket: WebSocket) -> None:
        await Connection(websocket, broker, config).run()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await broker.close()

    return Starlette(
        routes=[
            Route("/", lobby),
            Route("/healthz", healthz),
            Route("/r/{room}", room_page),
            Route("/r", lambda request: RedirectResponse("/")),
            WebSocketRoute("/ws", signaling),
            Route("/static/{name}", static),
        ],
        lifespan=lifespan,
    )


def run(app: Starlette, config: Config) -> None:
    """Serve `app` with uvicorn on uvloop, as `rtcroom serve` does."""
    import uvicorn

    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        ws="websockets-sansio",
        # Frames above the protocol limit get a `too-large` error and the
        # connection stays open; only far larger ones end the connection.
        ws_max_size=max(4 * config.max_message_size, 1 << 20),
        log_level=config.log_level,
        access_log=False,
        lifespan="on",
    )
