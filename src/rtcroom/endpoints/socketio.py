"""The Socket.IO door: python-socketio around the Translator, at /socket.io/.

Each Socket.IO client is a Connection like a /ws client (connection.py: the
same Session, so the same limits, tokens and broker), whose Link puts a
Translator (tutorials.py) between its events and protocol v1 frames, and a
writer task that turns the frames its Outbox holds into Socket.IO events.

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

from ..admission import Admission
from ..broker import Broker
from ..connection import Connection
from ..protocol import ErrorCode, error
from ..tutorials import SOCKET_IO, Translator

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


class SocketIOLink:
    """One Socket.IO client: its Translator, and the writer that emits its events."""

    # engine.io pings its clients itself.
    pings = False

    def __init__(self, server: socketio.AsyncServer, sid: str, token: str | None) -> None:
        self.server = server
        self.sid = sid
        self.translator = Translator(token=token)
        self.ready = asyncio.Event()  # something waits in the Outbox
        self.readable = asyncio.Event()  # not paused by the Connection's backlog
        self.readable.set()
        self.connection: Connection

    def start(self, connection: Connection, room: str, wait: float) -> None:
        """Start the writer; join `room` unless the client emits `join` within `wait` seconds."""
        self.connection = connection
        connection.spawn(self._write())

        async def join_implicitly() -> None:
            await asyncio.sleep(wait)
            if self.translator.implicit_room is None and connection.session.room is None:
                await self._feed(self.translator.implicit_join(room))

        connection.spawn(join_implicitly())

    async def event(self, event: str, payload: Any) -> None:
        await self._feed(self.translator.event(event, payload))

    async def _feed(self, frames: list[str]) -> None:
        for frame in frames:
            self.connection.receive(frame)
            if not self.readable.is_set():
                await self.readable.wait()

    async def _write(self) -> None:
        outbox, translate = self.connection.outbox, self.translator.frame
        # Straight to this client's Engine.IO socket: an EVENT packet
        # (Socket.IO protocol 5: "2" and the JSON array [event, data...] for
        # the default namespace), without python-socketio's routing by room.
        send, eio_sid = self.server.eio.send, self.server.manager.eio_sid_from_sid(self.sid, "/")
        while True:
            await self.ready.wait()
            self.ready.clear()
            if outbox.overflowed or outbox.evicted:
                break
            while outbox.frames:
                for out in translate(outbox.frames.popleft()):
                    args = [out.event] if out.data is None else [out.event, out.data]
                    await send(eio_sid, "2" + _MsgspecJSON.dumps(args))
            if outbox.close_code is not None:
                break
        await self.server.disconnect(self.sid)

    # Link

    def wake(self) -> None:
        self.ready.set()

    def drop(self, code: int, reason: str) -> None:
        self.ready.set()  # the writer sees the overflow and disconnects

    def ping(self) -> None:
        pass

    def abort(self) -> None:
        self.ready.set()

    def pause_reading(self) -> None:
        self.readable.clear()

    def resume_reading(self) -> None:
        self.readable.set()


class SocketIOEndpoint:
    """The python-socketio server and the Connections of its clients."""

    def __init__(self, admission: Admission, broker: Broker, join_wait: float = JOIN_WAIT) -> None:
        config = admission.config
        self.admission = admission
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
        self.links: dict[str, SocketIOLink] = {}
        self.server.on("connect", self._connect)
        self.server.on("disconnect", self._disconnect)
        self.server.on("*", self._event)
        # Mounted at /socket.io by the Starlette app: engine.io takes every path under it.
        self.app = socketio.ASGIApp(self.server, socketio_path=None)

    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        return self.admission.origin_allowed(origin, environ.get("HTTP_HOST"))

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        admission = self.admission
        if admission.draining:
            raise socketio.exceptions.ConnectionRefusedError("the server is restarting")
        if not admission.started:
            raise socketio.exceptions.ConnectionRefusedError(
                f"{ErrorCode.UNAVAILABLE}: the rtcroom server is not started"
            )
        # The ASGI scope's client (engine.io's REMOTE_ADDR is always 127.0.0.1).
        client = environ["asgi.scope"].get("client")
        host = client[0] if client else "unknown"
        address = admission.client_address(host, environ.get("HTTP_X_FORWARDED_FOR"))
        too_many = admission.admit(address)
        if too_many is not None:
            limit = admission.config.max_connections_per_address
            raise socketio.exceptions.ConnectionRefusedError(
                f"{ErrorCode.RATE_LIMITED}: more than {limit} connections from your address"
            )
        token = auth.get("token") if isinstance(auth, dict) else None
        link = SocketIOLink(self.server, sid, token if isinstance(token, str) else None)
        # Tutorial clients never resume: when they go, they are gone.
        connection = Connection(
            admission,
            self.broker,
            link,
            address,
            via=SOCKET_IO,
            resumable=False,
            scope=environ["asgi.scope"],
        )
        self.links[sid] = link
        link.start(connection, admission.config.socketio_room, self.join_wait)

    async def _disconnect(self, sid: str, reason: str = "") -> None:
        link = self.links.pop(sid, None)
        if link is not None:
            await link.connection.ended(1000)

    async def _event(self, event: str, sid: str, *args: Any) -> None:
        link = self.links.get(sid)
        if link is None:
            return
        if len(args) != 1:
            link.connection.outbox.deliver(
                error(ErrorCode.BAD_MESSAGE, f"{event!r} takes exactly one argument")
            )
            return
        await link.event(event, args[0])

    async def close(self) -> None:
        """Stop python-socketio's background tasks."""
        await self.server.shutdown()
