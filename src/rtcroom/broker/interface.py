"""The Broker interface: what every broker does, and how it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..protocol import ErrorCode, PeerInfo


class Mailbox(Protocol):
    """Where a broker drops frames for one local connection. Never blocks."""

    def deliver(self, frame: str) -> None: ...

    def evict(self) -> None:
        """Another connection resumed this peer: end this one, without a departure."""
        ...

    def lost(self) -> None:
        """The broker lost this peer's place (its process was cut off from the
        others for too long): end the connection so that its client joins again."""
        ...


class Refused(Exception):
    """The broker will not admit the peer; `code` says why (an ErrorCode)."""

    code = ErrorCode.ROOM_FULL

    def __init__(self, message: str) -> None:
        super().__init__(message)


class RoomFull(Refused):
    """The room already holds its maximum number of peers."""

    code = ErrorCode.ROOM_FULL


class Unavailable(Refused):
    """What the broker relies on (Redis) cannot be reached: try again shortly."""

    code = ErrorCode.UNAVAILABLE


class ServerFull(Refused):
    """The server already holds its maximum number of rooms."""

    code = ErrorCode.SERVER_FULL


@dataclass(frozen=True, slots=True)
class Resumed:
    """A peer handed back to a new connection."""

    peer: PeerInfo
    # The others in the room, in join order, as the peer last knew them.
    peers: list[PeerInfo]
    # Frames that arrived for it while it was away, in order: deliver after
    # `joined` and its view of the room is up to date.
    held: list[str]


class Broker(Protocol):
    async def start(self) -> None:
        """Connect to whatever the broker needs, once, before the first join."""
        ...

    async def enter(
        self, room: str, peer: PeerInfo, mailbox: Mailbox, resume_key: str
    ) -> list[PeerInfo]:
        """Admit `peer` to `room`; return the peers already there, in join order.

        Raises RoomFull or ServerFull. `resume_key` lets resume() find the peer.
        """
        ...

    async def resume(self, room: str, key: str, mailbox: Mailbox) -> Resumed | None:
        """Hand the peer of `key` in `room` to `mailbox`.

        If it was still connected elsewhere, that connection's mailbox is
        evicted. None when there is no such peer (any more), or when frames
        for it were lost while it was away.
        """
        ...

    async def suspend(self, room: str, peer_id: str, farewell: str) -> None:
        """Hold frames for `peer_id` for the grace period, then remove it and publish `farewell`."""
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

    # The same two without a coroutine, for the common case that needs no
    # waiting (every peer in this process): what relay() would return, or
    # None if it would have to wait; publish_now() is False if it would.

    def relay_now(self, room: str, to: str, frame: str) -> bool | None: ...

    def publish_now(self, room: str, sender: str, frame: str) -> bool: ...

    # True when other processes share the rooms and can take this one's
    # suspended peers over (so a draining process waits for them).
    shared: bool

    def suspended(self) -> int:
        """How many peers of this process wait for a connection to resume them."""
        ...

    async def close(self) -> None:
        """Remove this process's peers (announcing them as left) and disconnect."""
        ...
