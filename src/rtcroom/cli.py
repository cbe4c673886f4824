"""The `rtcroom` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from . import __version__
from .config import (
    Config,
    ConfigError,
    add_serve_arguments,
    add_turn_arguments,
    from_args,
    turn_from_args,
)


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake said in one line (not the whole usage before it)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} ({self.prog} --help lists the options)\n")


def _ip(text: str) -> str:
    """An IP address argument (coturn takes addresses, not names)."""
    import ipaddress

    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IP address") from None


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="rtcroom", description="WebRTC rooms with Python.")
    parser.add_argument("--version", action="version", version=f"rtcroom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the signaling server and the web app")
    add_serve_arguments(serve)

    turn = commands.add_parser(
        "turn-config", help="print a hardened coturn configuration matching the server's"
    )
    add_turn_arguments(turn)
    turn.add_argument("--realm", required=True, help="the TURN realm, usually the public host name")
    turn.add_argument(
        "--listening-ip", required=True, type=_ip, metavar="IP", help="where coturn listens"
    )
    turn.add_argument(
        "--relay-ip",
        type=_ip,
        metavar="IP",
        help="where relayed media leaves (default: listening IP)",
    )
    turn.add_argument(
        "--external-ip", type=_ip, metavar="IP", help="public address when behind 1:1 NAT"
    )
    turn.add_argument(
        "--min-port", type=int, default=49160, metavar="PORT", help="first relay port (49160)"
    )
    turn.add_argument(
        "--max-port", type=int, default=49200, metavar="PORT", help="last relay port (49200)"
    )
    turn.add_argument(
        "--total-quota", type=int, default=300, metavar="N", help="allocations in all (300)"
    )
    turn.add_argument(
        "--user-quota", type=int, default=12, metavar="N", help="allocations per peer (12)"
    )
    turn.add_argument("--cert", metavar="PATH", help="TLS certificate for turns: (PEM)")
    turn.add_argument("--pkey", metavar="PATH", help="its private key (PEM)")

    sfu = commands.add_parser(
        "sfu-config", help="print or write a hardened Janus configuration (docs/sfu.md)"
    )
    sfu.add_argument(
        "--api-ip",
        required=True,
        metavar="IP",
        help="the loopback or private address Janus's API listens on (only rtcroom reaches it)",
    )
    sfu.add_argument(
        "--api-port", type=int, default=8188, metavar="PORT", help="its WebSocket port (8188)"
    )
    sfu.add_argument("--sfu-secret", help="Janus's api_secret (RTCROOM_SFU_SECRET; never logged)")
    sfu.add_argument(
        "--sfu-secret-file", type=Path, metavar="PATH", help="(RTCROOM_SFU_SECRET_FILE)"
    )
    sfu.add_argument(
        "--media-ip",
        metavar="IP",
        help="the address Janus gathers ICE candidates on (default: every interface)",
    )
    sfu.add_argument("--public-ip", metavar="IP", help="the public address, behind 1:1 NAT")
    sfu.add_argument(
        "--min-port", type=int, default=20000, metavar="PORT", help="first RTP/ICE UDP port"
    )
    sfu.add_argument(
        "--max-port", type=int, default=40000, metavar="PORT", help="last RTP/ICE UDP port"
    )
    sfu.add_argument(
        "--admin-secret",
        help="turn the admin API on, on 127.0.0.1, with this secret of its own "
        "(RTCROOM_SFU_ADMIN_SECRET)",
    )
    sfu.add_argument(
        "--admin-port", type=int, default=7188, metavar="PORT", help="its WebSocket port (7188)"
    )
    sfu.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write the files to DIR (for janus -F DIR -C DIR/janus.jcfg) instead of printing them",
    )

    token = commands.add_parser(
        "token", help="mint an access token (the secret as for serve: --auth-secret or variables)"
    )
    token.add_argument("--room", required=True, help="room name, or a pattern with * wildcards")
    token.add_argument("--identity", required=True, help="who the holder is (your user id)")
    token.add_argument("--name", help="display name shown to the others")
    token.add_argument("--ttl", type=float, default=3600, metavar="SECONDS", help="validity (3600)")
    token.add_argument(
        "--grant",
        action="append",
        choices=["publish", "subscribe", "data", "admin"],
        help="what the holder may do, repeatable (default: subscribe only)",
    )
    _auth_secret_arguments(token)
    token.add_argument(
        "--link",
        metavar="URL",
        help="print a room link on this server instead, e.g. https://rtc.example.org",
    )

    send = commands.add_parser("send", help="send a file to peers of a room (web app or Python)")
    _peer_arguments(send)
    send.add_argument("file", type=Path)
    send.add_argument("--to", metavar="NAME", help="only to the peer with this name")
    send.add_argument("--name", default="rtcroom-send", help="our name in the room")
    send.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a peer")

    bot = commands.add_parser("bot", help="media bots: echo, play")
    bots = bot.add_subparsers(dest="bot", required=True, metavar="BOT")
    echo = bots.add_parser("echo", help="send every participant's video and audio back to them")
    _peer_arguments(echo)
    echo.add_argument("--name", default="echo", help="our name in the room")
    play = bots.add_parser("play", help="stream a media file or a test pattern into a room")
    _peer_arguments(play)
    play.add_argument("file", type=Path, nargs="?", help="a media file (anything FFmpeg reads)")
    play.add_argument("--pattern", action="store_true", help="a test pattern instead of a file")
    play.add_argument("--loop", action="store_true", help="play the file again and again")
    play.add_argument("--name", default="player", help="our name in the room")

    record = commands.add_parser("record", help="record each participant to a file of its own")
    _peer_arguments(record)
    record.add_argument("--out", type=Path, default=Path("."), help="folder for the recordings")
    record.add_argument("--name", default="recorder", help="our name in the room")

    receive = commands.add_parser("receive", help="save the files that peers send us")
    _peer_arguments(receive)
    receive.add_argument("--out", type=Path, default=Path("."), help="folder for the files")
    receive.add_argument("--name", default="rtcroom-receive", help="our name in the room")
    receive.add_argument("--count", type=int, help="stop after this many files")

    # The admin API (docs/operations.md).
    rooms = commands.add_parser("rooms", help="list every room and its peers (admin API)")
    _admin_arguments(rooms)
    rooms.add_argument("--json", action="store_true", help="JSON instead of a table")
    kick = commands.add_parser("kick", help="remove a peer from its room (admin API)")
    _admin_arguments(kick, peer=True)
    kick.add_argument("--reason", metavar="TEXT", help="what the peer is told")
    mute = commands.add_parser(
        "mute", help="ask a peer to mute its microphone, or its camera (admin API)"
    )
    _admin_arguments(mute, peer=True)
    mute.add_argument("--video", action="store_true", help="the camera instead of the microphone")
    close = commands.add_parser("close", help="close a room: every peer is removed (admin API)")
    _admin_arguments(close, room=True)
    close.add_argument("--reason", metavar="TEXT", help="what the peers are told")
    return parser


def _auth_secret_arguments(parser: argparse.ArgumentParser) -> None:
    """The server's secret as `serve` takes it (read by _auth_secret)."""
    parser.add_argument("--auth-secret", help="the server's --auth-secret (RTCROOM_AUTH_SECRET)")
    parser.add_argument(
        "--auth-secret-file", type=Path, metavar="PATH", help="(RTCROOM_AUTH_SECRET_FILE)"
    )


def _peer_arguments(parser: argparse.ArgumentParser) -> None:
    """Where a command-line peer joins, and with which token (read by _peer_token)."""
    parser.add_argument("url", help="the rtcroom server, e.g. http://127.0.0.1:8080")
    parser.add_argument("room")
    parser.add_argument(
        "--token",
        help="an access token for the room (RTCROOM_TOKEN); else, when the server's secret "
        "is given, a token is minted for each connection:",
    )
    _auth_secret_arguments(parser)


def _admin_arguments(
    parser: argparse.ArgumentParser, *, room: bool = False, peer: bool = False
) -> None:
    parser.add_argument("url", help="the rtcroom server, e.g. http://127.0.0.1:8080")
    if room or peer:
        parser.add_argument("room")
    if peer:
        parser.add_argument("peer", help="its id, or its name when no other peer has it")
    parser.add_argument(
        "--token", help="a token with the admin grant (RTCROOM_ADMIN_TOKEN); else minted from:"
    )
    _auth_secret_arguments(parser)
    parser.add_argument(
        "--as",
        dest="as_name",
        default="moderator",
        metavar="NAME",
        help="who a minted token names, shown to a muted peer (moderator)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "turn-config":
        return turn_config(args)
    if args.command == "token":
        return mint(args)
    if args.command == "sfu-config":
        return sfu_config(args)
    if args.command in ("rooms", "kick", "mute", "close"):
        return admin(args)
    try:
        from .commands import files, media
    except ImportError as exc:
        from .extras import install_hint

        print(
            f"rtcroom {args.command}: Python peers need the 'peers' extra ({exc.name} is "
            f"missing): {install_hint('peers')}",
            file=sys.stderr,
        )
        return 2
    import asyncio

    command = f"rtcroom {args.command}" + (f" {args.bot}" if args.command == "bot" else "")
    try:
        token = _peer_token(args)
    except ConfigError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    peer = (args.url, args.room, args.name, token)
    try:
        if args.command == "bot" and args.bot == "echo":
            return asyncio.run(media.echo(*peer))
        if args.command == "bot" and args.bot == "play":
            if (args.file is None) == (not args.pattern):
                print(f"{command}: give a FILE or --pattern (one of them)", file=sys.stderr)
                return 2
            return asyncio.run(media.play(*peer, args.file, args.loop))
        if args.command == "record":
            return asyncio.run(media.record(*peer, args.out))
        if args.command == "send":
            return asyncio.run(files.send(*peer, args.file, args.to, args.wait))
        if args.command == "receive":
            return asyncio.run(files.receive(*peer, args.out, args.count))
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


def _config(args: argparse.Namespace) -> Config | None:
    """The validated configuration, or None after saying what is wrong."""
    try:
        return from_args(args)
    except ConfigError as exc:
        print(f"rtcroom: {exc}", file=sys.stderr)
        return None


def serve(args: argparse.Namespace) -> int:
    from urllib.parse import urlsplit

    from .app import create_app
    from .serve import BindError, listen, run

    config = _config(args)
    if config is None:
        return 2
    try:
        # Before anything else: a port in use is said at once, in one line.
        sock = listen(config.host, config.port, shared=config.workers > 1)
    except BindError as exc:
        print(f"rtcroom serve: {exc}", file=sys.stderr)
        return 1
    from .logs import configure

    broker_password = urlsplit(config.broker_url).password if config.broker_url else None
    configure(
        config.log_level,
        config.log_format,
        secrets=(
            config.auth_secret,
            config.turn_secret,
            config.sfu_secret,
            config.webhook_secret,
            broker_password,
        ),
        pid=config.workers > 1,
    )
    # redis-py's debug log is noise next to ours.
    logging.getLogger("redis").setLevel(max(logging.INFO, logging.getLogger().level))
    log = logging.getLogger("rtcroom")
    ice = " ".join((*config.ice_servers, *config.stun_urls, *config.turn_urls)) or "none"
    rooms = f"in Redis at {config.broker_where}" if config.broker_url else "in memory"
    log.info(
        "rtcroom %s on http://%s:%d (rooms %s, ICE servers: %s%s)",
        __version__,
        config.host,
        config.port,
        rooms,
        ice,
        f"; TURN credentials for {config.turn_ttl} s" if config.turn_secret else "",
    )
    if config.auth_secret:
        log.info("access tokens required to join (docs/security.md)")
    else:
        log.warning(
            "open mode: anyone who reaches this server may join any room; "
            "give --auth-secret to require access tokens (docs/security.md)"
        )
    if config.workers > 1 and config.socketio:
        log.warning(
            "--workers: Socket.IO clients must connect with transports: ['websocket'] "
            "(long polling needs all its requests on one process); for unchanged tutorial "
            "clients run separate processes behind a load balancer with sticky sessions "
            "(docs/deploy.md)"
        )
    if config.workers > 1:
        from .workers import serve_workers

        sock.close()  # serve_workers reserves the port itself
        return serve_workers(config)
    return 0 if run(create_app(config), config, sock) else 1


def turn_config(args: argparse.Namespace) -> int:
    """Print coturn's configuration for the TURN settings rtcroom serve is given."""
    from urllib.parse import urlsplit

    from .turn import coturn_config

    try:
        config = turn_from_args(args)
    except ConfigError as exc:
        print(f"rtcroom: {exc}", file=sys.stderr)
        return 2
    if not config.turn_secret:
        print(
            "rtcroom turn-config: give the TURN secret (--turn-secret, RTCROOM_TURN_SECRET "
            "or --turn-secret-file) and --turn-url, as for rtcroom serve",
            file=sys.stderr,
        )
        return 2
    port = 3478
    for url in config.turn_urls:
        if url.startswith("turn:"):
            hostport = urlsplit(url.replace("turn:", "turn://", 1)).port
            port = hostport or port
            break
    print(
        coturn_config(
            secret=config.turn_secret,
            realm=args.realm,
            listening_ip=args.listening_ip,
            relay_ip=args.relay_ip or args.listening_ip,
            external_ip=args.external_ip,
            port=port,
            min_port=args.min_port,
            max_port=args.max_port,
            total_quota=args.total_quota,
            user_quota=args.user_quota,
            cert=args.cert,
            pkey=args.pkey,
        ),
        end="",
    )
    return 0


def sfu_config(args: argparse.Namespace) -> int:
    """Print (or write to --out) the Janus configuration files rtcroom's SFU mode expects."""
    import os

    from .config import ConfigError, secret_from
    from .sfu.janus_config import JanusSettings, SfuConfigError, janus_files

    try:
        secret = secret_from(
            args.sfu_secret, args.sfu_secret_file, os.environ, "RTCROOM_SFU_SECRET",
            "--sfu-secret-file",
        )  # fmt: skip
        if not secret:
            raise SfuConfigError(
                "give Janus's API secret: --sfu-secret, RTCROOM_SFU_SECRET or --sfu-secret-file "
                "(the same one rtcroom serve is given)"
            )
        admin_secret = secret_from(
            args.admin_secret, None, os.environ, "RTCROOM_SFU_ADMIN_SECRET", "--admin-secret"
        )
        settings = JanusSettings(
            api_ip=args.api_ip,
            api_port=args.api_port,
            api_secret=secret,
            media_ip=args.media_ip,
            public_ip=args.public_ip,
            min_port=args.min_port,
            max_port=args.max_port,
            admin_secret=admin_secret,
            admin_port=args.admin_port,
            folder=str(args.out.resolve()) if args.out else "/etc/janus",
        )
    except (ConfigError, SfuConfigError) as exc:
        print(f"rtcroom sfu-config: {exc}", file=sys.stderr)
        return 2
    files = janus_files(settings)
    if args.out is None:
        for name, text in files.items():
            print(f"# ===== {settings.folder}/{name} =====\n{text}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = args.out / name
        # The files hold the secrets: readable by their owner only.
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(text)
    print(
        f"wrote {', '.join(files)} to {args.out}: run janus -F {args.out} -C {args.out}/janus.jcfg"
    )
    return 0


def _auth_secret(args: argparse.Namespace) -> str | None:
    """The server's auth secret, as `serve` takes it: flag, file, variables."""
    import os

    from .config import secret_from

    return secret_from(
        args.auth_secret, args.auth_secret_file, os.environ, "RTCROOM_AUTH_SECRET",
        "--auth-secret-file",
    )  # fmt: skip


# How long a token that a command-line peer mints for itself holds: it mints
# a new one for each connection (Room calls the function on each), so a short
# life costs nothing.
PEER_TOKEN_TTL = 300.0


def _peer_token(args: argparse.Namespace) -> str | Callable[[], str] | None:
    """A command-line peer's token: --token or RTCROOM_TOKEN, else minted per connection
    from the server's secret (publish, subscribe, data: what a participant does) when it is
    given, else none (an open-mode server)."""
    import os

    token: str | None = args.token or os.environ.get("RTCROOM_TOKEN")
    if token:
        return token
    secret = _auth_secret(args)
    if not secret:
        return None
    from .auth import mint_token

    return lambda: mint_token(
        secret,
        room=args.room,
        identity=args.name,
        name=args.name,
        ttl=PEER_TOKEN_TTL,
        grants=("publish", "subscribe", "data"),
    )


def admin(args: argparse.Namespace) -> int:
    """rtcroom rooms, kick, mute, close: the admin API of a running server."""
    import os

    from .commands import admin as commands

    token = args.token or os.environ.get("RTCROOM_ADMIN_TOKEN")
    secret = None
    if not token:
        try:
            secret = _auth_secret(args)
        except ConfigError as exc:
            print(f"rtcroom {args.command}: {exc}", file=sys.stderr)
            return 2
    return commands.main(args.command, args, token, secret)


def mint(args: argparse.Namespace) -> int:
    """Print an access token (or a room link holding one)."""
    from urllib.parse import quote

    from .auth import DEFAULT_GRANTS, mint_token

    try:
        secret = _auth_secret(args)
    except ConfigError as exc:
        print(f"rtcroom token: {exc}", file=sys.stderr)
        return 2
    if not secret:
        print(
            "rtcroom token: give the server's secret (--auth-secret, --auth-secret-file "
            "or RTCROOM_AUTH_SECRET)",
            file=sys.stderr,
        )
        return 2
    try:
        token = mint_token(
            secret,
            room=args.room,
            identity=args.identity,
            name=args.name,
            ttl=args.ttl,
            grants=args.grant or DEFAULT_GRANTS,
        )
    except ValueError as exc:
        print(f"rtcroom token: {exc}", file=sys.stderr)
        return 2
    if args.link:
        if "*" in args.room:
            print("rtcroom token: --link needs a room name, not a pattern", file=sys.stderr)
            return 2
        # The name too: the page then joins at once instead of asking for one
        # (the server takes the token's name either way).
        named = f"name={quote(args.name)}&" if args.name else ""
        print(f"{args.link.rstrip('/')}/r/{quote(args.room)}?{named}token={token}")
    else:
        print(token)
    return 0
