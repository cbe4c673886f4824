"""A client of Janus's WebSocket API: sessions, handles, transactions, keepalive.

rtcroom's server is Janus's only client (docs/sfu.md): every request
carries the api_secret; answers are matched to their requests by
transaction; what Janus says on its own (a plugin's news, webrtcup,
hangup, media) goes to the queue of the handle it concerns. Janus may
repeat events (`unpublished`, say) and send new ones at any time (an
`updated` offer for a subscriber): whoever reads a handle's events must
take each as possibly repeated or late.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import websockets

log = logging.getLogger("rtcroom.sfu")

# Janus ends a session that sends nothing for its session_timeout (60 s in
# what `rtcroom sfu-config` writes): a keepalive well within it.
KEEPALIVE = 25.0
TIMEOUT = 10.0


class JanusError(Exception):
    """Janus refused a request (`code`, as Janus numbers them), or cannot be reached (0)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"Janus error {code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """What Janus sent: `kind` is its "janus" field; `data` a plugin's data, else the message."""

    kind: str
    data: dict[str, Any]
    jsep: dict[str, Any] | None = None


def _event(message: dict[str, Any]) -> Event:
    plugin = message.get("plugindata")
    data = plugin.get("data", {}) if isinstance(plugin, dict) else message
    return Event(message.get("janus", ""), data, message.get("jsep"))


class Janus:
    """One WebSocket connection to a Janus node. `await Janus.connect(url, secret)`."""

    def __init__(self, url: str, secret: str, *, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self._ws: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        # Transaction -> (the future of its answer, whether "ack" is not the end).
        self._pending: dict[str, tuple[asyncio.Future[dict[str, Any]], bool]] = {}
        self.handles: dict[int, JanusHandle] = {}
        self.sessions: dict[int, JanusSession] = {}
        self.closed = asyncio.Event()

    @classmethod
    async def connect(cls, url: str, secret: str, *, timeout: float = TIMEOUT) -> Janus:
        self = cls(url, secret, timeout=timeout)
        try:
            self._ws = await asyncio.wait_for(
                websockets.connect(url, subprotocols=[websockets.Subprotocol("janus-protocol")]),
                timeout,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise JanusError(0, f"cannot reach Janus at {url}: {exc}") from exc
        self._reader = asyncio.create_task(self._read())
        return self

    async def close(self) -> None:
        """Destroy our sessions (their handles go with them) and disconnect. Idempotent."""
        for session in list(self.sessions.values()):
            with contextlib.suppress(JanusError):
                await session.destroy()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def info(self) -> dict[str, Any]:
        return await self.request({"janus": "info"})

    async def create_session(self) -> JanusSession:
        answer = await self.request({"janus": "create"})
        session = JanusSession(self, int(answer["data"]["id"]))
        self.sessions[session.id] = session
        return session

    async def request(self, message: dict[str, Any], *, event: bool = False) -> dict[str, Any]:
        """Send `message`; its answer (with `event`: the plugin's event after Janus's ack).

        Raises JanusError for an error answer, a plugin's error, a timeout or
        a lost connection.
        """
        if self._ws is None or self.closed.is_set():
            raise JanusError(0, "the connection to Janus is closed")
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = (future, event)
        try:
            await self._ws.send(
                json.dumps({**message, "transaction": transaction, "apisecret": self.secret})
            )
            answer = await asyncio.wait_for(future, self.timeout)
        except websockets.ConnectionClosed as exc:
            raise JanusError(0, "the connection to Janus closed") from exc
        except TimeoutError:
            raise JanusError(0, f"no answer from Janus within {self.timeout:g} s") from None
        finally:
            self._pending.pop(transaction, None)
        if answer.get("janus") == "error":
            error = answer.get("error", {})
            raise JanusError(int(error.get("code", 0)), str(error.get("reason", "")))
        data = _event(answer).data
        if "error_code" in data:  # a plugin's refusal
            raise JanusError(int(data["error_code"]), str(data.get("error", "")))
        return answer

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                message = json.loads(frame)
                if isinstance(message, dict):
                    self._receive(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            for future, _ in self._pending.values():
                if not future.done():
                    future.set_exception(websockets.ConnectionClosed(None, None))
            for handle in self.handles.values():
                handle.events.put_nowait(Event("closed", {}))

    def _receive(self, message: dict[str, Any]) -> None:
        pending = self._pending.get(message.get("transaction", ""))
        if pending is not None:
            future, wants_event = pending
            if message.get("janus") == "ack" and wants_event:
                return  # the plugin's event follows
            if not future.done():
                future.set_result(message)
            return
        handle = self.handles.get(message.get("sender", 0))
        if handle is not None:
            handle.events.put_nowait(_event(message))
        elif message.get("janus") == "timeout":
            session = self.sessions.pop(message.get("session_id", 0), None)
            if session is not None:
                log.warning("Janus timed out session %d", session.id)


class JanusSession:
    """A Janus session: its handles, kept alive while it lasts."""

    def __init__(self, janus: Janus, session_id: int) -> None:
        self.janus = janus
        self.id = session_id
        self._keepalive = asyncio.create_task(self._keep_alive())

    async def attach(self, plugin: str) -> JanusHandle:
        answer = await self.janus.request(
            {"janus": "attach", "session_id": self.id, "plugin": plugin}
        )
        handle = JanusHandle(self, int(answer["data"]["id"]))
        self.janus.handles[handle.id] = handle
        return handle

    async def destroy(self) -> None:
        """End the session and its handles. Idempotent."""
        self._keepalive.cancel()
        if self.janus.sessions.pop(self.id, None) is None:
            return
        for handle_id in [h for h, handle in self.janus.handles.items() if handle.session is self]:
            del self.janus.handles[handle_id]
        await self.janus.request({"janus": "destroy", "session_id": self.id})

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE)
            try:
                await self.janus.request({"janus": "keepalive", "session_id": self.id})
            except JanusError as exc:
                log.warning("Janus session %d keepalive failed: %s", self.id, exc)
                return


class JanusHandle:
    """A handle on a plugin, and the events Janus sends about it (`events`)."""

    def __init__(self, session: JanusSession, handle_id: int) -> None:
        self.session = session
        self.id = handle_id
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    def _message(self, body: dict[str, Any], jsep: dict[str, Any] | None) -> dict[str, Any]:
        message = {"janus": "message", "session_id": self.session.id, "handle_id": self.id}
        message["body"] = body
        if jsep is not None:
            message["jsep"] = jsep
        return message

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A plugin request answered at once (VideoRoom's create, exists, list...): its data."""
        return _event(await self.session.janus.request(self._message(body, None))).data

    async def message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> Event:
        """A plugin request answered by an event (join, configure, start...)."""
        answer = await self.session.janus.request(self._message(body, jsep), event=True)
        return _event(answer)

    async def trickle(self, candidate: dict[str, Any] | None) -> None:
        """A candidate of ours, or None: no more candidates."""
        message = {"janus": "trickle", "session_id": self.session.id, "handle_id": self.id}
        message["candidate"] = candidate if candidate is not None else {"completed": True}
        await self.session.janus.request(message)

    async def detach(self) -> None:
        if self.session.janus.handles.pop(self.id, None) is not None:
            await self.session.janus.request(
                {"janus": "detach", "session_id": self.session.id, "handle_id": self.id}
            )
