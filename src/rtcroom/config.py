"""Server configuration: one place, CLI flags mirrored by RTCROOM_* variables.

Values are validated here, at start-up, so a bad setting stops the server
with a clear message instead of failing deep inside a handler.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .auth import check_secret
from .protocol import ROOM_PATTERN
from .turn import IceConfig


class ConfigError(ValueError):
    """A setting is invalid; the message names the flag and the variable."""


_ICE_URL = re.compile(r"^(stun|stuns|turn|turns):[^\s]+$")
_STUN_URL = re.compile(r"^stuns?:[^\s]+$")
_TURN_URL = re.compile(r"^turns?:[^\s]+$")
_SFU_URL = re.compile(r"^wss?://[^/\s]+(/[^\s]*)?$")
_ORIGIN = re.compile(r"^https?://[^/\s]+$")
_WEBHOOK_URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")
_ROOM = re.compile(ROOM_PATTERN)
WEBSOCKET_PATHS = ("fast", "asgi")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Setting:
    """A numeric setting: its Config field, flag, variable, type, minimum and help."""

    field: str
    flag: str
    variable: str
    type: type[int] | type[float]
    minimum: float
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("max_message_size", "--max-message-size", "RTCROOM_MAX_MESSAGE_SIZE", int, 1024,
            "largest accepted message in bytes (default 65536)"),
    Setting("max_peers_per_room", "--max-peers", "RTCROOM_MAX_PEERS", int, 2,
            "peers per room (default 8)"),
    Setting("max_rooms", "--max-rooms", "RTCROOM_MAX_ROOMS", int, 1,
            "rooms per server (default 10000)"),
    Setting("messages_per_second", "--rate", "RTCROOM_RATE", float, 1,
            "messages per second per connection, on average (default 100)"),
    Setting("message_burst", "--burst", "RTCROOM_BURST", int, 1,
            "messages per connection at once above the rate (default 400)"),
    Setting("max_connections_per_address", "--max-connections-per-address",
            "RTCROOM_MAX_CONNECTIONS_PER_ADDRESS", int, 1,
            "open connections per client address (default 64)"),
    Setting("joins_per_minute", "--joins-per-minute", "RTCROOM_JOINS_PER_MINUTE", float, 1,
            "join attempts per client address per minute, on average (default 120)"),
    Setting("join_burst", "--join-burst", "RTCROOM_JOIN_BURST", int, 1,
            "join attempts per client address at once above --joins-per-minute (default 60)"),
    Setting("send_queue_frames", "--send-queue", "RTCROOM_SEND_QUEUE", int, 16,
            "frames waiting for one client before it is dropped as too slow (default 1024)"),
    Setting("join_timeout", "--join-timeout", "RTCROOM_JOIN_TIMEOUT", float, 0.1,
            "seconds a connection may stay open outside any room (default 10)"),
    Setting("ping_interval", "--ping-interval", "RTCROOM_PING_INTERVAL", float, 0.1,
            "seconds between WebSocket pings (default 20)"),
    Setting("ping_timeout", "--ping-timeout", "RTCROOM_PING_TIMEOUT", float, 0.1,
            "seconds to wait for a pong before dropping the client (default 20)"),
    Setting("resume_grace", "--resume-grace", "RTCROOM_RESUME_GRACE", float, 0,
            "seconds a dropped peer may resume before the others see it leave "
            "(default 20; 0 turns resuming off)"),
    Setting("workers", "--workers", "RTCROOM_WORKERS", int, 1,
            "processes serving the port, sharing rooms through --broker (default 1)"),
    Setting("node_ttl", "--node-ttl", "RTCROOM_NODE_TTL", float, 1,
            "with --broker: seconds after a process stops heartbeating before its "
            "peers are announced as left (default 10)"),
    Setting("sfu_from", "--sfu-from", "RTCROOM_SFU_FROM", int, 1,
            "with --sfu: room size from which a room is served by the SFU, 1 for every room "
            "(default 4)"),
    Setting("max_sfu_peers", "--max-sfu-peers", "RTCROOM_MAX_SFU_PEERS", int, 2,
            "with --sfu: peers per room served by the SFU (default 50)"),
    Setting("shutdown_deadline", "--shutdown-deadline", "RTCROOM_SHUTDOWN_DEADLINE", float, 0,
            "seconds to drain connections on SIGTERM (default 10)"),
    Setting("webhook_queue", "--webhook-queue", "RTCROOM_WEBHOOK_QUEUE", int, 1,
            "with --webhook: events waiting for delivery before new ones are dropped "
            "(and counted; default 10000)"),
    Setting("webhook_retry_for", "--webhook-retry-for", "RTCROOM_WEBHOOK_RETRY_FOR", float, 0,
            "with --webhook: seconds an event is retried before it is given up (default 600)"),
    Setting("webhook_timeout", "--webhook-timeout", "RTCROOM_WEBHOOK_TIMEOUT", float, 0.1,
            "with --webhook: seconds to wait for an endpoint's answer (default 5)"),
)  # fmt: skip


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    ice_servers: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    turn_urls: tuple[str, ...] = ()
    # Never printed: repr=False keeps it out of logs and tracebacks.
    turn_secret: str | None = field(default=None, repr=False)
    turn_ttl: int = 3600
    # Seconds between fresh credentials; None: at 80% of turn_ttl (tests shrink it).
    turn_renew_after: float | None = None
    # Access tokens: None is open mode (anyone may join any room). Never printed.
    auth_secret: str | None = field(default=None, repr=False)
    # Janus WebSocket API URLs (ws://10.0.0.5:8188): large rooms go through the SFU.
    sfu_urls: tuple[str, ...] = ()
    # Janus's api_secret. Never printed.
    sfu_secret: str | None = field(default=None, repr=False)
    # Rooms of at least this many peers are served by the SFU (1: all of them).
    sfu_from: int = 4
    max_sfu_peers: int = 50
    # redis://host:port/db: share rooms with other processes; None: rooms in memory.
    broker_url: str | None = None
    # Origins allowed to open /ws besides the server's own and localhost's; "*": any.
    allowed_origins: tuple[str, ...] = ()
    # Serve the seeds' Socket.IO clients at /socket.io/ (docs/protocol.md).
    socketio: bool = True
    # The room that Socket.IO clients of the single-room tutorial join.
    socketio_room: str = "room"
    # How `rtcroom serve` serves /ws: "fast" on the transport itself
    # (endpoints/websocket.py), "asgi" through uvicorn's WebSocket protocol
    # and the ASGI route, as any other ASGI server does (endpoints/asgi.py).
    websocket: str = "fast"
    # Addresses of reverse proxies and load balancers whose X-Forwarded-For
    # names the client (for the per-address limits); "*": any.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    max_message_size: int = 64 * 1024
    max_peers_per_room: int = 8
    max_rooms: int = 10_000
    messages_per_second: float = 100.0
    message_burst: int = 400
    max_connections_per_address: int = 64
    joins_per_minute: float = 120.0
    join_burst: int = 60
    # Seconds a connection may stay open without being in a room.
    join_timeout: float = 10.0
    # WebSocket ping every ping_interval s; no pong within ping_timeout s ends it.
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    # Seconds a dropped peer stays in its room for its client to resume (0: off).
    resume_grace: float = 20.0
    # Processes serving the port; more than one needs a broker to share rooms.
    workers: int = 1
    # With a Redis broker: seconds without a heartbeat after which a process
    # counts as dead and its peers as gone.
    node_ttl: float = 10.0
    # Seconds to drain connections on SIGTERM before exiting anyway.
    shutdown_deadline: float = 10.0
    # Bound of each connection's outgoing queue, in frames: a client that
    # lets it fill is too slow to keep up and is disconnected.
    send_queue_frames: int = 1024
    log_level: str = "info"
    # "text" for people, "json" for log collectors: one object per line (logs.py).
    log_format: str = "text"
    # Prometheus metrics on a listener of their own (None: off); never the public port.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Seconds between samples of the metrics (metrics.py).
    metrics_interval: float = 1.0
    # Signed webhooks (webhooks/): the endpoints, and the whsec_ secret. Never printed.
    webhook_urls: tuple[str, ...] = ()
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_queue: int = 10000
    webhook_retry_for: float = 600.0
    webhook_timeout: float = 5.0
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port / RTCROOM_PORT: {self.port} is not a TCP port")
        for url in self.ice_servers:
            if not _ICE_URL.match(url):
                raise ConfigError(
                    f"--ice-server / RTCROOM_ICE_SERVERS: {url!r} is not a stun:, stuns:, "
                    "turn: or turns: URL"
                )
        for url in self.stun_urls:
            if not _STUN_URL.match(url):
                raise ConfigError(f"--stun / RTCROOM_STUN: {url!r} is not a stun: or stuns: URL")
        for url in self.turn_urls:
            if not _TURN_URL.match(url):
                raise ConfigError(
                    f"--turn-url / RTCROOM_TURN_URLS: {url!r} is not a turn: or turns: URL"
                )
        if self.turn_secret is not None and len(self.turn_secret) < 16:
            raise ConfigError(
                "--turn-secret / RTCROOM_TURN_SECRET: use at least 16 characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if self.turn_secret and not self.turn_urls:
            raise ConfigError("--turn-secret needs at least one --turn-url")
        if not 60 <= self.turn_ttl <= 7 * 24 * 3600:
            raise ConfigError("--turn-ttl / RTCROOM_TURN_TTL: between 60 s and 7 days")
        if self.auth_secret is not None:
            try:
                check_secret(self.auth_secret)
            except ValueError as exc:
                raise ConfigError(f"--auth-secret / RTCROOM_AUTH_SECRET: {exc}") from None
        if self.workers > 1 and not self.broker_url:
            raise ConfigError(
                "--workers / RTCROOM_WORKERS: more than one process needs --broker redis://... "
                "so that the processes share their rooms"
            )
        if self.broker_url is not None and not re.match(r"^rediss?://", self.broker_url):
            raise ConfigError(
                f"--broker / RTCROOM_BROKER: {self.broker_url!r} is not a redis:// or rediss:// URL"
            )
        for url in self.sfu_urls:
            if not _SFU_URL.match(url):
                raise ConfigError(
                    f"--sfu / RTCROOM_SFU: {url!r} is not a ws:// or wss:// URL of Janus's "
                    "WebSocket API (like ws://10.0.0.5:8188)"
                )
        if self.sfu_urls and not self.sfu_secret:
            raise ConfigError(
                "--sfu needs Janus's api_secret: --sfu-secret-file PATH or RTCROOM_SFU_SECRET "
                "(the secret `rtcroom sfu-config` wrote into janus.jcfg)"
            )
        if self.sfu_secret is not None and len(self.sfu_secret) < 16:
            raise ConfigError("--sfu-secret / RTCROOM_SFU_SECRET: use at least 16 characters")
        for origin in self.allowed_origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ConfigError(
                    f"--allow-origin / RTCROOM_ALLOWED_ORIGINS: {origin!r} is not an origin "
                    "like https://app.example.org (scheme, host and optional port) or *"
                )
        if not _ROOM.match(self.socketio_room):
            raise ConfigError(
                f"--socketio-room / RTCROOM_SOCKETIO_ROOM: {self.socketio_room!r} is not a room "
                "name (1 to 64 letters, digits, - and _)"
            )
        if self.websocket not in WEBSOCKET_PATHS:
            raise ConfigError(
                f"--websocket / RTCROOM_WEBSOCKET: {self.websocket!r} is not one of "
                + ", ".join(WEBSOCKET_PATHS)
            )
        for proxy in self.trusted_proxies:
            if proxy != "*":
                try:
                    ipaddress.ip_network(proxy, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"--trusted-proxy / RTCROOM_TRUSTED_PROXIES: {proxy!r} is not an IP "
                        "address or network (like 10.0.0.2 or 10.0.0.0/24) or *"
                    ) from None
        for setting in SETTINGS:
            value = getattr(self, setting.field)
            if value < setting.minimum:
                raise ConfigError(
                    f"{setting.flag} / {setting.variable}: at least {setting.minimum}"
                )
        if self.log_format not in LOG_FORMATS:
            raise ConfigError(
                f"--log-format / RTCROOM_LOG_FORMAT: {self.log_format!r} is not one of "
                + ", ".join(LOG_FORMATS)
            )
        if self.metrics_port is not None:
            if not 0 <= self.metrics_port <= 65535:
                raise ConfigError(
                    f"--metrics-port / RTCROOM_METRICS_PORT: {self.metrics_port} is not a TCP port"
                )
            if self.metrics_port == self.port and self.port != 0:
                raise ConfigError(
                    "--metrics-port / RTCROOM_METRICS_PORT: metrics need a port of their own, "
                    "not the public --port"
                )
        try:
            ipaddress.ip_address(self.metrics_host)
        except ValueError:
            if self.metrics_host != "localhost":
                raise ConfigError(
                    f"--metrics-host / RTCROOM_METRICS_HOST: {self.metrics_host!r} is not an "
                    "IP address"
                ) from None
        if self.metrics_interval <= 0:
            raise ConfigError("metrics_interval: more than 0 seconds")
        for url in self.webhook_urls:
            if not _WEBHOOK_URL.match(url):
                raise ConfigError(
                    f"--webhook / RTCROOM_WEBHOOK: {url!r} is not an http:// or https:// URL"
                )
        if self.webhook_urls and not self.webhook_secret:
            raise ConfigError(
                "--webhook needs --webhook-secret (RTCROOM_WEBHOOK_SECRET), a whsec_ secret: "
                'python -c "import base64, secrets; '
                "print('whsec_' + base64.b64encode(secrets.token_bytes(32)).decode())\""
            )
        if self.webhook_secret is not None:
            from .webhooks.signing import SecretError, parse_secret

            try:
                parse_secret(self.webhook_secret)
            except SecretError as exc:
                raise ConfigError(f"--webhook-secret / RTCROOM_WEBHOOK_SECRET: {exc}") from None
        if self.send_queue_frames < 16:
            raise ConfigError("send queue bound: at least 16 frames")

    @property
    def broker_where(self) -> str:
        """The broker's URL without its password (for logs), or "" without --broker."""
        if not self.broker_url:
            return ""
        parts = urlsplit(self.broker_url)
        return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"

    def ice_config(self) -> IceConfig:
        return IceConfig(
            stun_urls=self.stun_urls,
            turn_urls=self.turn_urls,
            turn_secret=self.turn_secret,
            turn_ttl=self.turn_ttl,
            other_urls=self.ice_servers,
            renew_after=self.turn_renew_after,
        )


def add_turn_arguments(parser: argparse.ArgumentParser) -> None:
    """The TURN flags, shared by `rtcroom serve` and `rtcroom turn-config`."""
    parser.add_argument(
        "--turn-url",
        action="append",
        dest="turn_urls",
        metavar="URL",
        help="TURN server URL, repeatable, e.g. turn:host:3478?transport=udp "
        "(RTCROOM_TURN_URLS, space separated)",
    )
    parser.add_argument(
        "--turn-secret",
        help="coturn's static-auth-secret: mint short-lived TURN credentials per peer "
        "(prefer RTCROOM_TURN_SECRET or --turn-secret-file: command lines are visible to all)",
    )
    parser.add_argument(
        "--turn-secret-file",
        type=Path,
        metavar="PATH",
        help="read the TURN secret from this file (RTCROOM_TURN_SECRET_FILE)",
    )
    parser.add_argument(
        "--turn-ttl",
        type=int,
        metavar="SECONDS",
        help="lifetime of TURN credentials (RTCROOM_TURN_TTL, default 3600); renewed at 80%%",
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `rtcroom serve`; each default comes from its variable."""
    parser.add_argument("--host", help="address to listen on (RTCROOM_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (RTCROOM_PORT, default 8080)")
    parser.add_argument(
        "--ice-server",
        action="append",
        dest="ice_servers",
        metavar="URL",
        help="STUN/TURN URL handed to clients, repeatable "
        "(RTCROOM_ICE_SERVERS, space separated; default none)",
    )
    parser.add_argument(
        "--stun",
        action="append",
        dest="stun_urls",
        metavar="URL",
        help="STUN server URL, repeatable (RTCROOM_STUN, space separated)",
    )
    add_turn_arguments(parser)
    parser.add_argument(
        "--auth-secret",
        help="require access tokens signed with this secret (RTCROOM_AUTH_SECRET; prefer it "
        "or --auth-secret-file to the command line); without it anyone may join any room",
    )
    parser.add_argument(
        "--auth-secret-file",
        type=Path,
        metavar="PATH",
        help="read the token secret from this file (RTCROOM_AUTH_SECRET_FILE)",
    )
    parser.add_argument(
        "--broker",
        metavar="URL",
        help="share rooms with other rtcroom processes through Redis, e.g. "
        "redis://127.0.0.1:6379/0 (RTCROOM_BROKER; default: rooms in this process)",
    )
    parser.add_argument(
        "--sfu",
        action="append",
        dest="sfu_urls",
        metavar="URL",
        help="serve large rooms through Janus at this WebSocket API URL, repeatable for "
        "several Janus nodes, e.g. ws://10.0.0.5:8188 (RTCROOM_SFU, space separated; "
        "docs/sfu.md)",
    )
    parser.add_argument(
        "--sfu-secret",
        help="Janus's api_secret (prefer RTCROOM_SFU_SECRET or --sfu-secret-file: command "
        "lines are visible to all)",
    )
    parser.add_argument(
        "--sfu-secret-file",
        type=Path,
        metavar="PATH",
        help="read Janus's api_secret from this file (RTCROOM_SFU_SECRET_FILE)",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        dest="allowed_origins",
        metavar="ORIGIN",
        help="web origin allowed to connect besides this server's own and localhost, "
        "repeatable, * for any (RTCROOM_ALLOWED_ORIGINS, space separated)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        dest="trusted_proxies",
        metavar="ADDRESS",
        help="reverse proxy or load balancer (address or network, repeatable, * for any) "
        "whose X-Forwarded-For header gives the client's address "
        "(RTCROOM_TRUSTED_PROXIES, space separated; default 127.0.0.1 and ::1)",
    )
    parser.add_argument(
        "--no-socketio",
        action="store_true",
        default=None,
        help="do not serve Socket.IO clients at /socket.io/ (RTCROOM_SOCKETIO=0)",
    )
    parser.add_argument(
        "--socketio-room",
        metavar="ROOM",
        help="the room that clients of the single-room Socket.IO tutorial join "
        "(RTCROOM_SOCKETIO_ROOM, default room)",
    )
    parser.add_argument(
        "--websocket",
        help="how /ws is served: fast (on the transport itself) or asgi (through "
        "uvicorn's WebSocket protocol and the ASGI route, as under any ASGI server) "
        "(RTCROOM_WEBSOCKET, default fast)",
    )
    for setting in SETTINGS:
        parser.add_argument(
            setting.flag,
            type=setting.type,
            dest=setting.field,
            metavar="SECONDS" if setting.help.startswith("seconds") else "N",
            help=f"{setting.help} ({setting.variable})",
        )
    parser.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        help="RTCROOM_LOG_LEVEL, default info",
    )
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text, or json: one object per line with time, level, event and fields "
        "(RTCROOM_LOG_FORMAT, default text)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics at /metrics on this port, apart from the public one "
        "(RTCROOM_METRICS_PORT; default off)",
    )
    parser.add_argument(
        "--metrics-host",
        metavar="IP",
        help="address of the metrics listener (RTCROOM_METRICS_HOST, default 127.0.0.1)",
    )
    parser.add_argument(
        "--webhook",
        action="append",
        dest="webhook_urls",
        metavar="URL",
        help="POST signed room and participant events to this URL, repeatable "
        "(RTCROOM_WEBHOOK, space-separated)",
    )
    parser.add_argument(
        "--webhook-secret",
        metavar="WHSEC",
        help="the webhooks' signing secret, whsec_ and base64 (RTCROOM_WEBHOOK_SECRET)",
    )
    parser.add_argument(
        "--webhook-secret-file", type=Path, metavar="PATH", help="(RTCROOM_WEBHOOK_SECRET_FILE)"
    )


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = _number(env, name, int)
    return None if value is None else int(value)


def _number(env: Mapping[str, str], name: str, kind: type[int] | type[float]) -> float | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}: {value!r} is not {noun}") from None


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: {value!r} is not 1/true/yes/on or 0/false/no/off")


def secret_from(
    flag: str | None, file_flag: Path | None, env: Mapping[str, str], variable: str, what: str
) -> str | None:
    """A secret from its flag, its variable, or the file either names."""
    secret: str | None = flag or env.get(variable) or None
    path = file_flag or (Path(env[variable + "_FILE"]) if env.get(variable + "_FILE") else None)
    if secret is None and path is not None:
        try:
            secret = path.read_text().strip()
        except OSError as exc:
            named = what if file_flag else variable + "_FILE"
            raise ConfigError(f"{named}: cannot read {path}: {exc.strerror}") from None
    return secret


def from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """Build the Config: flags win over RTCROOM_* variables, which win over defaults."""
    env = os.environ if env is None else env
    defaults = Config()

    def pick(flag: object, variable: object, default: object) -> object:
        return flag if flag is not None else variable if variable is not None else default

    def urls(flag: Sequence[str] | None, variable: str) -> tuple[str, ...]:
        if flag is not None:
            return tuple(flag)
        return tuple(env.get(variable, "").split())

    numbers = {}
    for setting in SETTINGS:
        value = getattr(args, setting.field, None)
        if value is None:
            value = _number(env, setting.variable, setting.type)
        if value is not None:
            numbers[setting.field] = value
    return Config(
        host=str(pick(args.host, env.get("RTCROOM_HOST"), defaults.host)),
        port=int(str(pick(args.port, _int(env, "RTCROOM_PORT"), defaults.port))),
        ice_servers=urls(args.ice_servers, "RTCROOM_ICE_SERVERS"),
        stun_urls=urls(args.stun_urls, "RTCROOM_STUN"),
        turn_urls=urls(args.turn_urls, "RTCROOM_TURN_URLS"),
        turn_secret=secret_from(
            args.turn_secret,
            args.turn_secret_file,
            env,
            "RTCROOM_TURN_SECRET",
            "--turn-secret-file",
        ),
        auth_secret=secret_from(
            getattr(args, "auth_secret", None),
            getattr(args, "auth_secret_file", None),
            env,
            "RTCROOM_AUTH_SECRET",
            "--auth-secret-file",
        ),
        sfu_urls=urls(getattr(args, "sfu_urls", None), "RTCROOM_SFU"),
        sfu_secret=secret_from(
            getattr(args, "sfu_secret", None),
            getattr(args, "sfu_secret_file", None),
            env,
            "RTCROOM_SFU_SECRET",
            "--sfu-secret-file",
        ),
        broker_url=getattr(args, "broker", None) or env.get("RTCROOM_BROKER") or None,
        allowed_origins=urls(getattr(args, "allowed_origins", None), "RTCROOM_ALLOWED_ORIGINS"),
        trusted_proxies=urls(getattr(args, "trusted_proxies", None), "RTCROOM_TRUSTED_PROXIES")
        or defaults.trusted_proxies,
        socketio=not getattr(args, "no_socketio", None) and _flag(env, "RTCROOM_SOCKETIO", True),
        socketio_room=str(
            pick(
                getattr(args, "socketio_room", None),
                env.get("RTCROOM_SOCKETIO_ROOM"),
                defaults.socketio_room,
            )
        ),
        websocket=str(
            pick(getattr(args, "websocket", None), env.get("RTCROOM_WEBSOCKET"), defaults.websocket)
        ),
        turn_ttl=int(str(pick(args.turn_ttl, _int(env, "RTCROOM_TURN_TTL"), defaults.turn_ttl))),
        log_level=str(pick(args.log_level, env.get("RTCROOM_LOG_LEVEL"), defaults.log_level)),
        log_format=str(
            pick(getattr(args, "log_format", None), env.get("RTCROOM_LOG_FORMAT"), "text")
        ),
        metrics_port=pick(  # type: ignore[arg-type]
            getattr(args, "metrics_port", None), _int(env, "RTCROOM_METRICS_PORT"), None
        ),
        metrics_host=str(
            pick(
                getattr(args, "metrics_host", None),
                env.get("RTCROOM_METRICS_HOST"),
                defaults.metrics_host,
            )
        ),
        webhook_urls=urls(getattr(args, "webhook_urls", None), "RTCROOM_WEBHOOK"),
        webhook_secret=secret_from(
            getattr(args, "webhook_secret", None),
            getattr(args, "webhook_secret_file", None),
            env,
            "RTCROOM_WEBHOOK_SECRET",
            "--webhook-secret-file",
        ),
        **numbers,  # type: ignore[arg-type]
    )


def turn_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """A Config of the TURN settings alone (`rtcroom turn-config`), validated as serve's."""
    env = os.environ if env is None else env
    turn_ttl = args.turn_ttl if args.turn_ttl is not None else _int(env, "RTCROOM_TURN_TTL")
    return Config(
        turn_urls=tuple(args.turn_urls) if args.turn_urls else tuple(
            env.get("RTCROOM_TURN_URLS", "").split()
        ),
        turn_secret=secret_from(
            args.turn_secret, args.turn_secret_file, env, "RTCROOM_TURN_SECRET",
            "--turn-secret-file",
        ),
        turn_ttl=turn_ttl if turn_ttl is not None else Config.turn_ttl,
    )  # fmt: skip


def from_env(env: Mapping[str, str] | None = None, **settings: object) -> Config:
    """A Config from the RTCROOM_* variables of `env` (default os.environ), as
    `rtcroom serve` reads them, with `settings` (Config's fields) over them."""
    parser = argparse.ArgumentParser(add_help=False)
    add_serve_arguments(parser)
    config = from_args(parser.parse_args([]), env)
    return dataclasses.replace(config, **settings) if settings else config  # type: ignore[arg-type]
