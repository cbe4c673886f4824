"""One client connection, whichever door it came through: the core every endpoint drives.

An endpoint (endpoints/: the fast /ws path, the ASGI route, the Socket.IO
door) only moves frames. It hands each client frame to `Connection.receive`,
carries what the Outbox holds to the client when woken, and reports the end
with `Connection.ended(code)`. Everything else lives here, once: the
Session and the one executor of its actions against the Broker, frames kept
in order while one waits, the join timer, TURN renewal, keepalive, closing
with a code, and the rule for which ends are departures and which may be
resumed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from .auth import ALL_GRANTS
from .broker import Broker, Mailbox, Refused
from .hooks import Admit, HookFailed, Hooks, JoinRequest, Message, Refusal
from .limits import TokenBucket
from .logs import event
from .protocol import Bye, ErrorCode, Mode, encode, error
from .session import (
    Action,
    CheckJoin,
    Enter,
    Exit,
    Moderate,
    Publish,
    Relay,
    Reply,
    Resume,
    Session,
    SfuOpen,
    Suspend,
    ToSfu,
    Update,
)
from .state import PeerState
from .tally import SAMPLE_EVERY, TALLY

if TYPE_CHECKING:
    from .admission import Admission
    from .sfu.gateway import Sfu

log = logging.getLogger("rtcroom")

# Close codes (RFC 6455 section 7.4.1).
CLOSE_NORMAL = 1000
CLOSE_ABNORMAL = 1006  # no close frame at all: the network dropped, or no pong
CLOSE_POLICY = 1008  # too slow, never joined, too many connections
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012  # the server is draining or lost its place in the room
CLOSE_RESUMED = 4001  # application range: the peer resumed on another connection
CLOSE_KICKED = 4003  # the application removed the peer: do not reconnect

# The ends after which a peer may resume within the grace period: the
# connection dropped without a close frame (1006: a network gone, a pong
# that never came), or the server went away (1011 an error, 1012 a restart,
# 1013 try again later, 1014 a bad gateway). Any other end is a departure,
# announced at once: a close the client sent on purpose (1000 normal, 1001
# a closed tab, 1005 a close frame without a code), or one the server
# decided because the client broke the rules (1002 a protocol error, 1007
# invalid UTF-8, 1008 too slow, 1009 a frame over the hard size limit).
RESUMABLE = frozenset({CLOSE_ABNORMAL, 1011, CLOSE_RESTART, 1013, 1014})


def may_resume(code: int) -> bool:
    """Whether an end with this close code keeps the peer for a resume."""
    return code in RESUMABLE


# Frames received while an earlier one waits (on Redis, say) before reading pauses.
BACKLOG = 64

BINARY_REFUSED = (ErrorCode.BAD_MESSAGE, "binary frames are not supported: send JSON text frames")


class Link(Protocol):
    """What an endpoint does on the wire for its Connection."""

    # True when the endpoint sends WebSocket pings itself when asked (ping());
    # False when its server or library keeps the connection alive on its own.
    pings: bool

    def wake(self) -> None:
        """Frames (or a close, Outbox.close_code) wait in the Outbox: carry them out."""
        ...

    def drop(self, code: int, reason: str) -> None:
        """End the connection now, without waiting for the queued frames."""
        ...

    def ping(self) -> None: ...

    def abort(self) -> None:
        """Drop the connection without a close frame (no pong came)."""
        ...

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Outbox:
    """Frames waiting for one connection's client: bounded, never blocking.

    Also the connection's Mailbox for the broker: `evict` ends it when
    another connection resumes its peer.
    """

    def __init__(
        self, limit: int, wake: Callable[[], object], on_drop: Callable[[], object]
    ) -> None:
        self.limit = limit
        self.frames: deque[str] = deque()
        self.wake = wake
        self.on_drop = on_drop
        self.overflowed = False
        self.evicted = False
        self.kicked = False
        # Set by end(): the endpoint closes with it once the frames are out.
        self.close_code: int | None = None
        self.close_reason = ""

    def deliver(self, frame: str) -> None:
        if self.overflowed or self.evicted:
            return
        if len(self.frames) >= self.limit:
            # Drop the client rather than buffer without bound.
            self.frames.clear()
            self.overflowed = True
            self.on_drop()
            return
        self.frames.append(frame)
        self.wake()

    def evict(self) -> None:
        if not self.evicted:
            self.evicted = True
            self.frames.clear()
            self.on_drop()

    def lost(self) -> None:
        self.deliver(encode(Bye(reason="the server lost its place in the room")))
        self.end(CLOSE_RESTART, "lost its place in the room")

    def kick(self, reason: str) -> None:
        if not self.kicked:
            self.kicked = True
            self.deliver(error(ErrorCode.KICKED, reason, app=True))
            # A close reason is at most 123 bytes (RFC 6455 section 5.5).
            self.end(CLOSE_KICKED, reason.encode()[:120].decode(errors="ignore"))

    def end(self, code: int, reason: str) -> None:
        """Close the connection after the frames queued so far."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.wake()


class Executor:
    """Carries out a Session's actions against a Broker; the broker's answers feed back.

    `run_now` goes as far as it can without waiting (relaying and publishing
    in this process never wait), so that most frames need no task; `run`
    goes all the way, waiting where it must. There is one implementation of
    each action, in `_wait` (and the non-waiting relay and publish in
    run_now).
    """

    def __init__(
        self,
        session: Session,
        broker: Broker,
        mailbox: Mailbox,
        sfu: Sfu | None = None,
        hooks: Hooks | None = None,
        address: str = "",
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.broker = broker
        self.mailbox = mailbox
        self.sfu = sfu
        self.hooks = hooks
        self.address = address
        self.scope: Mapping[str, Any] = scope or {}

    def run_now(self, actions: list[Action]) -> list[Action]:
        """Run `actions` in order up to the first that would have to wait; return the rest.

        Whatever is returned must go through run(), before anything else of
        this session.
        """
        broker, deliver = self.broker, self.mailbox.deliver
        for index, action in enumerate(actions):
            try:
                if type(action) is Reply:
                    deliver(action.frame)
                elif type(action) is Relay:
                    TALLY.relayed += 1
                    delivered = broker.relay_now(action.room, action.to, action.frame)
                    if delivered is None:
                        return actions[index:]
                    if not delivered:
                        rest = self.run_now(self.session.undeliverable(action.to))
                        if rest:
                            return rest + actions[index + 1 :]
                elif type(action) is Publish:
                    TALLY.relayed += 1
                    if not broker.publish_now(action.room, action.sender, action.frame):
                        return actions[index:]
                else:
                    return actions[index:]
            except Refused as exc:
                rest = self.run_now(self._refused(action, exc))
                if rest:
                    return rest + actions[index + 1 :]
        return []

    async def run(self, actions: list[Action]) -> None:
        """Run `actions` in order, waiting on the broker where needed."""
        rest = self.run_now(actions)
        while rest:
            action, rest = rest[0], rest[1:]
            try:
                follow = await self._wait(action)
            except Refused as exc:
                follow = self._refused(action, exc)
            rest = self.run_now(follow + rest)

    async def _wait(self, action: Action) -> list[Action]:
        """Carry out one action, waiting on the broker; what the Session answers."""
        session, broker, mailbox, sfu = self.session, self.broker, self.mailbox, self.sfu
        match action:
            case Reply(frame):
                mailbox.deliver(frame)
            case Relay(room, to, frame):
                if not await broker.relay(room, to, frame):
                    return session.undeliverable(to)
            case Publish(room, sender, frame):
                await broker.publish(room, sender, frame)
            case Update(room, peer):
                await broker.update(room, peer)
            case Enter(room, peer, resume_key, grants):
                peers = await broker.enter(room, peer, mailbox, resume_key, grants)
                TALLY.joins += 1
                event(
                    "join",
                    "%s joined %s (%d there)",
                    peer.name,
                    room,
                    len(peers),
                    room=room,
                    peer=peer.id,
                    name=peer.name,
                    identity=peer.identity,
                    address=self.address,
                    count=len(peers),
                )
                return session.admitted(peers, sfu is not None and await sfu.running(room))
            case Resume(room, key):
                resumed = await broker.resume(room, key, mailbox)
                if resumed is None:
                    return session.not_resumed()
                event(
                    "resume",
                    "%s resumed in %s",
                    resumed.peer.name,
                    room,
                    room=room,
                    peer=resumed.peer.id,
                    name=resumed.peer.name,
                    identity=resumed.peer.identity,
                    address=self.address,
                )
                here = sfu is not None and sfu.resume(resumed.peer.id, mailbox)
                # Resumed from another process: its connections with the SFU
                # go through this one from now on, made anew.
                moved = sfu is not None and not here and await sfu.running(room)
                answer = session.resumed(resumed.peer, key, resumed.peers, here or moved)
                # What arrived while it was away, after its view of the room.
                held = [Reply(frame) for frame in resumed.held]
                return answer + held + ([Reply(encode(Mode("sfu")))] if moved else [])
            case Suspend(room, peer_id, farewell):
                await broker.suspend(room, peer_id, farewell)
                if sfu is not None:
                    sfu.suspend(peer_id)
            case Exit(room, peer_id, reason):
                await broker.exit(room, peer_id, reason)
                if sfu is not None:
                    await sfu.leave(room, peer_id)
            case CheckJoin():
                return await self._check_join(action)
            case Moderate():
                return await self._moderate(action)
            case SfuOpen(room):
                assert sfu is not None
                await sfu.open(room)
                return session.sfu_opened()
            case ToSfu(room, peer_id, name, grants, message):
                assert sfu is not None
                await sfu.handle(room, peer_id, name, grants, message, mailbox)
        return []

    async def _check_join(self, action: CheckJoin) -> list[Action]:
        session, hooks = self.session, self.hooks
        assert hooks is not None and hooks.join is not None
        request = JoinRequest(
            room=action.room,
            name=action.name,
            identity=action.identity,
            grants=action.grants,
            claims=action.claims,
            address=self.address,
            scope=self.scope,
            resume=action.resume,
        )
        try:
            admit = await hooks.call("join", hooks.join, request)
        except Refusal as refusal:
            return session.refused(refusal.code, refusal.message, app=True)
        except HookFailed:
            return session.refused(ErrorCode.SERVER_ERROR, "the server could not check your join")
        if admit is None:
            return session.join_checked(None, None, None)
        if not isinstance(admit, Admit):
            log.error("the join hook returned %r: return Admit(...) or None", admit)
            return session.refused(ErrorCode.SERVER_ERROR, "the server could not check your join")
        if (admit.name is not None and not 1 <= len(admit.name) <= 64) or (
            admit.identity is not None and not 1 <= len(admit.identity) <= 256
        ):
            log.error(
                "the join hook must give a name of 1 to 64 characters, an identity of 1 to 256"
            )
            return session.refused(ErrorCode.SERVER_ERROR, "the server could not check your join")
        grants = None
        if admit.grants is not None:
            grants = frozenset(admit.grants)
            unknown = grants - ALL_GRANTS
            if unknown:
                log.error("the join hook gave unknown grants %s", sorted(unknown))
                return session.refused(
                    ErrorCode.SERVER_ERROR, "the server could not check your join"
                )
        return session.join_checked(admit.name, admit.identity, grants)

    async def _moderate(self, action: Moderate) -> list[Action]:
        hooks = self.hooks
        assert hooks is not None
        hook = hooks.broadcast if action.to is None else hooks.signal
        name = "broadcast" if action.to is None else "signal"
        refusal: tuple[ErrorCode, str, bool] | None = None
        if hook is not None:
            message = Message(action.room, action.peer, msgspec.json.decode(action.data), action.to)
            try:
                await hooks.call(name, hook, message)
            except Refusal as exc:
                refusal = (exc.code, exc.message, True)
            except HookFailed:
                refusal = (ErrorCode.SERVER_ERROR, f"the server could not check your {name}", False)
        return self.session.moderated_message(action, refusal)

    def _refused(self, action: Action, exc: Refused) -> list[Action]:
        """The broker (or the SFU) refused `action`: a refused join, or an error for the client."""
        if isinstance(action, Enter | Resume | SfuOpen):
            return self.session.refused(exc.code, str(exc))
        return [Reply(error(exc.code, str(exc)))]


class Connection:
    """One client: its Session, Outbox, executor, timers and end.

    `via` marks the peers of a compatibility door (PeerInfo.via);
    `resumable=False` for clients that never resume (Socket.IO's).
    """

    def __init__(
        self,
        admission: Admission,
        broker: Broker,
        link: Link,
        address: str,
        *,
        via: str | None = None,
        resumable: bool = True,
        scope: Mapping[str, Any] | None = None,
    ) -> None:
        """`scope`: the ASGI scope of the client's request, for the on-join hook."""
        config = admission.config
        hooks = admission.hooks
        self.admission = admission
        self.config = config
        self.link = link
        self.address = address
        self.session = Session(
            max_message_size=config.max_message_size,
            ice=admission.ice,
            rate=TokenBucket(config.messages_per_second, config.message_burst),
            join_gate=admission.clients.join_bucket(address),
            auth=admission.auth,
            resumable=resumable and config.resume_grace > 0,
            via=via,
            sfu_from=config.sfu_from if admission.sfu is not None else None,
            max_mesh_peers=config.max_peers_per_room,
            check_join=hooks.join is not None,
            moderated=hooks.moderated,
        )
        self.outbox = Outbox(config.send_queue_frames, link.wake, self._dropped)
        self.executor = Executor(
            self.session, broker, self.outbox, admission.sfu, hooks, address, scope
        )
        self.loop = asyncio.get_running_loop()
        # Since when the client has been outside any room (None: in one).
        self.idle_since: float | None = self.loop.time()
        # A frame's actions that had to wait run in `busy`; later frames wait in `backlog`.
        self.busy: asyncio.Task[None] | None = None
        self.backlog: deque[str] = deque()
        self.reading_paused = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        # TURN renewal and the endpoints' own tasks: ended with the connection.
        self.tasks: set[asyncio.Task[None]] = set()
        self.done = False
        admission.connections.add(self)
        self._timer("join", config.join_timeout, self._check_idle)
        renewal = self.session.ice.renewal_period
        if renewal:
            self.spawn(self._renew(renewal))
        if link.pings:
            self._schedule_ping()

    # Frames in

    def receive(self, text: str) -> None:
        """One text frame from the client, handled in order with the others."""
        if self.done:
            return
        if self.busy is not None:
            self.backlog.append(text)
            if len(self.backlog) >= BACKLOG and not self.reading_paused:
                self.reading_paused = True
                self.link.pause_reading()
            return
        tally = TALLY
        tally.frames += 1
        if tally.frames % SAMPLE_EVERY:
            rest = self.executor.run_now(self.session.receive(text))
        else:
            start = time.perf_counter()
            rest = self.executor.run_now(self.session.receive(text))
            if not rest:
                tally.timed(time.perf_counter() - start)
        if self.session.refusal is not None:
            self._refused()
        if rest:
            self.busy = self.loop.create_task(self._finish(rest))
        else:
            self._track_room()

    def receive_binary(self) -> None:
        self.outbox.deliver(error(*BINARY_REFUSED))

    async def settled(self) -> None:
        """Wait until every frame received so far has been handled."""
        while self.busy is not None:
            await asyncio.shield(self.busy)

    async def _finish(self, actions: list[Action]) -> None:
        """Complete a frame's actions that had to wait, then the frames behind it, in order."""
        try:
            await self.executor.run(actions)
            self._track_room()
            if self.session.refusal is not None:
                self._refused()
            while self.backlog and not self.done:
                TALLY.frames += 1
                await self.executor.run(self.session.receive(self.backlog.popleft()))
                self._track_room()
                if self.session.refusal is not None:
                    self._refused()
                if self.reading_paused and len(self.backlog) < BACKLOG // 2:
                    self.reading_paused = False
                    self.link.resume_reading()
        finally:
            self.busy = None

    def _refused(self) -> None:
        """Log the join the session just refused."""
        assert self.session.refusal is not None
        room, code, message = self.session.refusal
        self.session.refusal = None
        event(
            "refused",
            "refused a join to %s from %s: %s (%s)",
            room,
            self.address,
            code.value,
            message,
            room=room,
            code=code.value,
            address=self.address,
            reason=message,
        )

    def _track_room(self) -> None:
        joined = self.session.state is PeerState.JOINED
        if joined != (self.idle_since is None):
            self.idle_since = None if joined else self.loop.time()

    # Closing

    def close(self, code: int, reason: str) -> None:
        """Close the connection (after the frames queued so far) with `code`."""
        self.outbox.end(code, reason)

    def bye(self, reason: str) -> None:
        """Tell the client the server is going away (it reconnects and resumes), and close."""
        self.outbox.deliver(encode(Bye(reason=reason)))
        self.close(CLOSE_RESTART, reason)

    def _dropped(self) -> None:
        """The Outbox gave up on this client: too slow, or resumed elsewhere."""
        if self.outbox.overflowed:
            log.info("dropped a client that reads too slowly")
            self.link.drop(CLOSE_POLICY, "too slow to keep up")
        else:
            self.link.drop(CLOSE_RESUMED, "resumed on another connection")

    async def ended(self, code: int) -> None:
        """The client is gone; `code` is the first close frame's (whoever sent it), else 1006.

        Its pending frames are finished, then its peer leaves the room, or is
        suspended for a resume when the end allows it (may_resume). Idempotent.
        """
        if self.done:
            return
        self.done = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        current = asyncio.current_task()
        for task in list(self.tasks):
            # An endpoint's own task (its writer, say) may be the one ending it.
            if task is not current:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    # Its failure is its own: the peer still leaves the room.
                    log.exception("a connection's task failed")
        try:
            if self.busy is not None:
                try:
                    await self.busy
                except Exception:
                    log.exception("a frame's actions failed")
            self.backlog.clear()
            outbox = self.outbox
            if outbox.evicted:
                actions = self.session.evicted()
            else:
                # A close the server decided comes first, whatever the client answered.
                if outbox.overflowed:
                    code = CLOSE_POLICY
                elif outbox.close_code is not None:
                    code = outbox.close_code
                actions = self.session.close(resumable=may_resume(code), kicked=outbox.kicked)
            await self.executor.run(actions)
        finally:
            self.admission.release(self)

    # Tasks and timers

    def spawn(self, coroutine: object) -> asyncio.Task[None]:
        """Run `coroutine` as a task of this connection, cancelled when it ends."""
        task: asyncio.Task[None] = self.loop.create_task(coroutine)  # type: ignore[arg-type]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def _timer(self, name: str, delay: float, callback: Callable[[], None]) -> None:
        self._timers[name] = self.loop.call_later(delay, callback)

    def _check_idle(self) -> None:
        """Close a connection that stays outside any room for the join timeout."""
        timeout = self.config.join_timeout
        since = self.idle_since
        wait = timeout if since is None else since + timeout - self.loop.time()
        if wait <= 0:
            del self._timers["join"]
            self.outbox.deliver(
                error(ErrorCode.JOIN_TIMEOUT, f"no room joined within {timeout:g} s")
            )
            self.close(CLOSE_POLICY, "join timeout")
            return
        self._timer("join", wait, self._check_idle)

    async def _renew(self, period: float) -> None:
        """Hand fresh TURN credentials to the client before the old ones expire."""
        while True:
            await asyncio.sleep(period)
            await self.executor.run(self.session.renew_ice())

    # Keepalive (for endpoints that ping when asked: Link.pings)

    def _schedule_ping(self) -> None:
        interval = self.config.ping_interval
        if interval > 0:
            self._timer("ping", interval, self._ping)

    def _ping(self) -> None:
        if self.done or self.outbox.close_code is not None:
            return
        self.link.ping()
        self._timer("pong", self.config.ping_timeout, self._no_pong)

    def pong(self) -> None:
        """The client answered a ping."""
        timer = self._timers.pop("pong", None)
        if timer is not None:
            timer.cancel()
            self._schedule_ping()

    def _no_pong(self) -> None:
        log.info("no pong from a client within %g s: dropping it", self.config.ping_timeout)
        self.link.abort()
