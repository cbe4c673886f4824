"""RoomServer: rtcroom as one object, an ASGI app that a Python web app mounts and programs.

It is what `rtcroom serve` runs (serve.py) and what any ASGI server can run
on its own, or mounted at a path prefix inside Starlette, FastAPI or Django
(docs/embedding.md). It holds the broker (in memory, or Redis), the SFU, the
Admission every endpoint shares, the host application's hooks (hooks.py),
the routes (/healthz, /ws, /socket.io/, the web app), their start and stop,
and the server-side actions (send, broadcast, kick, rooms).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from .admin import AdminApi
from .admission import Admission
from .broker import Broker, MemoryBroker
from .broker.interface import Listeners, RoomEvents, Unavailable
from .config import Config
from .endpoints.asgi import SignalingRoute
from .hooks import Hooks, JoinHook, LeaveHook, MessageHook, RoomHook
from .logs import PresenceLog
from .protocol import AppData, PeerInfo, encode
from .webapp import WebAssets

log = logging.getLogger("rtcroom")

Hook = TypeVar("Hook", bound=Callable[..., Awaitable[Any]])

NOT_STARTED = (
    "the RoomServer is not started: mounted in another app, run its lifespan from the "
    "host's (lifespan=rtc.lifespan, or `async with rtc:` inside the host's lifespan; "
    "docs/embedding.md)"
)


class SocketIODoor:
    """The Socket.IO door (/socket.io/), loaded in the background once rtcroom starts.

    python-socketio takes longer to import than the rest of rtcroom together
    (it loads its client side, aiohttp and redis-py with it): the server
    answers before it is there, and a Socket.IO request that comes first
    waits for it.
    """

    def __init__(self, admission: Admission, broker: Broker) -> None:
        self.admission = admission
        self.broker = broker
        self.endpoint: Any = None
        self._loading: asyncio.Future[Any] | None = None

    def load(self) -> asyncio.Future[Any]:
        """Start importing the endpoint's module in a thread (once); its future."""
        if self._loading is None:
            self._loading = asyncio.get_running_loop().run_in_executor(
                None, importlib.import_module, "rtcroom.endpoints.socketio"
            )
        return self._loading

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.endpoint is None:
            module = await asyncio.shield(self.load())
            if self.endpoint is None:
                self.endpoint = module.SocketIOEndpoint(self.admission, self.broker)
        await self.endpoint.app(scope, receive, send)

    async def close(self) -> None:
        if self._loading is not None:
            await asyncio.shield(self._loading)  # an import: it ends by itself
        if self.endpoint is not None:
            await self.endpoint.close()


class StartError(RuntimeError):
    """rtcroom cannot start: a service it needs is absent or refuses; says what to do."""


def create_broker(config: Config) -> Broker:
    """The broker `config` asks for: Redis with --broker, else rooms in this process."""
    max_peers = config.max_peers_per_room
    if config.sfu_urls:
        # Rooms that stay a mesh are bounded by the Session (max_mesh_peers).
        max_peers = max(max_peers, config.max_sfu_peers)
    options = {
        "max_peers_per_room": max_peers,
        "max_rooms": config.max_rooms,
        "resume_grace": config.resume_grace,
        "held_frames": config.send_queue_frames,
    }
    if config.broker_url:
        from .broker.redis import RedisBroker

        return RedisBroker(config.broker_url, node_ttl=config.node_ttl, **options)
    return MemoryBroker(**options)  # type: ignore[arg-type]


class RoomServer:
    """rtcroom: rooms, signaling and the call app, as an ASGI app with hooks.

    Configure it with a Config, or with Config's fields as keyword arguments
    (the same names and checks as `rtcroom serve`'s flags: a bad value
    raises ConfigError). Hooks are given as arguments or registered with the
    decorators (`@rtc.on_join`); each call is bounded by `hook_timeout` s.

    Run it on its own (`uvicorn module:rtc`) and its lifespan runs itself;
    mounted inside another app, the host runs it: `lifespan=rtc.lifespan`,
    or `async with rtc:` inside the host's own lifespan.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        broker: Broker | None = None,
        hook_timeout: float = 5.0,
        on_join: JoinHook | None = None,
        on_leave: LeaveHook | None = None,
        on_room_started: RoomHook | None = None,
        on_room_finished: RoomHook | None = None,
        on_broadcast: MessageHook | None = None,
        on_signal: MessageHook | None = None,
        serve_metrics: bool = True,
        **settings: Any,
    ) -> None:
        """`serve_metrics`: with `config.metrics_port`, serve /metrics from this
        process (False: only sample them, for --workers' parent to serve)."""
        if config is not None and settings:
            raise TypeError("give either a Config or its settings as keyword arguments, not both")
        if hook_timeout <= 0:
            raise ValueError("hook_timeout must be positive (seconds)")
        self.config = config = config or Config(**settings)
        self.hooks = Hooks(
            timeout=hook_timeout,
            join=on_join,
            leave=on_leave,
            room_started=on_room_started,
            room_finished=on_room_finished,
            broadcast=on_broadcast,
            signal=on_signal,
        )
        self.broker = broker or create_broker(config)
        self.webhooks = self._create_webhooks()
        listeners: list[RoomEvents] = [self.hooks, PresenceLog()]
        if self.webhooks is not None:
            listeners.append(self.webhooks)
        self.broker.events = Listeners(*listeners)
        self.sfu = self._create_sfu()
        self.admission = Admission(config, self.sfu, self.hooks)
        self.admission.started = False
        self.started = False
        self._stopped = False
        self.web = WebAssets()
        self.socket_io = SocketIODoor(self.admission, self.broker) if config.socketio else None
        self.app = Starlette(routes=self._routes(), lifespan=self.lifespan)
        self._serve_metrics = serve_metrics
        self._metrics_listener: Any = None
        self._sampler: asyncio.Task[None] | None = None

    def _create_webhooks(self) -> Any:
        config = self.config
        if not config.webhook_urls:
            return None
        from .webhooks import Webhooks

        assert config.webhook_secret is not None
        return Webhooks(
            config.webhook_urls,
            config.webhook_secret,
            # With Redis, one queue for the cluster (each event delivered once).
            redis=getattr(self.broker, "redis", None),
            node=getattr(self.broker, "node", ""),
            limit=config.webhook_queue,
            retry_for=config.webhook_retry_for,
            timeout=config.webhook_timeout,
        )

    def _create_sfu(self) -> Any:
        config = self.config
        if not config.sfu_urls:
            return None
        from .sfu.gateway import Sfu
        from .sfu.placement import LocalPlacement, Placement, RedisPlacement

        assert config.sfu_secret is not None
        # With Redis, every process sends a room's members to the same node.
        redis = getattr(self.broker, "redis", None)
        placement: Placement = RedisPlacement(redis) if redis is not None else LocalPlacement()
        return Sfu(
            config.sfu_urls,
            config.sfu_secret,
            max_peers=config.max_sfu_peers,
            resume_grace=config.resume_grace,
            placement=placement,
        )

    def _routes(self) -> list[BaseRoute]:
        admission, web = self.admission, self.web

        async def healthz(request: Request) -> Response:
            # Draining: load balancers stop sending new clients here.
            if admission.draining:
                return PlainTextResponse("draining", status_code=503)
            if not admission.started:
                return PlainTextResponse("not started", status_code=503)
            return PlainTextResponse("ok")

        async def readyz(request: Request) -> Response:
            # Ready for new clients: started, not draining, the broker reachable.
            if not admission.started:
                return PlainTextResponse("not started", status_code=503)
            if admission.draining:
                return PlainTextResponse("draining", status_code=503)
            if not self.broker.reachable:
                return PlainTextResponse("broker unreachable", status_code=503)
            if self.sfu is not None:
                for node in self.sfu.nodes.values():
                    if node.misconfigured:
                        return PlainTextResponse(
                            f"the SFU (Janus) at {node.url} cannot serve rtcroom: "
                            f"{node.misconfigured}",
                            status_code=503,
                        )
            return PlainTextResponse("ready")

        async def lobby(request: Request) -> Response:
            return web.response(request, "index.html")

        async def room_page(request: Request) -> Response:
            return web.response(request, "room.html")

        async def static(request: Request) -> Response:
            return web.response(request, request.path_params["name"])

        async def no_room(request: Request) -> Response:
            return RedirectResponse(request.scope.get("root_path", "").rstrip("/") + "/")

        routes: list[BaseRoute] = [
            Route("/", lobby),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/r/{room}", room_page),
            Route("/r", no_room),
            WebSocketRoute("/ws", SignalingRoute(admission, self.broker).serve),
            Route("/static/{name}", static),
            *AdminApi(admission, self.broker).routes(),
        ]
        if self.socket_io is not None:
            routes.append(Mount("/socket.io", app=self.socket_io))
        return routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    # Start and stop -----------------------------------------------------------

    async def start(self) -> None:
        """Connect the broker (and the SFU): from now on /ws admits clients. Idempotent."""
        if self.started:
            return
        if self._stopped:
            raise RuntimeError("a RoomServer cannot start again once stopped: make a new one")
        try:
            await self.broker.start()
        except Unavailable as exc:
            raise StartError(
                f"cannot reach the broker (Redis) at {self.config.broker_where}: "
                f"{exc.__cause__ or exc}"
                " — start Redis there or correct --broker (RTCROOM_BROKER); rtcroom does not"
                " start without it (once running, it rides out Redis outages)"
            ) from exc
        if self.sfu is not None:
            await self.sfu.start()
        if self.webhooks is not None:
            await self.webhooks.start()
        if self.socket_io is not None:
            self.socket_io.load()
        if self.config.metrics_port is not None:
            self._start_metrics()
        self.started = True
        self.admission.started = True

    def _start_metrics(self) -> None:
        from .metrics import Metrics, sample_forever, serve

        sampled = Metrics(sfu=self.sfu is not None)
        if self._serve_metrics:
            config = self.config
            assert config.metrics_port is not None
            self._metrics_listener = serve(
                config.metrics_host, config.metrics_port, sampled.registry
            )
            log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
        self._sampler = asyncio.get_running_loop().create_task(
            sample_forever(sampled, self.admission, self.broker, self.config.metrics_interval)
        )

    async def stop(self) -> None:
        """Say bye to every client (they resume elsewhere), then close everything. Idempotent."""
        if not self.started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        admission = self.admission
        if not admission.draining:
            await admission.drain("the server is stopping", self.broker)
        if self.socket_io is not None:
            await self.socket_io.close()
        if self.sfu is not None:
            await self.sfu.close()
        shared = getattr(self.broker, "redis", None) is not None
        if self.webhooks is not None and shared:
            # Into Redis while it is connected: another process delivers the rest.
            await self.webhooks.close()
        await self.broker.close()
        if self.webhooks is not None and not shared:
            # The events of the peers closed just now, for a moment.
            await self.webhooks.close()
        # Leave and room-finished hooks of the peers closed just now.
        await self.hooks.settle(self.hooks.timeout)
        admission.started = False
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._metrics_listener is not None:
            await asyncio.to_thread(self._metrics_listener.close)

    async def __aenter__(self) -> RoomServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """The lifespan to give a host app (`FastAPI(lifespan=rtc.lifespan)`)."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def mount(self, app: ASGIApp, prefix: str = "/rtc") -> ASGIApp:
        """An ASGI app serving rtcroom under `prefix` and `app` everywhere else.

        For hosts that cannot mount an ASGI app themselves (Django's ASGI
        handler): its lifespan starts and stops rtcroom and is not passed on
        to `app`. Starlette and FastAPI hosts use their own `mount` instead.
        """
        if not prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix must start with / and not end with one: {prefix!r}")
        return _Mounted(self, app, prefix)

    # Hooks ------------------------------------------------------------------

    def on_join(self, hook: Hook) -> Hook:
        """Register `async def hook(request: JoinRequest) -> Admit | None`.

        Called for every join (resumes too), after the access token (if the
        server checks tokens) and before the room is entered. Raise
        Unauthorized or Forbidden to refuse (the client gets that code and
        your message); return Admit(...) to set identity, display name or
        grants, or None to admit as asked. One hook: a later one replaces it.
        """
        self.hooks.join = hook
        return hook

    def on_leave(self, hook: Hook) -> Hook:
        """Register `async def hook(departure: Departure) -> None`.

        Exactly once per peer that was in a room, after it left, with the
        reason (LeaveReason); with Redis, on the process that removed it.
        """
        self.hooks.leave = hook
        return hook

    def on_room_started(self, hook: Hook) -> Hook:
        """Register `async def hook(room: str) -> None`: the room's first peer entered.

        Once per room lifetime across every process sharing Redis.
        """
        self.hooks.room_started = hook
        return hook

    def on_room_finished(self, hook: Hook) -> Hook:
        """Register `async def hook(room: str) -> None`: the room's last peer left.

        Once per room lifetime across every process sharing Redis (a killed
        process's rooms are finished by the process that reaps its peers).
        """
        self.hooks.room_finished = hook
        return hook

    def on_broadcast(self, hook: Hook) -> Hook:
        """Register `async def hook(message: Message) -> None` before each broadcast.

        Raise Forbidden to refuse it (the sender gets `forbidden`, nobody
        else anything). Registered, broadcasts wait for it; unregistered,
        they cost nothing.
        """
        self.hooks.broadcast = hook
        return hook

    def on_signal(self, hook: Hook) -> Hook:
        """Register `async def hook(message: Message) -> None` before each signal (`to` set)."""
        self.hooks.signal = hook
        return hook

    # Server-side actions ----------------------------------------------------

    def _check_started(self) -> None:
        if not self.started or self._stopped:
            raise RuntimeError(NOT_STARTED)

    async def send(self, room: str, peer_id: str, data: Any) -> bool:
        """Send `data` (any JSON value) to peer `peer_id` of `room`, in whichever process.

        Its client gets `{"type": "message", "data": ...}`. False if there is
        no such peer.
        """
        self._check_started()
        return await self.broker.relay(room, peer_id, _app_data(data))

    async def broadcast(self, room: str, data: Any) -> None:
        """Send `data` (any JSON value) to every peer of `room`."""
        self._check_started()
        await self.broker.publish(room, "", _app_data(data))

    async def kick(self, room: str, peer_id: str, reason: str = "removed from the room") -> bool:
        """Remove a peer: its client gets `kicked` with `reason` and close code 4003.

        Its resume key stops working, the room sees it leave once, and the
        on-leave hook gets reason KICKED. False if there is no such peer.
        """
        self._check_started()
        return await self.broker.kick(room, peer_id, reason)

    async def rooms(self) -> dict[str, list[PeerInfo]]:
        """Every room and its peers, in join order, across the processes sharing Redis."""
        self._check_started()
        return await self.broker.list_rooms()


def _app_data(data: Any) -> str:
    return encode(AppData(data=msgspec.Raw(msgspec.json.encode(data))))


def create_app(config: Config | None = None, broker: Broker | None = None) -> RoomServer:
    """The RoomServer for `config` (what `rtcroom serve` runs)."""
    return RoomServer(config, broker=broker)


class _Mounted:
    """RoomServer.mount(): rtcroom under a prefix, another ASGI app elsewhere."""

    def __init__(self, rtc: RoomServer, app: ASGIApp, prefix: str) -> None:
        self.rtc = rtc
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        root = scope.get("root_path", "")
        path = scope["path"]
        # The path may or may not include root_path (ASGI servers differ).
        route = path[len(root) :] if root and path.startswith(root) else path
        if route == self.prefix or route.startswith(self.prefix + "/"):
            full = path if root and path.startswith(root) else root + path
            await self.rtc(dict(scope, root_path=root + self.prefix, path=full), receive, send)
            return
        await self.app(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.rtc.start()
        except Exception as exc:
            log.exception("rtcroom failed to start")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        await self.rtc.stop()
        await send({"type": "lifespan.shutdown.complete"})
