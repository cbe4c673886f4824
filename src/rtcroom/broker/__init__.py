"""Presence and fan-out: which peers are in which room, and delivery to them.

The Broker is the seam between one process and many: MemoryBroker keeps
rooms in this process (the default, nothing else to run); a Redis broker
shares them between processes behind the same interface.
"""

from __future__ import annotations

from typing import Protocol

from ..protocol import PeerInfo


class Mailbox(Protocol):
    """Where a broker drops frames for one local connection. Never blocks."""

    def deliver(self, frame: str) -> None: ...


class RoomFull(Exception):
    """The room already holds its maximum number of peers."""


class Broker(Protocol):
    async def enter(self, room: str, peer: PeerInfo, mailbox: Mailbox) -> list[PeerInfo]:
        """Admit `peer` to `room`; return the peers already there, in join order.

        Raises RoomFull when the room is at capacity.
        """
        ...

    async def exit(self, room: str, peer_id: str) -> None:
        """Remove `peer_id` from `room`. Idempotent."""
        ...

    async def relay(self, room: str, to: str, frame: str) -> bool:
        """Deliver `frame` to peer `to` of `room`; False if it is not there."""
        ...

    async def publish(self, room: str, sender: str, frame: str) -> None:
        """Deliver `frame` to every peer of `room` but `sender`."""
        ...

    async def close(self) -> None: ...


from .memory import MemoryBroker  # noqa: E402

__all__ = ["Broker", "Mailbox", "MemoryBroker", "RoomFull"]
