"""/ws as an ASGI WebSocket route: the endpoint under any ASGI server.

What `rtcroom serve` runs unless told `--websocket asgi` is the fast path
(endpoints/websocket.py); this route serves /ws whenever the app runs under
another ASGI server, or mounted inside another app. It is the Link of a
Connection (connection.py) over the ASGI messages: a reader that hands text
frames to the Connection, and a writer task that sends what its Outbox holds.
Keepalive pings are the ASGI server's (uvicorn's ws_ping_interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..admission import Admission
from ..broker import Broker
from ..connection import CLOSE_ABNORMAL, CLOSE_POLICY, Connection
from ..protocol import ErrorCode, error

log = logging.getLogger("rtcroom")

CLOSE_NO_STATUS = 1005
CLOSE_ERROR = 1011

NOT_STARTED = (ErrorCode.UNAVAILABLE, "the rtcroom server is not started")
NOT_STARTED_LOG = (
    "a client came to /ws before the RoomServer started: mounted in another app, "
    "run its lifespan from the host's (lifespan=rtc.lifespan, or `async with rtc:` "
    "in the host's lifespan; docs/embedding.md)"
)


def end_code(disconnect: Message) -> int:
    """The close code of an ASGI disconnect: the client's close frame's, or 1006 if none came.

    ASGI has no code for a connection lost without a close frame: uvicorn
    says 1005 (as for a close frame without a code) but leaves out the
    `reason` that every close frame's disconnect carries. Told apart, a
    dropped network may resume (connection.may_resume) and a close is a
    departure, as on the fast path.
    """
    code: int = disconnect.get("code", CLOSE_NO_STATUS)
    if code == CLOSE_NO_STATUS and "reason" not in disconnect:
        return CLOSE_ABNORMAL
    return code


class SignalingRoute:
    """The ASGI endpoint of /ws: each client's Connection and its Link."""

    def __init__(self, admission: Admission, broker: Broker) -> None:
        self.admission = admission
        self.broker = broker

    async def serve(self, websocket: WebSocket) -> None:
        """One client, from the upgrade to its end."""
        admission = self.admission
        headers = websocket.headers
        if admission.refusal(headers.get("origin"), headers.get("host")):
            # Refused before the upgrade: the browser sees HTTP 403.
            await websocket.close(CLOSE_POLICY)
            return
        host = websocket.client.host if websocket.client else "unknown"
        address = admission.client_address(host, headers.get("x-forwarded-for"))
        too_many = admission.admit(address)
        await websocket.accept()
        if too_many is not None:
            await websocket.send_text(too_many)
            await websocket.close(CLOSE_POLICY, "too many connections")
            return
        if not admission.started:
            await websocket.send_text(error(*NOT_STARTED))
            await websocket.close(CLOSE_ERROR, "not started")
            log.error(NOT_STARTED_LOG)
            return
        link = ASGILink(websocket)
        await link.run(Connection(admission, self.broker, link, address, scope=websocket.scope))


class ASGILink:
    """One /ws client over ASGI messages."""

    pings = False

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.ready = asyncio.Event()  # something waits in the Outbox
        self.readable = asyncio.Event()  # not paused by the Connection's backlog
        self.readable.set()
        self.reader: asyncio.Task[None] | None = None
        self.dropped: tuple[int, str] | None = None

    async def run(self, connection: Connection) -> None:
        self.connection = connection
        self.reader = asyncio.current_task()
        writer = connection.spawn(self._write())
        code = CLOSE_ABNORMAL
        try:
            code = await self._read()
        except asyncio.CancelledError:
            # drop() cancels the read; anything else cancelling us is real.
            task = asyncio.current_task()
            if self.dropped is None or (task is not None and task.cancelling() > 1):
                raise
            if task is not None:
                task.uncancel()
        finally:
            writer.cancel()
            # The writer fails if the client went away first: that is no error.
            with contextlib.suppress(asyncio.CancelledError, OSError, WebSocketDisconnect):
                await writer
            await connection.ended(code)
        if self.dropped is not None:
            # Its socket may still be full: try to say why, but do not wait on it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(*self.dropped), 1.0)

    async def _read(self) -> int:
        """Hand frames to the Connection until the client goes; the close code."""
        receive, connection, readable = self.websocket.receive, self.connection, self.readable
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return end_code(message)
            text = message.get("text")
            if text is not None:
                connection.receive(text)
            else:
                connection.receive_binary()
            if not readable.is_set():
                await readable.wait()

    async def _write(self) -> None:
        outbox, send = self.connection.outbox, self.websocket.send
        while True:
            await self.ready.wait()
            self.ready.clear()
            while outbox.frames:
                await send({"type": "websocket.send", "text": outbox.frames.popleft()})
            if outbox.close_code is not None:
                await self.websocket.close(outbox.close_code, outbox.close_reason)
                return

    # Link

    def wake(self) -> None:
        self.ready.set()

    def drop(self, code: int, reason: str) -> None:
        # A client that falls too far behind (or is resumed elsewhere) is
        # dropped at once, even while the reader waits for it to send something.
        if self.dropped is None:
            self.dropped = (code, reason)
            if self.reader is not None:
                self.reader.cancel()

    def ping(self) -> None:
        pass

    def abort(self) -> None:
        self.drop(CLOSE_POLICY, "no pong")

    def pause_reading(self) -> None:
        self.readable.clear()

    def resume_reading(self) -> None:
        self.readable.set()
