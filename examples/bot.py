"""A Python bot in a room next to browsers: the rtcroom.client take on the seeds' tutorial.

    pip install '.[peers]'             # in rtcroom's checkout: aiortc, PyAV, numpy
    python examples/bot.py http://127.0.0.1:8080 standup

It joins as "greeter" with a test video (aiortc's), says hello to whoever
joins, answers chat messages, and echoes what arrives on data channels.
On a server that requires tokens, give one with --token (or RTCROOM_TOKEN;
`rtcroom token` mints it). Ctrl-C leaves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os

from aiortc import RTCDataChannel, VideoStreamTrack

from rtcroom.client import ChatMessage, RemotePeer, Room, RoomError


async def main(url: str, room_name: str, name: str, token: str | None) -> int:
    try:
        room = await Room.join(url, room_name, name, tracks=[VideoStreamTrack()], token=token)
    except RoomError as exc:
        print(f"bot.py: {exc.message}", flush=True)
        return 1
    print(f"joined {room_name} as {room.id}", flush=True)

    @room.on("peerjoined")
    def hello(peer: RemotePeer) -> None:
        print(f"{peer.name} joined", flush=True)

    @room.on("chat")
    def answer(peer: RemotePeer, message: ChatMessage) -> None:
        room.send_chat(f"Hi {message.name}, you said: {message.text}")

    @room.on("datachannel")
    def echo(peer: RemotePeer, channel: RTCDataChannel) -> None:
        channel.on("message", lambda data: channel.send(f"echo: {data}"))

    try:
        await room.wait_closed()  # until refused for good, or Ctrl-C
    finally:
        await room.leave()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="A bot that greets, answers chat and echoes data channels in a room."
    )
    parser.add_argument("url", help="the rtcroom server, e.g. http://127.0.0.1:8080")
    parser.add_argument("room", help="the room's name")
    parser.add_argument("--name", default="greeter", help="the bot's name (greeter)")
    parser.add_argument("--token", help="an access token for the room (RTCROOM_TOKEN)")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(
            asyncio.run(
                main(args.url, args.room, args.name, args.token or os.environ.get("RTCROOM_TOKEN"))
            )
        )
