"""Rooms shared by many rtcroom processes through Redis (redis-py asyncio).

Redis holds presence only, all of it ephemeral:

- `rtcroom:room:<R>`: sorted set of peer ids, scored by a global sequence
  (join order)
- `rtcroom:peer:<id>`: hash of the peer's name, identity, room and node
- `rtcroom:rooms`: set of rooms that have members (for --max-rooms)

Admission is one Lua script, so room capacity holds under concurrent joins
from any number of processes. Frames travel over pub/sub: each process
(node) listens on `rtcroom:node:<node>` for frames relayed to one of its
peers, and on `rtcroom:room:<R>` for the rooms where it has peers.
Peers of this process are reached directly, without a Redis round trip.

Not yet across processes: resume (a peer resumes only on the process that
held it) and the announcement of peers of a process that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import msgspec
import redis.asyncio as aioredis

from ..protocol import PeerInfo
from . import Mailbox, RoomFull, ServerFull
from .local import LocalMembers

log = logging.getLogger("rtcroom.redis")

PREFIX = "rtcroom:"

# KEYS: room zset, rooms set, sequence, peer hash
# ARGV: room, peer id, name, identity, node, max peers, max rooms
_ENTER = """
local size = redis.call('ZCARD', KEYS[1])
if size >= tonumber(ARGV[6]) then return {-1} end
if size == 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then return {-2} end
local others = redis.call('ZRANGE', KEYS[1], 0, -1)
local result = {}
for _, id in ipairs(others) do
  local info = redis.call('HMGET', 'rtcroom:peer:' .. id, 'name', 'identity')
  table.insert(result, id)
  table.insert(result, info[1] or '')
  table.insert(result, info[2] or '')
end
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], seq, ARGV[2])
redis.call('HSET', KEYS[4], 'room', ARGV[1], 'name', ARGV[3], 'identity', ARGV[4], 'node', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return result
"""

# KEYS: room zset, rooms set, peer hash; ARGV: room, peer id
_EXIT = """
local removed = redis.call('ZREM', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[3])
if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return removed
"""


class Envelope(msgspec.Struct, array_like=True):
    """A frame on pub/sub: from which node, for whom (`to`, or all but `sender`)."""

    node: str
    room: str
    to: str
    sender: str
    frame: str


class RedisBroker(LocalMembers):
    """Presence in Redis, frames over pub/sub; same interface as MemoryBroker."""

    def __init__(
        self,
        url: str,
        *,
        max_peers_per_room: int = 8,
        max_rooms: int = 10_000,
        resume_grace: float = 20.0,
        held_frames: int = 1024,
    ) -> None:
        super().__init__(resume_grace=resume_grace, held_frames=held_frames)
        self.url = url
        self.max_peers_per_room = max_peers_per_room
        self.max_rooms = max_rooms
        self.node = secrets.token_hex(8)
        self.redis: aioredis.Redis = aioredis.from_url(url, decode_responses=True)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self._enter = self.redis.register_script(_ENTER)
        self._exit = self.redis.register_script(_EXIT)
        self._reader: asyncio.Task[None] | None = None
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Envelope)

    async def start(self) -> None:
        await self.pubsub.subscribe(PREFIX + "node:" + self.node)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message.get("type") != "message":
                continue
            data = message["data"]
            try:
                envelope = self._decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                log.warning("ignored a malformed pub/sub message")
                continue
            if envelope.node != self.node:
                self._deliver(envelope.room, envelope.frame, to=envelope.to, sender=envelope.sender)

    def _envelope(self, room: str, to: str, sender: str, frame: str) -> str:
        return self._encoder.encode(Envelope(self.node, room, to, sender, frame)).decode()

    async def enter(
        self, room: str, peer: PeerInfo, mailbox: Mailbox, resume_key: str
    ) -> list[PeerInfo]:
        result: list[Any] = await self._enter(
            keys=[PREFIX + "room:" + room, PREFIX + "rooms", PREFIX + "seq", _peer_key(peer.id)],
            args=[
                room,
                peer.id,
                peer.name,
                peer.identity or "",
                self.node,
                self.max_peers_per_room,
                self.max_rooms,
            ],
        )
        if result and result[0] == -1:
            raise RoomFull(f"room {room!r} is full ({self.max_peers_per_room} peers)")
        if result and result[0] == -2:
            raise ServerFull(f"the server holds its maximum of {self.max_rooms} rooms")
        peers = [
            PeerInfo(id=result[i], name=result[i + 1], identity=result[i + 2] or None)
            for i in range(0, len(result), 3)
        ]
        if self._add(room, peer, mailbox, resume_key):
            await self.pubsub.subscribe(PREFIX + "room:" + room)
        return peers

    async def exit(self, room: str, peer_id: str) -> None:
        if self._remove(room, peer_id):
            await self.pubsub.unsubscribe(PREFIX + "room:" + room)
        await self._exit(
            keys=[PREFIX + "room:" + room, PREFIX + "rooms", _peer_key(peer_id)],
            args=[room, peer_id],
        )

    async def relay(self, room: str, to: str, frame: str) -> bool:
        if self._deliver(room, frame, to=to):
            return True
        where: list[Any] = await self.redis.hmget(_peer_key(to), ["room", "node"])
        if where[0] != room or where[1] is None:
            return False
        node = str(where[1])
        await self.redis.publish(PREFIX + "node:" + node, self._envelope(room, to, "", frame))
        return True

    async def publish(self, room: str, sender: str, frame: str) -> None:
        self._deliver(room, frame, sender=sender)
        await self.redis.publish(PREFIX + "room:" + room, self._envelope(room, "", sender, frame))

    async def others(self, room: str, peer_id: str) -> list[PeerInfo]:
        ids: list[Any] = await self.redis.zrange(PREFIX + "room:" + room, 0, -1)
        ids = [str(i) for i in ids if i != peer_id]
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hmget(_peer_key(i), ["name", "identity"])
            infos: list[Any] = await pipe.execute()
        return [
            PeerInfo(id=i, name=str(name or ""), identity=identity or None)
            for i, (name, identity) in zip(ids, infos, strict=True)
        ]

    async def close(self) -> None:
        for room, entry in list(self.rooms.items()):
            for peer_id in list(entry.members):
                with contextlib.suppress(Exception):
                    await self.exit(room, peer_id)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call]
        await self.redis.aclose()


def _peer_key(peer_id: str) -> str:
    return PREFIX + "peer:" + peer_id
