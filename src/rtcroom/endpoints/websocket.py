"""The /ws endpoint on the transport itself: rtcroom's fast path.

`rtcroom serve` hands uvicorn `WebSocketUpgrade` as its WebSocket protocol.
An upgrade to /ws becomes a `SignalingProtocol`: an asyncio.Protocol around
websockets' sans-I/O ServerProtocol, the Link of a Connection (the same core
as every other endpoint: connection.py), with no ASGI in between. A frame is
parsed, handed to the Session and relayed inside `data_received`, and the
recipient's frame is written to its transport from there: no task, queue or
future per message, and a few kilobytes per connection. Only what must wait
(joining through Redis, say) runs in a task, and the frames behind it wait
their turn (Connection.receive). Any other upgrade (/socket.io/) goes to
uvicorn's own protocol and the ASGI app, as does /ws under any other ASGI
server (endpoints/asgi.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, cast

from websockets.frames import Frame, Opcode

try:
    from websockets.speedups import apply_mask
except ImportError:  # websockets built without its C extension
    from websockets.utils import apply_mask
from websockets.http11 import Request
from websockets.protocol import OPEN
from websockets.server import ServerProtocol

from ..admission import Admission
from ..broker import Broker
from ..connection import CLOSE_ABNORMAL, CLOSE_POLICY, CLOSE_RESTART, Connection

log = logging.getLogger("rtcroom")
# websockets' own logging: at debug level it would log frames, tokens among
# them; rtcroom's debug logging never goes that far.
_ws_log = logging.getLogger("rtcroom.websockets")
_ws_log.setLevel(logging.INFO)

# Seconds to wait for the client's answer to a close frame before dropping it.
CLOSE_TIMEOUT = 2.0

_TEXT, _BINARY, _CONT, _PING, _PONG, _CLOSE = (
    Opcode.TEXT,
    Opcode.BINARY,
    Opcode.CONT,
    Opcode.PING,
    Opcode.PONG,
    Opcode.CLOSE,
)


def text_frame(payload: bytes) -> bytes:
    """A final, unmasked text frame (RFC 6455 section 5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big") + payload
    return b"\x81\x7f" + length.to_bytes(8, "big") + payload


class WebSocketUpgrade(asyncio.Protocol):
    """uvicorn's WebSocket protocol class for `rtcroom serve`: /ws here, the rest to uvicorn.

    uvicorn creates it for an upgrade request, calls connection_made() and
    data_received() with the request, and makes it the transport's protocol.
    At the request, it hands the transport to the chosen protocol: nothing
    is forwarded per call.
    """

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        *,
        admission: Admission,
        broker: Broker,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.admission = admission
        self.broker = broker
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are ones.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        target = data.split(b" ", 2)[1].split(b"?", 1)[0]
        inner: asyncio.Protocol
        if target == b"/ws":
            inner = SignalingProtocol(self.admission, self.broker, self.server_state)
        else:
            from uvicorn.protocols.websockets.websockets_sansio_impl import (
                WebSocketsSansIOProtocol,
            )

            inner = WebSocketsSansIOProtocol(
                config=self.config, server_state=self.server_state, app_state=self.app_state
            )
        # The transport calls the chosen protocol directly from now on.
        # uvicorn makes this object the transport's protocol before or after
        # this call (0.55 before, earlier versions after): in the second case
        # the transport takes these attributes, the chosen protocol's methods.
        callbacks = ("data_received", "eof_received", "connection_lost")
        for name in (*callbacks, "pause_writing", "resume_writing"):
            setattr(self, name, getattr(inner, name))
        self.transport.set_protocol(inner)
        inner.connection_made(self.transport)
        inner.data_received(data)


class SignalingProtocol(asyncio.Protocol):
    """One /ws client, from its upgrade request to its last frame: its Connection's Link."""

    pings = True

    def __init__(self, admission: Admission, broker: Broker, server_state: Any) -> None:
        self.admission = admission
        self.broker = broker
        self.server_state = server_state
        config = admission.config
        # Frames above the protocol limit get a `too-large` error and the
        # connection stays open; only far larger ones end the connection.
        self.max_size = max(4 * config.max_message_size, 1 << 20)
        self.ws = ServerProtocol(max_size=self.max_size, logger=_ws_log)
        self.buffer = b""  # the start of a frame, until the rest arrives
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.connection: Connection | None = None
        self.fragments: list[bytes] = []
        self.fragmented: Opcode | None = None
        self.paused = False  # the transport's buffer is full
        self.close_timer: asyncio.TimerHandle | None = None
        self.close_sent = False
        self.ended = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.server_state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        """Frames in: the common one here, anything else through websockets.

        A final, masked text frame with no extension bits (what clients send)
        is unmasked and handled here; control frames, fragments, binary
        frames and anything malformed go to websockets' parser, whole, so that
        it always starts at a frame boundary.
        """
        ws = self.ws
        if ws.state is not OPEN or self.fragmented is not None:
            self._parse(data)
            return
        buffer = self.buffer + data if self.buffer else data
        position, end = 0, len(buffer)
        while end - position >= 2:
            first, second = buffer[position], buffer[position + 1]
            length = second & 0x7F
            head = position + 2
            if length == 126:
                if end - head < 2:
                    break
                length = int.from_bytes(buffer[head : head + 2], "big")
                head += 2
            elif length == 127:
                if end - head < 8:
                    break
                length = int.from_bytes(buffer[head : head + 8], "big")
                head += 8
            if length > self.max_size or not second & 0x80:
                # Too large, or unmasked: websockets fails the connection.
                self._parse(buffer[position:])
                position = end
                break
            stop = head + 4 + length
            if stop > end:
                break
            if first == 0x81:
                self._message(_TEXT, apply_mask(buffer[head + 4 : stop], buffer[head : head + 4]))
            else:
                self._parse(buffer[position:stop])
            position = stop
            if ws.state is not OPEN or self.fragmented is not None:
                self._parse(buffer[position:])
                position = end
                break
        self.buffer = buffer[position:] if position < end else b""
        self._write_protocol_data()

    def _parse(self, data: bytes) -> None:
        """Frames through websockets' parser."""
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if not isinstance(event, Frame):
                if isinstance(event, Request):
                    self._handshake(event)
                continue
            opcode = event.opcode
            # websockets' frames carry bytes (BytesLike only in the type).
            payload: bytes = event.data  # type: ignore[assignment]
            if opcode is _TEXT or opcode is _BINARY:
                if event.fin:
                    self._message(opcode, payload)
                else:
                    self.fragmented, self.fragments = opcode, [payload]
            elif opcode is _CONT and self.fragmented is not None:
                self.fragments.append(payload)
                if event.fin:
                    opcode, self.fragmented = self.fragmented, None
                    self._message(opcode, b"".join(self.fragments))
                    self.fragments = []
            elif opcode is _PONG and self.connection is not None:
                self.connection.pong()
        self._write_protocol_data()

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._write_protocol_data()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
        if self.ended:
            return
        self.ended = True
        if self.connection is None:
            return
        task = asyncio.get_running_loop().create_task(self.connection.ended(self._end_code()))
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)

    def _end_code(self) -> int:
        """The first close frame's code, whoever sent it (1006 if none)."""
        ws = self.ws
        sent, received = ws.close_sent, ws.close_rcvd
        if sent is not None and (received is None or not ws.close_rcvd_then_sent):
            return sent.code
        return received.code if received is not None else CLOSE_ABNORMAL

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.wake()

    def shutdown(self) -> None:
        """uvicorn's shutdown: the drain is over, end what is left."""
        if self.connection is not None:
            self.connection.close(CLOSE_RESTART, "the server is restarting")
        else:
            self.transport.close()

    # The handshake

    def _handshake(self, request: Request) -> None:
        admission, ws = self.admission, self.ws
        headers = request.headers
        refusal = admission.refusal(headers.get("Origin"), headers.get("Host"))
        response = ws.reject(403, refusal + "\n") if refusal else ws.accept(request)
        ws.send_response(response)
        if response.status_code != 101:
            self._write_protocol_data()
            self.transport.close()
            return
        peer = self.transport.get_extra_info("peername")
        host = str(peer[0]) if peer else "unknown"
        address = admission.client_address(host, headers.get("X-Forwarded-For"))
        too_many = admission.admit(address)
        if too_many is not None:
            self._write_protocol_data()
            self.transport.write(text_frame(too_many.encode()))
            self._close(CLOSE_POLICY, "too many connections")
            return
        scope = None
        if admission.hooks.join is not None:
            scope = self._scope(request, host, peer)
        self.connection = Connection(admission, self.broker, self, address, scope=scope)

    @staticmethod
    def _scope(request: Request, host: str, peer: Any) -> dict[str, Any]:
        """An ASGI-like scope of the upgrade request, for the on-join hook."""
        return {
            "type": "websocket",
            "path": request.path,
            "headers": [
                (name.lower().encode("latin-1"), value.encode("latin-1"))
                for name, value in request.headers.raw_items()
            ],
            "client": (host, peer[1] if peer else 0),
            "root_path": "",
        }

    # Frames in

    def _message(self, opcode: Opcode, payload: bytes) -> None:
        connection = self.connection
        if connection is None or self.close_sent:
            return
        if opcode is _BINARY:
            connection.receive_binary()
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            self.ws.fail(1007, "invalid UTF-8")
            return
        connection.receive(text)

    # Frames out

    def wake(self) -> None:
        """Write what the Outbox holds; then its close, if it asks for one."""
        if self.paused or self.close_sent or self.connection is None:
            return
        outbox = self.connection.outbox
        frames = outbox.frames
        if frames:
            if len(frames) == 1:
                self.transport.write(text_frame(frames.popleft().encode()))
            else:
                chunks = [text_frame(frame.encode()) for frame in frames]
                frames.clear()
                self.transport.write(b"".join(chunks))
        if outbox.close_code is not None:
            self._close(outbox.close_code, outbox.close_reason)

    def _write_protocol_data(self) -> None:
        """What websockets itself has to send (handshake, pongs, closes), and its end."""
        ws = self.ws
        data = ws.data_to_send()
        if data:
            payload = b"".join(data)
            if payload:
                self.transport.write(payload)
        if ws.close_expected() and not self.transport.is_closing():
            self.transport.close()

    def _close(self, code: int, reason: str, timeout: float = CLOSE_TIMEOUT) -> None:
        if self.close_sent:
            return
        self.close_sent = True
        self.ws.send_close(code, reason)
        self._write_protocol_data()
        # The client should answer and let go; if it does not, drop it.
        self.close_timer = asyncio.get_running_loop().call_later(timeout, self.transport.abort)

    def drop(self, code: int, reason: str) -> None:
        """End at once (too slow, or resumed elsewhere)."""
        # Its socket may still be full: say why, but do not wait long on it.
        self._close(code, reason, timeout=1.0)
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    # Keepalive: Connection asks for pings

    def ping(self) -> None:
        if not self.close_sent and not self.transport.is_closing():
            self.ws.send_ping(os.urandom(4))
            self._write_protocol_data()
