"""The `rtcroom` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, add_serve_arguments, from_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rtcroom", description="WebRTC rooms with Python.")
    parser.add_argument("--version", action="version", version=f"rtcroom {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the signaling server and the web app")
    add_serve_arguments(serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
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
