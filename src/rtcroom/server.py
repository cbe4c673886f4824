"""The ASGI app: /healthz, the /ws signaling pump, /socket.io/ and the web app.

The WebSocket handler is a thin pump: it feeds frames to a Session and
carries out the actions it returns against the Broker. Each connection has
its own bounded Outbox drained by its own writer task, so a slow reader
never delays anyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from types import FrameType
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .auth import Authenticator
from .broker import Broker, MemoryBroker
from .config import Config
from .limits import ClientLimits, TokenBucket
from .protocol import Bye, ErrorCode, encode, error
from .pump import execute, execute_now
from .session import Action, Session
from .state import PeerState
from .webapp import WebAssets

log = logging.getLogger("rtcroom")

# Close codes (RFC 6455 section 7.4.1): 1008 policy violation (too slow, never
# joined, refused), 1012 service restart (the server is draining).
CLOSE_POLICY = 1008
CLOSE_RESTART = 1012
CLOSE_RESUMED = 4001  # application range: the peer resumed on another connection
# Close codes after which a peer is gone for good: a close frame the client
# sent on purpose, 1000 (normal), 1001 (going away, a closed tab) or none at
# all (1005: what a browser's ws.close() without arguments sends). After any
# other end (1006, the network dropped; no pong; 1012, a restart) the peer
# may resume within the grace period.
DEPARTURES = frozenset({1000, 1001, 1005})


# Seconds a draining process waits for its clients to resume elsewhere.
HANDOFF_WINDOW = 3.0


class Outbox:
    """Frames waiting for one connection's writer: bounded, never blocking.

    Also the connection's Mailbox for the broker: `evict` ends it when
    another connection resumes its peer.
    """

    def __init__(self, limit: int, wake: Callable[[], object] | None = None) -> None:
        self.limit = limit
        self.frames: deque[str] = deque()
        # What to call when there is something to send: a writer task waits
        # on `ready`; a pump on the transport itself passes its flush.
        if wake is None:
            self.ready = asyncio.Event()
            wake = self.ready.set
        self.wake = wake
        self.overflowed = False
        self.evicted = False
        # Set by end(): the writer closes the socket with it once the frames are out.
        self.close_code: int | None = None
        self.close_reason = ""
        self.on_drop: Callable[[], object] = lambda: None

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

    def end(self, code: int, reason: str) -> None:
        """Close the connection after the frames queued so far."""
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.wake()


class Hub:
    """What all connections of one server share: limits, tokens, the drain."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.ice = config.ice_config()
        self.auth = Authenticator(config.auth_secret) if config.auth_secret else None
        self.clients = ClientLimits(
            max_connections=config.max_connections_per_address,
            joins_per_minute=config.joins_per_minute,
            join_burst=config.join_burst,
        )
        self.connections: set[Connection] = set()
        self.draining = False
        self._trust_all = "*" in config.trusted_proxies
        self._proxies = [
            ipaddress.ip_network(proxy, strict=False)
            for proxy in config.trusted_proxies
            if proxy != "*"
        ]

    def refusal(self, origin: str | None, host: str | None) -> str | None:
        """Why a WebSocket upgrade is refused before it starts (HTTP 403), or None."""
        if not self.origin_allowed(origin, host):
            log.info("refused a WebSocket from origin %r", origin)
            return "Forbidden origin"
        if self.draining:
            return "The server is restarting"
        return None

    def too_many_connections(self) -> str:
        """The error frame for a client over the per-address connection limit."""
        limit = self.config.max_connections_per_address
        return error(ErrorCode.RATE_LIMITED, f"more than {limit} connections from your address")

    def _trusted(self, host: str) -> bool:
        if self._trust_all:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._proxies)

    def client_address(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address: the peer's, or behind trusted proxies X-Forwarded-For's.

        As uvicorn's proxy_headers does for the ASGI endpoints: the nearest
        address in X-Forwarded-For that is not itself a trusted proxy.
        """
        if not forwarded_for or not self._trusted(peer):
            return peer
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop
        return hops[0] if hops else peer

    def origin_allowed(self, origin: str | None, host: str | None) -> bool:
        """The Origin check against cross-site WebSocket hijacking.

        Clients that send no Origin are not browsers and are let through;
        a browser's must be this server's own, a localhost one, or listed.
        """
        if origin is None:
            return True
        if "*" in self.config.allowed_origins or origin in self.config.allowed_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or parts.hostname is None:
            return False
        if parts.hostname in ("localhost", "127.0.0.1", "::1"):
            return True
        return host is not None and parts.netloc.lower() == host.lower()

    async def drain(self, reason: str, broker: Broker) -> None:
        """Refuse new joins, say bye to every client and close them all (code 1012).

        With other processes sharing the rooms, the clients reconnect to one
        of them and resume there: stay until they have (or the deadline), so
        that this process can hand their peers over.
        """
        self.draining = True
        bye = encode(Bye(reason=reason))
        for connection in list(self.connections):
            connection.outbox.deliver(bye)
            connection.outbox.end(CLOSE_RESTART, reason)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.config.shutdown_deadline
        while self.connections and loop.time() < until:
            await asyncio.sleep(0.05)
        if broker.shared:
            # A few seconds are enough for reconnecting clients (their first
            # attempts come within a second or two); if every process is
            # stopping, there is nobody to hand over to anyway.
            until = min(until, loop.time() + HANDOFF_WINDOW)
            while broker.suspended() and loop.time() < until:
                await asyncio.sleep(0.05)


class Connection:
    """One client, whichever endpoint it came through: its Session, Outbox and timers.

    The endpoint's pump feeds the client's frames to `receive`, carries what
    the Outbox holds to the client, and calls `close` once the client is gone.
    """

    def __init__(
        self,
        broker: Broker,
        hub: Hub,
        address: str,
        *,
        via: str | None = None,
        resumable: bool = True,
        wake: Callable[[], object] | None = None,
    ) -> None:
        config = hub.config
        self.broker = broker
        self.hub = hub
        self.address = address
        self.session = Session(
            max_message_size=config.max_message_size,
            ice=hub.ice,
            rate=TokenBucket(config.messages_per_second, config.message_burst),
            join_gate=hub.clients.join_bucket(address),
            auth=hub.auth,
            resumable=resumable and config.resume_grace > 0,
            via=via,
        )
        self.outbox = Outbox(config.send_queue_frames, wake)
        # Since when the client has been outside any room (None: in one).
        self.idle_since: float | None = asyncio.get_running_loop().time()
        self._idle_timer: asyncio.TimerHandle | None = None
        # The endpoint's own tasks and TURN renewal's: ended by close().
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the timers: the join timeout and TURN credential renewal."""
        self._idle_timer = asyncio.get_running_loop().call_later(
            self.hub.config.join_timeout, self._check_idle
        )
        renewal = self.session.ice.renewal_period
        if renewal:
            self._tasks.append(asyncio.create_task(self._renew(renewal)))

    async def receive(self, text: str) -> None:
        """One frame from the client."""
        await self._execute(self.session.receive(text))
        self._track_room()

    def receive_now(self, text: str) -> list[Action]:
        """One frame from the client, as far as it goes without waiting.

        What is returned must be passed to finish() before the next frame.
        """
        rest = execute_now(self.session.receive(text), self.session, self.broker, self.outbox)
        if not rest:
            self._track_room()
        return rest

    async def finish(self, actions: list[Action]) -> None:
        """The rest of a frame that receive_now() could not complete."""
        await self._execute(actions)
        self._track_room()

    def _track_room(self) -> None:
        joined = self.session.state is PeerState.JOINED
        if joined != (self.idle_since is None):
            self.idle_since = None if joined else asyncio.get_running_loop().time()

    async def close(self, resumable: bool) -> None:
        """The client is gone: leave the room, or suspend the peer for a resume."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        current = asyncio.current_task()
        for task in self._tasks:
            # An endpoint's own task (its writer, say) may be the one closing.
            if task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
        # Leave the room (or suspend, for a resume) first: the others hear
        # of it without waiting for this socket.
        if self.outbox.evicted:
            actions = self.session.evicted()
        else:
            actions = self.session.close(resumable=resumable and not self.outbox.overflowed)
        await self._execute(actions)

    def _check_idle(self) -> None:
        """Close a connection that stays outside any room for the join timeout."""
        loop = asyncio.get_running_loop()
        timeout = self.hub.config.join_timeout
        since = self.idle_since
        wait = timeout if since is None else since + timeout - loop.time()
        if wait <= 0:
            self._idle_timer = None
            self.outbox.deliver(
                error(ErrorCode.JOIN_TIMEOUT, f"no room joined within {timeout:g} s")
            )
            self.outbox.end(CLOSE_POLICY, "join timeout")
            return
        self._idle_timer = loop.call_later(wait, self._check_idle)

    async def _renew(self, period: float) -> None:
        """Hand fresh TURN credentials to the client before the old ones expire."""
        while True:
            await asyncio.sleep(period)
            await self._execute(self.session.renew_ice())

    async def _execute(self, actions: list[Action]) -> None:
        await execute(actions, self.session, self.broker, self.outbox)


class WebSocketConnection(Connection):
    """One /ws client: the pump between its socket and its Connection."""

    def __init__(self, websocket: WebSocket, broker: Broker, hub: Hub, address: str) -> None:
        super().__init__(broker, hub, address)
        self.websocket = websocket

    async def run(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        # A client that falls too far behind (or is resumed elsewhere) is
        # dropped at once, even while this task waits for it to send something.
        self.outbox.on_drop = task.cancel
        writer = asyncio.create_task(self._write())
        self.start()
        outbox = self.outbox
        # A clean close (1000 normal, 1001 going away: the tab closed) is a
        # departure; anything else (a dropped network, no pong, a restart)
        # may be resumed within the grace period.
        close_code = 1006
        try:
            close_code = await self._read()
        except asyncio.CancelledError:
            if not (outbox.overflowed or outbox.evicted) or task.cancelling() > 1:
                raise
            task.uncancel()
        finally:
            writer.cancel()
            # The writer fails if the client went away first: that is no error.
            with contextlib.suppress(asyncio.CancelledError, OSError, WebSocketDisconnect):
                await writer
            await self.close(resumable=close_code not in DEPARTURES)
        if outbox.overflowed or outbox.evicted:
            if outbox.overflowed:
                log.info("dropped a client that reads too slowly")
                code, reason = CLOSE_POLICY, "too slow to keep up"
            else:
                code, reason = CLOSE_RESUMED, "resumed on another connection"
            # Its socket may still be full: try to say why, but do not wait on it.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.websocket.close(code, reason), 1.0)

    async def _read(self) -> int:
        """Pump frames into the session until the client goes; return the close code."""
        receive = self.websocket.receive
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code: int = message.get("code", 1006)
                return code
            text = message.get("text")
            if text is not None:
                await self.receive(text)
            else:
                self.outbox.deliver(_BINARY_REFUSED)

    async def _write(self) -> None:
        outbox, send = self.outbox, self.websocket.send
        while True:
            await outbox.ready.wait()
            outbox.ready.clear()
            while outbox.frames:
                await send({"type": "websocket.send", "text": outbox.frames.popleft()})
            if outbox.close_code is not None:
                await self.websocket.close(outbox.close_code, outbox.close_reason)
                return


_BINARY_REFUSED = error(
    ErrorCode.BAD_MESSAGE, "binary frames are not supported: send JSON text frames"
)


def create_app(config: Config | None = None, broker: Broker | None = None) -> Starlette:
    """Build the ASGI app. Tests call this directly; `rtcroom serve` runs it."""
    config = config or Config()
    if broker is None:
        options = {
            "max_peers_per_room": config.max_peers_per_room,
            "max_rooms": config.max_rooms,
            "resume_grace": config.resume_grace,
            "held_frames": config.send_queue_frames,
        }
        if config.broker_url:
            from .broker.redis import RedisBroker

            broker = RedisBroker(config.broker_url, node_ttl=config.node_ttl, **options)
        else:
            broker = MemoryBroker(**options)  # type: ignore[arg-type]
    hub = Hub(config)

    async def healthz(request: Request) -> Response:
        # Draining: load balancers stop sending new clients here.
        if hub.draining:
            return PlainTextResponse("draining", status_code=503)
        return PlainTextResponse("ok")

    web = WebAssets()

    async def lobby(request: Request) -> Response:
        return web.response(request, "index.html")

    async def room_page(request: Request) -> Response:
        return web.response(request, "room.html")

    async def static(request: Request) -> Response:
        return web.response(request, request.path_params["name"])

    async def signaling(websocket: WebSocket) -> None:
        if hub.refusal(websocket.headers.get("origin"), websocket.headers.get("host")):
            # Refused before the upgrade: the browser sees HTTP 403.
            await websocket.close(CLOSE_POLICY)
            return
        address = websocket.client.host if websocket.client else "unknown"
        if not hub.clients.connect(address):
            await websocket.accept()
            await websocket.send_text(hub.too_many_connections())
            await websocket.close(CLOSE_POLICY, "too many connections")
            return
        try:
            await websocket.accept()
            connection = WebSocketConnection(websocket, broker, hub, address)
            hub.connections.add(connection)
            try:
                await connection.run()
            finally:
                hub.connections.discard(connection)
        finally:
            hub.clients.disconnect(address)

    routes: list[BaseRoute] = [
        Route("/", lobby),
        Route("/healthz", healthz),
        Route("/r/{room}", room_page),
        Route("/r", lambda request: RedirectResponse("/")),
        WebSocketRoute("/ws", signaling),
        Route("/static/{name}", static),
    ]
    socket_io = None
    if config.socketio:
        from .compat.socketio_server import SocketIOEndpoint

        socket_io = SocketIOEndpoint(hub, broker)
        routes.append(Mount("/socket.io", app=socket_io.app))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        yield
        if socket_io is not None:
            await socket_io.close()
        await broker.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.hub = hub
    app.state.broker = broker
    return app


def run(app: Starlette, config: Config, sock: socket.socket | None = None) -> None:
    """Serve `app` with uvicorn on uvloop, as `rtcroom serve` does.

    SIGTERM or SIGINT drains: clients get `bye` and close code 1012, and
    the process exits once they are gone or after `shutdown_deadline`. A
    second signal exits at once. `sock`: accept on this listening socket
    (shared by the workers of --workers) instead of binding host and port.
    """
    import uvicorn

    from .wsserver import WebSocketUpgrade

    class Server(uvicorn.Server):
        draining = False
        # When the drain began: a signal within a second of it is the same
        # stop, delivered twice (systemd signals every process of the unit,
        # and the --workers parent passes it on too).
        drain_started = 0.0

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.draining and time.monotonic() - self.drain_started < 1.0:
                return
            if self.draining:
                log.info("second signal: exiting now")
                self.force_exit = True
                self.should_exit = True
                return
            hub: Hub = app.state.hub
            log.info("draining %d connections (signal %d)", len(hub.connections), sig)
            loop = asyncio.get_running_loop()

            def start() -> None:
                # Not in the signal handler itself: on the loop, at its next turn.
                task = loop.create_task(hub.drain("the server is restarting", app.state.broker))
                task.add_done_callback(lambda _: setattr(self, "should_exit", True))

            self.draining = True
            self.drain_started = time.monotonic()
            loop.call_soon_threadsafe(start)

    server = Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            loop="uvloop" if sys.platform != "win32" else "asyncio",
            # /ws is served on the transport itself (wsserver.py); other
            # upgrades (/socket.io/) by uvicorn's websockets-sansio protocol.
            ws=functools.partial(  # type: ignore[arg-type]
                WebSocketUpgrade, hub=app.state.hub, broker=app.state.broker
            ),
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
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    server.run(sockets=[sock] if sock is not None else None)
