"""Server-side hooks: where a host application's own logic goes (docs/embedding.md).

A hook is an async function registered on a RoomServer (`@rtc.on_join`...).
What each one sees is a frozen dataclass of this module; what it may answer
is documented on each registration method of RoomServer. Each call is bounded
by the server's `hook_timeout`; a hook that raises or overruns is the hook's
failure, never the server's: it is logged with its traceback, the client gets
a `server-error` for what it asked, and nothing else changes.

Presence hooks (leave, room started, room finished) run after the fact and
in order per room; they cannot refuse anything. The join hook and the
message hooks run before the join or the relay, which waits for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any

from .auth import Claims
from .broker.interface import LeaveReason
from .protocol import ErrorCode, PeerInfo

log = logging.getLogger("rtcroom.hooks")

__all__ = [
    "Admit",
    "Departure",
    "Forbidden",
    "HookFailed",
    "Hooks",
    "JoinRequest",
    "LeaveReason",
    "Message",
    "Refusal",
    "Unauthorized",
]


def _cookies(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for name, value in headers:
        if name.lower() == b"cookie":
            cookie: SimpleCookie = SimpleCookie()
            try:
                cookie.load(value.decode("latin-1"))
            except CookieError:
                continue
            jar.update({key: morsel.value for key, morsel in cookie.items()})
    return jar


@dataclass(frozen=True)
class JoinRequest:
    """A client asks to join `room` as `name` (what the on-join hook sees).

    `claims`: its access token's, when the server checks tokens (else None);
    `identity` and `grants` are what the token (or open mode) gives so far.
    `scope` is the connection's ASGI scope (the WebSocket's, or Socket.IO's
    HTTP one), with the host application's cookies and headers.
    `resume`: the client asks for its earlier peer back (a reconnect).
    """

    room: str
    name: str
    identity: str | None
    grants: frozenset[str]
    claims: Claims | None
    address: str
    scope: Mapping[str, Any]
    resume: bool = False

    @property
    def headers(self) -> dict[str, str]:
        """The request's headers, lower-case names (repeated ones joined with ", ")."""
        merged: dict[str, str] = {}
        for name, value in self.scope.get("headers", ()):
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            merged[key] = f"{merged[key]}, {text}" if key in merged else text
        return merged

    @property
    def cookies(self) -> dict[str, str]:
        return _cookies(self.scope.get("headers", ()))


@dataclass(frozen=True)
class Admit:
    """What an on-join hook may change; a field left None keeps its value."""

    identity: str | None = None
    name: str | None = None
    # A subset of rtcroom.auth.ALL_GRANTS: publish, subscribe, data, admin.
    grants: Iterable[str] | None = None


@dataclass(frozen=True)
class Departure:
    """`peer` left `room` (what the on-leave hook sees), and why."""

    room: str
    peer: PeerInfo
    reason: LeaveReason


@dataclass(frozen=True)
class Message:
    """An application message (what on-broadcast and on-signal hooks see).

    `data` is the decoded JSON payload; `to` is the recipient's id for a
    signal, None for a broadcast.
    """

    room: str
    peer: PeerInfo
    data: Any
    to: str | None = None


class Refusal(Exception):
    """Raised by a join or message hook: the client gets this code and message."""

    code = ErrorCode.FORBIDDEN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthorized(Refusal):
    """Not who the site knows (not logged in): `unauthorized`."""

    code = ErrorCode.UNAUTHORIZED


class Forbidden(Refusal):
    """Known, but not allowed: `forbidden`."""

    code = ErrorCode.FORBIDDEN


class HookFailed(Exception):
    """A hook raised (not a Refusal) or overran its time limit; it was logged."""


JoinHook = Callable[[JoinRequest], Awaitable[Admit | None]]
LeaveHook = Callable[[Departure], Awaitable[None]]
RoomHook = Callable[[str], Awaitable[None]]
MessageHook = Callable[[Message], Awaitable[None]]


@dataclass
class Hooks:
    """The hooks of one RoomServer, and how they are called."""

    timeout: float = 5.0
    join: JoinHook | None = None
    leave: LeaveHook | None = None
    room_started: RoomHook | None = None
    room_finished: RoomHook | None = None
    broadcast: MessageHook | None = None
    signal: MessageHook | None = None

    # Presence hooks in flight, chained per room so that they run in order.
    @property
    def moderated(self) -> frozenset[str]:
        """The messages that wait for a hook before they are relayed."""
        kinds = set()
        if self.broadcast is not None:
            kinds.add("broadcast")
        if self.signal is not None:
            kinds.add("signal")
        return frozenset(kinds)

    _chains: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def call(self, name: str, hook: Callable[[Any], Awaitable[Any]], argument: Any) -> Any:
        """`hook(argument)` within the time limit; Refusal passes, other failures are HookFailed."""
        try:
            return await asyncio.wait_for(hook(argument), self.timeout)
        except Refusal:
            raise
        except TimeoutError:
            log.error("the %s hook took longer than %g s: cancelled", name, self.timeout)
            raise HookFailed(f"the {name} hook timed out") from None
        except Exception as exc:
            log.exception("the %s hook raised %s", name, type(exc).__name__)
            raise HookFailed(f"the {name} hook failed") from exc

    # Presence: RoomEvents, reported by the broker.

    def started(self, room: str) -> None:
        if self.room_started is not None:
            self._after(room, "room-started", self.room_started, room)

    def joined(self, room: str, peer: PeerInfo) -> None:
        # The on-join hook ran before the join (it decides); nothing after.
        pass

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        if self.leave is not None:
            self._after(room, "leave", self.leave, Departure(room, peer, reason))

    def finished(self, room: str) -> None:
        if self.room_finished is not None:
            self._after(room, "room-finished", self.room_finished, room)

    def _after(
        self, room: str, name: str, hook: Callable[[Any], Awaitable[Any]], argument: Any
    ) -> None:
        previous = self._chains.get(room)

        async def run() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            try:
                await self.call(name, hook, argument)
            except HookFailed:
                pass  # logged: nothing to undo after the fact
            finally:
                if self._chains.get(room) is task:
                    del self._chains[room]

        task = asyncio.get_running_loop().create_task(run())
        self._chains[room] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for the presence hooks in flight (at stop), at most `timeout` s."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
