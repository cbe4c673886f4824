"""The Socket.IO endpoint: python-socketio around the Translator, at /socket.io/.

Each Socket.IO client is a Connection like a /ws client (same Session, so
the same limits, tokens and broker), with a Translator between its events
and protocol v1 frames, and a writer task that turns the frames its Outbox
holds into Socket.IO events.

Which tutorial a client follows is known from what it does: the Flask one
emits `join` right after connecting; the aiohttp one never does, so a
client that has not joined within `join_wait` seconds joins the single
room (`--socketio-room`), and leaves it if it emits `join` after all.

Socket.IO's polling transport keeps its state in one process: behind a load
balancer with several processes, Socket.IO clients need sticky sessions
(docs/deploy.md); /ws clients do not. The workers of --workers share one
port without stickiness, so there only the WebSocket transport is served.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgspec
import socketio

from ..broker import Broker
from ..protocol import ErrorCode, error
from ..server import Connection, Hub
from .socketio import SOCKET_IO, Translator

log = logging.getLogger("rtcroom")
_library_log = logging.getLogger("rtcroom.socketio")
_library_log.setLevel(logging.WARNING)

# Seconds a new client has to emit `join` before it counts as a client of
# the single-room tutorial (the Flask one emits it at once; one that joins
# later leaves the single room for its own).
JOIN_WAIT = 1.0


class _MsgspecJSON:
    """The json module python-socketio encodes and decodes packets with, on msgspec."""

    _encode = msgspec.json.Encoder().encode
    _decode = msgspec.json.Decoder().decode

    @classmethod
    def dumps(cls, obj: Any, **options: Any) -> str:
        return cls._encode(obj).decode()

    @classmethod
    def loads(cls, text: str | bytes, **options: Any) -> Any:
        try:
            return cls._decode(text)
        except msgspec.DecodeError as exc:
            raise ValueError(str(exc)) from None


class SocketIOConnection(Connection):
    """One Socket.IO client: its Translator and the writer that emits its events."""

    def __init__(
        self, server: socketio.AsyncServer, sid: str, broker: Broker, hub: Hub, address: str,
        token: str | None,
    ) -> None:  # fmt: skip
        # Tutorial clients never resume: when they go, they are gone.
        super().__init__(broker, hub, address, via=SOCKET_IO, resumable=False)
        self.server = server
        self.sid = sid
        self.translator = Translator(token=token)
        self.outbox.on_drop = self.outbox.ready.set

    def start(self) -> None:
        super().start()
        self._tasks.append(asyncio.create_task(self._write()))

    def wait_for_join(self, room: str, wait: float) -> None:
        """Join `room` unless the client emits `join` within `wait` seconds."""

        async def join_implicitly() -> None:
            await asyncio.sleep(wait)
            if self.translator.implicit_room is None and self.session.room is None:
                await self._feed(self.translator.implicit_join(room))

        self._tasks.append(asyncio.create_task(join_implicitly()))

    async def event(self, event: str, payload: Any) -> None:
        await self._feed(self.translator.event(event, payload))

    async def _feed(self, frames: list[str]) -> None:
        for frame in frames:
            await self.receive(frame)

    async def _write(self) -> None:
        outbox, translate = self.outbox, self.translator.frame
        # Straight to this client's Engine.IO socket: an EVENT packet
        # (Socket.IO protocol 5: "2" and the JSON array [event, data...] for
        # the default namespace), without python-socketio's routing by room.
        send, eio_sid = self.server.eio.send, self.server.manager.eio_sid_from_sid(self.sid, "/")
        while True:
            await outbox.ready.wait()
            outbox.ready.clear()
            if outbox.overflowed:
                log.info("dropped a Socket.IO client that reads too slowly")
                break
            while outbox.frames:
                for out in translate(outbox.frames.popleft()):
                    args = [out.event] if out.data is None else [out.event, out.data]
                    await send(eio_sid, "2" + _MsgspecJSON.dumps(args))
            if outbox.close_code is not None:
                break
        await self.server.disconnect(self.sid)


class SocketIOEndpoint:
    """The python-socketio server and the Connections of its clients."""

    def __init__(self, hub: Hub, broker: Broker, join_wait: float = JOIN_WAIT) -> None:
        config = hub.config
        self.hub = hub
        self.broker = broker
        self.join_wait = join_wait
        self.server = socketio.AsyncServer(
            async_mode="asgi",
            json=_MsgspecJSON,
            # The same Origin rule as /ws (engine.io also sends it back as CORS).
            cors_allowed_origins=self._origin_allowed,
            # One client's events in order, as /ws frames are.
            async_handlers=False,
            # An event above the protocol limit gets `too-large` from the
            # Session; only far larger ones end the connection.
            max_http_buffer_size=max(4 * config.max_message_size, 1 << 20),
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            # Long polling keeps its session in one process, and the workers
            # of --workers share a port with no stickiness: requests of one
            # session would land on either. Refuse it outright (a clear 400)
            # rather than fail at random.
            transports=["websocket"] if config.workers > 1 else ["polling", "websocket"],
            # Through rtcroom's logging; python-socketio logs every event at INFO.
            logger=_library_log,
            engineio_logger=_library_log,
        )
        self.connections: dict[str, SocketIOConnection] = {}
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("*", self._event)
        # Mounted at /socket.io by the Starlette app: engine.io takes every path under it.
        self.app = socketio.ASGIApp(self.server, socketio_path=None)

    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        return self.hub.origin_allowed(origin, environ.get("HTTP_HOST"))

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        hub = self.hub
        if hub.draining:
            raise socketio.exceptions.ConnectionRefusedError("the server is restarting")
        # The ASGI scope's client, which uvicorn set from X-Forwarded-For for
        # trusted proxies (engine.io's REMOTE_ADDR is always 127.0.0.1).
        client = environ["asgi.scope"].get("client")
        address = client[0] if client else "unknown"
        if not hub.clients.connect(address):
            limit = hub.config.max_connections_per_address
            raise socketio.exceptions.ConnectionRefusedError(
                f"{ErrorCode.RATE_LIMITED}: more than {limit} connections from your address"
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        connection = SocketIOConnection(
            self.server, sid, self.broker, hub, address, token if isinstance(token, str) else None
        )
        self.connections[sid] = connection
        hub.connections.add(connection)
        connection.start()
        connection.wait_for_join(hub.config.socketio_room, self.join_wait)

    async def _disconnect(self, sid: str, reason: str = "") -> None:
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        try:
            await connection.close(resumable=False)
        finally:
            self.hub.connections.discard(connection)
            self.hub.clients.disconnect(connection.address)

    async def _event(self, event: str, sid: str, *args: Any) -> None:
        connection = self.connections.get(sid)
        if connection is None:
            return
        if len(args) != 1:
            connection.outbox.deliver(
                error(ErrorCode.BAD_MESSAGE, f"{event!r} takes exactly one argument")
            )
            return
        await connection.event(event, args[0])

    async def close(self) -> None:
        """Stop python-socketio's background tasks."""
        await self.server.shutdown()
