"""The `rtcroom` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import ConfigError, add_serve_arguments, from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtcroom", description="WebRTC rooms with Python.")
    parser.add_argument("--version", action="version", version=f"rtcroom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the signaling server and the web app")
    add_serve_arguments(serve)

    send = commands.add_parser("send", help="send a file to peers of a room (web app or Python)")
    send.add_argument("url", help="the rtcroom server, e.g. http://127.0.0.1:8080")
    send.add_argument("room")
    send.add_argument("file", type=Path)
    send.add_argument("--to", metavar="NAME", help="only to the peer with this name")
    send.add_argument("--name", default="rtcroom-send", help="our name in the room")
    send.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a peer")

    receive = commands.add_parser("receive", help="save the files that peers send us")
    receive.add_argument("url", help="the rtcroom server, e.g. http://127.0.0.1:8080")
    receive.add_argument("room")
    receive.add_argument("--out", type=Path, default=Path("."), help="folder for the files")
    receive.add_argument("--name", default="rtcroom-receive", help="our name in the room")
    receive.add_argument("--count", type=int, help="stop after this many files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    from .bots import files

    try:
        if args.command == "send":
            return asyncio.run(
                files.send(args.url, args.room, args.file, args.to, args.name, args.wait)
            )
        if args.command == "receive":
            return asyncio.run(files.receive(args.url, args.room, args.out, args.name, args.count))
    except KeyboardInterrupt:
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


def serve(args: argparse.Namespace) -> int:
    from .server import create_app, run

    try:
        config = from_args(args)
    except ConfigError as exc:
        print(f"rtcroom: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=config.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    log = logging.getLogger("rtcroom")
    log.info(
        "rtcroom %s on http://%s:%d (rooms in memory, ICE servers: %s)",
        __version__,
        config.host,
        config.port,
        " ".join(config.ice_servers) or "none",
    )
    run(create_app(config), config)
    return 0
