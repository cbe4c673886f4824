"""Presence and fan-out: which peers are in which room, and delivery to them.

The Broker is the seam between one process and many: MemoryBroker keeps
rooms in this process (the default, nothing else to run); a Redis broker
shares them between processes behind the same interface.
"""

from .interface import Broker, Mailbox, Refused, Resumed, RoomFull, ServerFull, Unavailable
from .memory import MemoryBroker

__all__ = [
    "Broker",
    "Mailbox",
    "MemoryBroker",
    "Refused",
    "Resumed",
    "RoomFull",
    "ServerFull",
    "Unavailable",
]
