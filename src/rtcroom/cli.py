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

    bot = commands.add_parser("bot", help="media bots: echo, play")
    bots = bot.add_subparsers(dest="bot", required=True, metavar="BOT")
    echo = bots.add_parser("echo", help="send every participant's video and audio back to them")
    echo.add_argument("url")
    echo.add_argument("room")
    echo.add_argument("--name", default="echo", help="our name in the room")
    play = bots.add_parser("play", help="stream a media file or a test pattern into a room")
    play.add_argument("url")
    play.add_argument("room")
    play.add_argument("file", type=Path, nargs="?", help="a media file (anything FFmpeg reads)")
    play.add_argument("--pattern", action="store_true", help="a test pattern instead of a file")
    play.add_argument("--loop", action="store_true", help="play the file again and again")
    play.add_argument("--name", default="player", help="our name in the room")

    record = commands.add_parser("record", help="record each participant to a file of its own")
    record.add_argument("url")
    record.add_argument("room")
    record.add_argument("--out", type=Path, default=Path("."), help="folder for the recordings")
    record.add_argument("--name", default="recorder", help="our name in the room")

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
    from .bots import files, media

    try:
        if args.command == "bot" and args.bot == "echo":
            return asyncio.run(media.echo(args.url, args.room, args.name))
        if args.command == "bot" and args.bot == "play":
            if (args.file is None) == (not args.pattern):
                print("rtcroom bot play: give a FILE or --pattern (one of them)", file=sys.stderr)
                return 2
            return asyncio.run(media.play(args.url, args.room, args.file, args.name, args.loop))
        if args.command == "record":
            return asyncio.run(media.record(args.url, args.room, args.out, args.name))
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
