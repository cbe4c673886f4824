"""The in-process broker: rooms are dictionaries of this process."""

from __future__ import annotations

from ..protocol import PeerInfo
from .interface import LeaveReason, Mailbox, Presence
from .local import Held, LocalMembers, Member, Room

__all__ = ["Held", "Member", "MemoryBroker", "Room"]


class MemoryBroker(LocalMembers):
    """Rooms of one process. Every method completes without suspending."""

    async def start(self) -> None:
        pass

    async def enter(
        self,
        room: str,
        peer: PeerInfo,
        mailbox: Mailbox,
        resume_key: str,
        grants: frozenset[str] = frozenset(),
    ) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None and len(self.rooms) >= self.max_rooms:
            raise self._server_full()
        if entry is not None and len(entry.members) >= self.max_peers_per_room:
            raise self._room_full(room)
        peers = await self.others(room, peer.id)
        if self._add(room, peer, mailbox, resume_key, grants=grants):
            self.events.started(room)
        self.events.joined(room, peer)
        return peers

    async def others(self, room: str, peer_id: str) -> list[PeerInfo]:
        entry = self.rooms.get(room)
        if entry is None:
            return []
        return [m.info for pid, m in entry.members.items() if pid != peer_id]

    async def exit(self, room: str, peer_id: str, reason: LeaveReason = LeaveReason.LEFT) -> None:
        member = self._member(room, peer_id)
        if member is None:
            return
        emptied = self._remove(room, peer_id)
        self.events.left(room, member.info, reason)
        if emptied:
            self.events.finished(room)

    async def update(self, room: str, peer: PeerInfo) -> None:
        self._update_here(room, peer)

    async def kick(self, room: str, peer_id: str, reason: str) -> bool:
        return await self._kick_here(room, peer_id, reason)

    async def list_rooms(self) -> dict[str, list[PeerInfo]]:
        return self._local_rooms()

    async def roster(self) -> dict[str, list[Presence]]:
        return self._local_roster()

    async def count_rooms(self) -> int:
        return len(self.rooms)

    reachable = True

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
        for room, entry in list(self.rooms.items()):
            for peer_id in list(entry.members):
                await self.exit(room, peer_id, LeaveReason.SHUTDOWN)
        self._forget()
