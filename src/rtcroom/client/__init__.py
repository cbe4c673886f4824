"""Python peers for rtcroom rooms, on aiortc: `Room.join(url, room, name, tracks=...)`.

See docs/client.md for a walk-through.
"""

from __future__ import annotations

try:
    import aiortc  # noqa: F401
    import pyee  # noqa: F401
except ImportError as exc:
    from ..extras import install_hint

    raise ImportError(
        f"rtcroom.client needs the 'peers' extra ({exc.name} is missing): {install_hint('peers')}",
        name=exc.name,
    ) from exc

from ..protocol import REACTIONS, Status
from .files import Transfer, TransferError, receive_files, send_file
from .room import ChatMessage, RemotePeer, Room, RoomError, signaling_url

__all__ = [
    "REACTIONS",
    "ChatMessage",
    "RemotePeer",
    "Room",
    "RoomError",
    "Status",
    "Transfer",
    "TransferError",
    "receive_files",
    "send_file",
    "signaling_url",
]
