"""The in-process broker: rooms are dictionaries of this process."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from ..protocol import PeerInfo
from . import Mailbox, Resumed, RoomFull, ServerFull


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


@dataclass(slots=True)
class Member:
    info: PeerInfo
    mailbox: Mailbox
    key: str
    # While suspended: the grace timer and what to publish when it fires.
    expiry: asyncio.TimerHandle | None = None
    farewell: str = ""


@dataclass(slots=True)
class Room:
    name: str
    # dicts keep insertion order: this is the join order that joined.peers reports.
    members: dict[str, Member] = field(default_factory=dict)


class MemoryBroker:
    """Rooms of one process. Every method completes without suspending."""

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
        self.rooms: dict[str, Room] = {}
        # resume key -> (room, peer id)
        self.keys: dict[str, tuple[str, str]] = {}

    async def start(self) -> None:
        pass

    async def enter(
        self, room: str, peer: PeerInfo, mailbox: Mailbox, resume_key: str
    ) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None:
            if len(self.rooms) >= self.max_rooms:
                raise ServerFull(f"the server holds its maximum of {self.max_rooms} rooms")
            entry = self.rooms[room] = Room(room)
        if len(entry.members) >= self.max_peers_per_room:
            raise RoomFull(f"room {room!r} is full ({self.max_peers_per_room} peers)")
        peers = [member.info for member in entry.members.values()]
        entry.members[peer.id] = Member(peer, mailbox, resume_key)
        self.keys[resume_key] = (room, peer.id)
        return peers

    async def resume(self, room: str, key: str, mailbox: Mailbox) -> Resumed | None:
        where = self.keys.get(key)
        if where is None or where[0] != room:
            return None
        member = self.rooms[room].members[where[1]]
        previous = member.mailbox
        if isinstance(previous, Held) and previous.overflowed:
            # It missed frames: resuming would leave it out of step.
            await self._expire(room, member.info.id, previous)
            return None
        if member.expiry is not None:
            member.expiry.cancel()
            member.expiry = None
        member.mailbox = mailbox
        peers = [m.info for m in self.rooms[room].members.values() if m is not member]
        if isinstance(previous, Held):
            return Resumed(member.info, previous.peers, list(previous.frames))
        previous.evict()
        return Resumed(member.info, peers, [])

    async def suspend(self, room: str, peer_id: str, farewell: str) -> None:
        entry = self.rooms.get(room)
        member = entry.members.get(peer_id) if entry is not None else None
        if member is None:
            return
        if self.resume_grace <= 0:
            await self.exit(room, peer_id)
            await self.publish(room, peer_id, farewell)
            return
        if member.expiry is not None:
            return
        assert entry is not None
        others = [m.info for m in entry.members.values() if m is not member]
        held = Held(self.held_frames, others)
        member.mailbox = held
        member.farewell = farewell
        loop = asyncio.get_running_loop()
        member.expiry = loop.call_later(
            self.resume_grace, lambda: loop.create_task(self._expire(room, peer_id, held))
        )

    async def _expire(self, room: str, peer_id: str, held: Held) -> None:
        entry = self.rooms.get(room)
        member = entry.members.get(peer_id) if entry is not None else None
        if member is None or member.mailbox is not held:
            return  # resumed meanwhile, or already gone
        farewell = member.farewell
        await self.exit(room, peer_id)
        await self.publish(room, peer_id, farewell)

    async def exit(self, room: str, peer_id: str) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        member = entry.members.pop(peer_id, None)
        if member is not None:
            self.keys.pop(member.key, None)
            if member.expiry is not None:
                member.expiry.cancel()
        if not entry.members:
            del self.rooms[room]

    async def relay(self, room: str, to: str, frame: str) -> bool:
        entry = self.rooms.get(room)
        member = entry.members.get(to) if entry is not None else None
        if member is None:
            return False
        member.mailbox.deliver(frame)
        return True

    async def publish(self, room: str, sender: str, frame: str) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        for peer_id, member in entry.members.items():
            if peer_id != sender:
                member.mailbox.deliver(frame)

    async def close(self) -> None:
        for entry in self.rooms.values():
            for member in entry.members.values():
                if member.expiry is not None:
                    member.expiry.cancel()
        self.rooms.clear()
        self.keys.clear()
