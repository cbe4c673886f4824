"""A Python bot in a room next to browsers: the rtcroom.client take on the seeds' tutorial.

    python examples/bot.py http://127.0.0.1:8080 standup

It joins as "greeter" with a test video (aiortc's), says hello to whoever
joins, answers chat messages, and echoes what arrives on data channels.
Needs the Python peers: pip install 'rtcroom[peers]'. Ctrl-C leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from aiortc import RTCDataChannel, VideoStreamTrack

from rtcroom.client import ChatMessage, RemotePeer, Room


async def main(url: str, room_name: str) -> None:
    room = await Room.join(url, room_name, "greeter", tracks=[VideoStreamTrack()])
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


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(sys.argv[1], sys.argv[2]))
