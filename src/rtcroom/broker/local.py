"""The peers connected to this process, and their suspension for a resume.

Both brokers keep their local members here: MemoryBroker has no others,
RedisBroker adds presence in Redis and frames from other processes. What
differs, each broker supplies: `others` (the rest of a room), `exit` and
`publish`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

from ..protocol import PeerInfo, PeerLeft, encode
from .interface import (
    LeaveReason,
    Mailbox,
    NoEvents,
    Presence,
    Resumed,
    RoomEvents,
    RoomFull,
    ServerFull,
)


class Held:
    """The mailbox of a suspended peer: frames wait, up to `limit`, for its return."""

    def __init__(self, limit: int, peers: list[PeerInfo]) -> None:
        self.limit = limit
        self.frames: deque[str] = deque()
        self.overflowed = False
        # The others as the peer last knew them: with the held frames replayed
        # after them, its view of the room comes out exactly right.
        self.peers = peers

    def deliver(self, frame: str) -> None:
        if len(self.frames) >= self.limit:
            self.overflowed = True
            return
        self.frames.append(frame)

    def evict(self) -> None:
        pass

    def lost(self) -> None:
        pass

    def kick(self, reason: str) -> None:
        pass


@dataclass(slots=True)
class Member:
    info: PeerInfo
    mailbox: Mailbox
    key: str
    # The number of its entry in the room's changes (RedisBroker; 0 here):
    # it hears of changes numbered after it only.
    seq: int = 0
    # While suspended: the grace timer and what to publish when it fires.
    expiry: asyncio.TimerHandle | None = None
    farewell: str = ""
    grants: frozenset[str] = frozenset()
    # Unix time of its join.
    since: float = 0.0


@dataclass(slots=True)
class Room:
    name: str
    # dicts keep insertion order: this is the join order that joined.peers reports.
    members: dict[str, Member] = field(default_factory=dict)


class LocalMembers:
    """Local rooms and resume keys; suspend and resume on top of them."""

    # False: no other process can take this one's peers over (see suspended()).
    shared = False

    def __init__(
        self,
        *,
        max_peers_per_room: int = 8,
        max_rooms: int = 10_000,
        resume_grace: float = 20.0,
        held_frames: int = 1024,
    ) -> None:
        self.max_peers_per_room = max_peers_per_room
        self.max_rooms = max_rooms
        self.resume_grace = resume_grace
        self.held_frames = held_frames
        self.events: RoomEvents = NoEvents()
        self.rooms: dict[str, Room] = {}
        # resume key -> (room, peer id)
        self.keys: dict[str, tuple[str, str]] = {}

    # What each broker supplies.

    async def others(self, room: str, peer_id: str) -> list[PeerInfo]:
        """The peers of `room` but `peer_id`, in join order."""
        raise NotImplementedError

    async def exit(self, room: str, peer_id: str, reason: LeaveReason = LeaveReason.LEFT) -> None:
        raise NotImplementedError

    async def publish(self, room: str, sender: str, frame: str) -> None:
        raise NotImplementedError

    # Refusals, the same whichever broker counts.

    def _room_full(self, room: str) -> RoomFull:
        return RoomFull(f"room {room!r} is full ({self.max_peers_per_room} peers)")

    def _server_full(self) -> ServerFull:
        return ServerFull(f"the server holds its maximum of {self.max_rooms} rooms")

    # Local membership.

    def _member(self, room: str, peer_id: str) -> Member | None:
        entry = self.rooms.get(room)
        return entry.members.get(peer_id) if entry is not None else None

    def _add(
        self,
        room: str,
        peer: PeerInfo,
        mailbox: Mailbox,
        key: str,
        seq: int = 0,
        grants: frozenset[str] = frozenset(),
    ) -> bool:
        """Add a local member; True if it is this process's first in `room`."""
        entry = self.rooms.get(room)
        first = entry is None
        if entry is None:
            entry = self.rooms[room] = Room(room)
        entry.members[peer.id] = Member(peer, mailbox, key, seq, grants=grants, since=time.time())
        self.keys[key] = (room, peer.id)
        return first

    def _remove(self, room: str, peer_id: str) -> bool:
        """Remove a local member; True if that left this process none in `room`."""
        entry = self.rooms.get(room)
        if entry is None:
            return False
        member = entry.members.pop(peer_id, None)
        if member is not None:
            self.keys.pop(member.key, None)
            if member.expiry is not None:
                member.expiry.cancel()
        if entry.members:
            return False
        del self.rooms[room]
        return True

    def _deliver(
        self, room: str, frame: str, *, to: str = "", sender: str = "", seq: int = 0
    ) -> bool:
        """Deliver to local member `to`, or to every local member but `sender`.

        `seq`: the number of the change of presence that `frame` announces;
        members that entered after it do not get it.
        """
        entry = self.rooms.get(room)
        if entry is None:
            return False
        if to:
            member = entry.members.get(to)
            if member is None:
                return False
            member.mailbox.deliver(frame)
            return True
        for peer_id, member in entry.members.items():
            if peer_id != sender and (not seq or member.seq < seq):
                member.mailbox.deliver(frame)
        return True

    def _update_here(self, room: str, peer: PeerInfo) -> bool:
        """Replace a local member's info; False if this process has no such member."""
        member = self._member(room, peer.id)
        if member is None:
            return False
        member.info = peer
        return True

    # Resume.

    async def suspend(self, room: str, peer_id: str, farewell: str) -> None:
        member = self._member(room, peer_id)
        if member is None or member.expiry is not None:
            return
        if self.resume_grace <= 0:
            await self.exit(room, peer_id, LeaveReason.CLOSED)
            await self.publish(room, peer_id, farewell)
            return
        held = Held(self.held_frames, await self.others(room, peer_id))
        member.mailbox = held
        member.farewell = farewell
        loop = asyncio.get_running_loop()
        member.expiry = loop.call_later(
            self.resume_grace, lambda: loop.create_task(self._expire(room, peer_id, held))
        )

    async def _expire(
        self, room: str, peer_id: str, held: Held, reason: LeaveReason = LeaveReason.TIMEOUT
    ) -> None:
        member = self._member(room, peer_id)
        if member is None or member.mailbox is not held:
            return  # resumed meanwhile, or already gone
        await self.exit(room, peer_id, reason)
        await self.publish(room, peer_id, member.farewell)

    async def resume(self, room: str, key: str, mailbox: Mailbox) -> Resumed | None:
        where = self.keys.get(key)
        if where is None or where[0] != room:
            return None
        member = self.rooms[room].members[where[1]]
        previous = member.mailbox
        if isinstance(previous, Held) and previous.overflowed:
            # It missed frames: resuming would leave it out of step.
            await self._expire(room, member.info.id, previous, LeaveReason.CLOSED)
            return None
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None
        member.mailbox = mailbox
        if isinstance(previous, Held):
            return Resumed(member.info, previous.peers, list(previous.frames))
        previous.evict()
        return Resumed(member.info, await self.others(room, member.info.id), [])

    async def _kick_here(self, room: str, peer_id: str, reason: str) -> bool:
        """Kick a peer of this process; False if it has none `peer_id` in `room`."""
        member = self._member(room, peer_id)
        if member is None:
            return False
        if isinstance(member.mailbox, Held):
            # Suspended: no connection to end; it leaves now, its key forgotten.
            await self.exit(room, peer_id, LeaveReason.KICKED)
            await self.publish(room, peer_id, member.farewell or encode(PeerLeft(id=peer_id)))
        else:
            # Its connection ends, and its Session's exit says why.
            member.mailbox.kick(reason)
        return True

    def _local_roster(self) -> dict[str, list[Presence]]:
        return {
            name: [Presence(m.info, m.grants, m.since) for m in entry.members.values()]
            for name, entry in self.rooms.items()
        }

    def _local_rooms(self) -> dict[str, list[PeerInfo]]:
        return {
            name: [member.info for member in entry.members.values()]
            for name, entry in self.rooms.items()
        }

    def suspended(self) -> int:
        """How many peers wait for a connection to resume them."""
        return sum(
            1
            for entry in self.rooms.values()
            for member in entry.members.values()
            if member.expiry is not None
        )

    def _forget(self) -> None:
        for entry in self.rooms.values():
            for member in entry.members.values():
                if member.expiry is not None:
                    member.expiry.cancel()
        self.rooms.clear()
        self.keys.clear()
