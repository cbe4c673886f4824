"""The ASGI app: /healthz, /ws, /socket.io/ and the web app, with the broker's lifespan.

`create_app` is what `rtcroom serve` runs (serve.py) and what any ASGI
server can run: it chooses the broker (in memory, or Redis), builds the
Admission every endpoint shares, and starts and stops the broker and the
Socket.IO door with the app's lifespan.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from .admission import Admission
from .broker import Broker, MemoryBroker
from .config import Config
from .endpoints.asgi import SignalingRoute
from .webapp import WebAssets


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


def create_app(config: Config | None = None, broker: Broker | None = None) -> Starlette:
    """Build the ASGI app. Tests call this directly; `rtcroom serve` runs it.

    `app.state.admission` and `app.state.broker` are what serve.py's fast
    path and drain use; with --sfu, `admission.sfu` drives Janus.
    """
    config = config or Config()
    broker = broker or create_broker(config)
    sfu = None
    if config.sfu_urls:
        from .sfu.gateway import Sfu
        from .sfu.placement import LocalPlacement, Placement, RedisPlacement

        assert config.sfu_secret is not None
        # With Redis, every process sends a room's members to the same node.
        redis = getattr(broker, "redis", None)
        placement: Placement = RedisPlacement(redis) if redis is not None else LocalPlacement()
        sfu = Sfu(
            config.sfu_urls,
            config.sfu_secret,
            max_peers=config.max_sfu_peers,
            resume_grace=config.resume_grace,
            placement=placement,
        )
    admission = Admission(config, sfu)
    web = WebAssets()

    async def healthz(request: Request) -> Response:
        # Draining: load balancers stop sending new clients here.
        if admission.draining:
            return PlainTextResponse("draining", status_code=503)
        return PlainTextResponse("ok")

    async def lobby(request: Request) -> Response:
        return web.response(request, "index.html")

    async def room_page(request: Request) -> Response:
        return web.response(request, "room.html")

    async def static(request: Request) -> Response:
        return web.response(request, request.path_params["name"])

    routes: list[BaseRoute] = [
        Route("/", lobby),
        Route("/healthz", healthz),
        Route("/r/{room}", room_page),
        Route("/r", lambda request: RedirectResponse("/")),
        WebSocketRoute("/ws", SignalingRoute(admission, broker).serve),
        Route("/static/{name}", static),
    ]
    socket_io = None
    if config.socketio:
        from .endpoints.socketio import SocketIOEndpoint

        socket_io = SocketIOEndpoint(admission, broker)
        routes.append(Mount("/socket.io", app=socket_io.app))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await broker.start()
        if sfu is not None:
            await sfu.start()
        yield
        if socket_io is not None:
            await socket_io.close()
        if sfu is not None:
            await sfu.close()
        await broker.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.admission = admission
    app.state.broker = broker
    return app
