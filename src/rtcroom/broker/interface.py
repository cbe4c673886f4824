"""The Broker interface: what every broker does, and how it refuses."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from ..protocol import ErrorCode, PeerInfo


class LeaveReason(StrEnum):
    """Why a peer left its room (the on-leave hook's `reason`)."""

    LEFT = "left"  # the client sent `leave`
    CLOSED = "closed"  # the connection ended for good (a closed tab, too slow)
    TIMEOUT = "timeout"  # dropped, and not resumed within the grace period
    KICKED = "kicked"  # the server's app (or an operator) removed it
    REFUSED = "refused"  # let in, then turned away (the room's mode, no SFU node)
    NODE_LOST = "node-lost"  # its process stopped heartbeating (killed)
    SHUTDOWN = "shutdown"  # its process stopped


class RoomEvents(Protocol):
    """What a broker reports about presence, each exactly once per occurrence.

    With Redis, across every process: the process whose change started or
    emptied a room (its script saw it) reports it, and a dead process's
    peers are reported by the process that reaps them. Called on the event
    loop; must not block.
    """

    def started(self, room: str) -> None:
        """`room` has its first peer (it had none)."""
        ...

    def joined(self, room: str, peer: PeerInfo) -> None:
        """`peer` entered `room` (after started() if it is the first; resumes are not joins)."""
        ...

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        """`peer` is no longer in `room`."""
        ...

    def finished(self, room: str) -> None:
        """`room` has no peer left (suspended peers count as in it)."""
        ...


class NoEvents:
    """RoomEvents for nobody: the default."""

    def started(self, room: str) -> None:
        pass

    def joined(self, room: str, peer: PeerInfo) -> None:
        pass

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        pass

    def finished(self, room: str) -> None:
        pass


class Listeners:
    """RoomEvents passed on to each of `listeners`, in order (hooks, log, webhooks)."""

    def __init__(self, *listeners: RoomEvents) -> None:
        self.listeners = listeners

    def started(self, room: str) -> None:
        for listener in self.listeners:
            listener.started(room)

    def joined(self, room: str, peer: PeerInfo) -> None:
        for listener in self.listeners:
            listener.joined(room, peer)

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        for listener in self.listeners:
            listener.left(room, peer, reason)

    def finished(self, room: str) -> None:
        for listener in self.listeners:
            listener.finished(room)


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

    def kick(self, reason: str) -> None:
        """The peer is removed from its room: end the connection for good (no resume)."""
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
class Presence:
    """A peer as an operator sees it (the admin API): who, with which grants, since when."""

    peer: PeerInfo
    grants: frozenset[str]
    # Unix time of its join (a resume keeps it).
    since: float


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
    # Where presence changes are reported (set before start()).
    events: RoomEvents

    async def start(self) -> None:
        """Connect to whatever the broker needs, once, before the first join."""
        ...

    async def enter(
        self,
        room: str,
        peer: PeerInfo,
        mailbox: Mailbox,
        resume_key: str,
        grants: frozenset[str] = frozenset(),
    ) -> list[PeerInfo]:
        """Admit `peer` to `room`; return the peers already there, in join order.

        Raises RoomFull or ServerFull. `resume_key` lets resume() find the
        peer; `grants` are what it may do (listed by roster()).
        """
        ...

    async def update(self, room: str, peer: PeerInfo) -> None:
        """Keep `peer` (a new participant state) for the member of its id in `room`.

        What enter(), resume() and the rosters report from now on; nothing if it left.
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

    async def exit(self, room: str, peer_id: str, reason: LeaveReason = LeaveReason.LEFT) -> None:
        """Remove `peer_id` from `room`. Idempotent: reported (events.left) once."""
        ...

    async def kick(self, room: str, peer_id: str, reason: str) -> bool:
        """End `peer_id`'s connection for good, in whichever process holds it.

        Its resume key stops working and the room sees it leave once
        (reason KICKED). False if it is not in `room`.
        """
        ...

    async def list_rooms(self) -> dict[str, list[PeerInfo]]:
        """Every room with its peers (in join order), across the processes sharing them."""
        ...

    async def roster(self) -> dict[str, list[Presence]]:
        """list_rooms() with each peer's grants and join time (the admin API)."""
        ...

    async def count_rooms(self) -> int:
        """How many rooms have peers, across the processes sharing them."""
        ...

    @property
    def reachable(self) -> bool:
        """False while what the broker relies on (Redis) cannot be reached."""
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
