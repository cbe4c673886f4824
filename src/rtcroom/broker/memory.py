"""The in-process broker: rooms are dictionaries of this process."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol import PeerInfo
from . import Mailbox, RoomFull


@dataclass(slots=True)
class Member:
    info: PeerInfo
    mailbox: Mailbox


@dataclass(slots=True)
class Room:
    name: str
    # dicts keep insertion order: this is the join order that joined.peers reports.
    members: dict[str, Member] = field(default_factory=dict)


class MemoryBroker:
    """Rooms of one process. Every method completes without suspending."""

    def __init__(self, *, max_peers_per_room: int = 8) -> None:
        self.max_peers_per_room = max_peers_per_room
        self.rooms: dict[str, Room] = {}

    async def enter(self, room: str, peer: PeerInfo, mailbox: Mailbox) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None:
            entry = self.rooms[room] = Room(room)
        if len(entry.members) >= self.max_peers_per_room:
            raise RoomFull(f"room {room!r} is full ({self.max_peers_per_room} peers)")
        peers = [member.info for member in entry.members.values()]
        entry.members[peer.id] = Member(peer, mailbox)
        return peers

    async def exit(self, room: str, peer_id: str) -> None:
        entry = self.rooms.get(room)
        if entry is None:
            return
        entry.members.pop(peer_id, None)
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
        self.rooms.clear()
