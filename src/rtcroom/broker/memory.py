"""The in-process broker: rooms are dictionaries of this process."""

from __future__ import annotations

from ..protocol import PeerInfo
from .interface import Mailbox
from .local import Held, LocalMembers, Member, Room

__all__ = ["Held", "Member", "MemoryBroker", "Room"]


class MemoryBroker(LocalMembers):
    """Rooms of one process. Every method completes without suspending."""

    async def start(self) -> None:
        pass

    async def enter(
        self, room: str, peer: PeerInfo, mailbox: Mailbox, resume_key: str
    ) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None and len(self.rooms) >= self.max_rooms:
            raise self._server_full()
        if entry is not None and len(entry.members) >= self.max_peers_per_room:
            raise self._room_full(room)
        peers = await self.others(room, peer.id)
        self._add(room, peer, mailbox, resume_key)
        return peers

    async def others(self, room: str, peer_id: str) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None:
            return []
        return [m.info for pid, m in entry.members.items() if pid != peer_id]

    async def exit(self, room: str, peer_id: str) -> None:
        self._remove(room, peer_id)

    async def relay(self, room: str, to: str, frame: str) -> bool:
        return self._deliver(room, frame, to=to)

    async def publish(self, room: str, sender: str, frame: str) -> None:
        self._deliver(room, frame, sender=sender)

    def relay_now(self, room: str, to: str, frame: str) -> bool:
        return self._deliver(room, frame, to=to)

    def publish_now(self, room: str, sender: str, frame: str) -> bool:
        self._deliver(room, frame, sender=sender)
        return True

    async def close(self) -> None:
        self._forget()
