"""Python peers for rtcroom rooms, on aiortc: `Room.join(url, room, name, tracks=...)`.

See docs/client.md for a walk-through.
"""

from __future__ import annotations

from .files import Transfer, TransferError, receive_files, send_file
from .room import ChatMessage, RemotePeer, Room, RoomError, signaling_url

__all__ = [
    "ChatMessage",
    "RemotePeer",
    "Room",
    "RoomError",
    "Transfer",
    "TransferError",
    "receive_files",
    "send_file",
    "signaling_url",
]
