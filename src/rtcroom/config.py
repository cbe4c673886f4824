"""Server configuration: one place, CLI flags mirrored by RTCROOM_* variables.

Values are validated here, at start-up, so a bad setting stops the server
with a clear message instead of failing deep inside a handler.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .turn import IceConfig


class ConfigError(ValueError):
    """A setting is invalid; the message names the flag and the variable."""


_ICE_URL = re.compile(r"^(stun|stuns|turn|turns):[^\s]+$")
_STUN_URL = re.compile(r"^stuns?:[^\s]+$")
_TURN_URL = re.compile(r"^turns?:[^\s]+$")


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
    max_message_size: int = 64 * 1024
    max_peers_per_room: int = 8
    # Bound of each connection's outgoing queue, in frames: a client that
    # lets it fill is too slow to keep up and is disconnected.
    send_queue_frames: int = 1024
    log_level: str = "info"
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
        if self.max_message_size < 1024:
            raise ConfigError("--max-message-size / RTCROOM_MAX_MESSAGE_SIZE: at least 1024")
        if self.max_peers_per_room < 2:
            raise ConfigError("--max-peers / RTCROOM_MAX_PEERS: at least 2")
        if self.send_queue_frames < 16:
            raise ConfigError("send queue bound: at least 16 frames")

    def ice_config(self) -> IceConfig:
        return IceConfig(
            stun_urls=self.stun_urls,
            turn_urls=self.turn_urls,
            turn_secret=self.turn_secret,
            turn_ttl=self.turn_ttl,
            other_urls=self.ice_servers,
            renew_after=self.turn_renew_after,
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
    parser.add_argument(
        "--max-message-size",
        type=int,
        help="largest accepted message in bytes (RTCROOM_MAX_MESSAGE_SIZE, default 65536)",
    )
    parser.add_argument(
        "--max-peers", type=int, help="peers per room (RTCROOM_MAX_PEERS, default 8)"
    )
    parser.add_argument(
        "--log-level",
        choices=["critical", "error", "warning", "info", "debug"],
        help="RTCROOM_LOG_LEVEL, default info",
    )


def _int(env: Mapping[str, str], name: str) -> int | None:
    value = env.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}: {value!r} is not an integer") from None


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

    secret: str | None = args.turn_secret or env.get("RTCROOM_TURN_SECRET") or None
    secret_file = args.turn_secret_file or (
        Path(env["RTCROOM_TURN_SECRET_FILE"]) if env.get("RTCROOM_TURN_SECRET_FILE") else None
    )
    if secret is None and secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"--turn-secret-file: cannot read {secret_file}: {exc.strerror}"
            ) from None
    return Config(
        host=str(pick(args.host, env.get("RTCROOM_HOST"), defaults.host)),
        port=int(str(pick(args.port, _int(env, "RTCROOM_PORT"), defaults.port))),
        ice_servers=urls(args.ice_servers, "RTCROOM_ICE_SERVERS"),
        stun_urls=urls(args.stun_urls, "RTCROOM_STUN"),
        turn_urls=urls(args.turn_urls, "RTCROOM_TURN_URLS"),
        turn_secret=secret,
        turn_ttl=int(str(pick(args.turn_ttl, _int(env, "RTCROOM_TURN_TTL"), defaults.turn_ttl))),
        max_message_size=int(
            str(
                pick(
                    args.max_message_size,
                    _int(env, "RTCROOM_MAX_MESSAGE_SIZE"),
                    defaults.max_message_size,
                )
            )
        ),
        max_peers_per_room=int(
            str(pick(args.max_peers, _int(env, "RTCROOM_MAX_PEERS"), defaults.max_peers_per_room))
        ),
        log_level=str(pick(args.log_level, env.get("RTCROOM_LOG_LEVEL"), defaults.log_level)),
    )
