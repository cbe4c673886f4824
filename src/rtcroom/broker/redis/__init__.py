"""Rooms shared by many rtcroom processes through Redis (redis-py asyncio).

Each process is a node with a random id. Redis holds presence only, all of
it ephemeral (losing it loses no configuration, and nodes write it back):

- `rtcroom:room:<R>`: sorted set of peer ids, scored by a global sequence
  (join order); `rtcroom:rooms`: set of rooms that have members (--max-rooms)
- `rtcroom:peer:<id>`: hash of the peer's room, name, identity, node and the
  digest of its resume key; `rtcroom:resume:<digest>`: the peer id
- `rtcroom:members:<node>`: set of the node's peer ids
- `rtcroom:nodes`: set of nodes; `rtcroom:alive:<node>`: a key with a TTL
  that the node renews (its heartbeat); `rtcroom:reaped:<node>`: a tombstone

Admission is one Lua script, so room capacity holds under concurrent joins
from any number of processes. Frames travel over pub/sub: each node listens
on `rtcroom:node:<node>` for frames relayed to one of its peers, and on
`rtcroom:room:<R>` for the rooms where it has peers. Peers of the same node
are reached directly, without a Redis round trip.

Faults:

- A node that stops heartbeating (kill -9) is reaped by the first other node
  to notice that its alive key expired: one script removes its peers and
  claims the reaping, so their peer-left goes out exactly once, within
  node TTL + reap interval.
- While Redis is unreachable, joins and cross-node frames fail at once with
  Unavailable (the client gets `unavailable`); local peers keep talking.
  When Redis is back the node writes its presence back (sync.lua), so it
  survives a Redis that lost its data; a node that was reaped meanwhile
  ends its connections instead, and their clients join again.
- A client resuming on another node: that node claims the peer in Redis and
  asks the old node over pub/sub for the frames it held (a handoff).

The Lua scripts are the .lua files of this package (scripts.py). Not Redis
Cluster ready: the scripts touch keys they compute.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ...logs import event
from ...protocol import PeerInfo, PeerLeft, Status, encode
from ..interface import LeaveReason, Mailbox, Presence, Resumed, Unavailable
from ..local import Held, LocalMembers
from .scripts import source

log = logging.getLogger("rtcroom.redis")

PREFIX = "rtcroom:"


# Envelope kinds on pub/sub.
FRAME = 0  # `frame` for peer `to`, or for all of `room` but `sender`
HANDOFF = 1  # node `sender` is asked to hand peer `to` over; reply to `node`
HANDED = 2  # the reply: `frame` is an encoded Handoff
KICK = 3  # end peer `to`'s connection for good; `frame` is the reason


class Envelope(msgspec.Struct, array_like=True):
    """A message on pub/sub, from node `node`."""

    node: str
    room: str
    to: str
    sender: str
    frame: str
    kind: int = FRAME
    # For announcements: the number of the change of presence (see seq.lua).
    seq: int = 0


class Handoff(msgspec.Struct, array_like=True):
    """What the old node held for a peer resumed elsewhere."""

    ok: bool
    peers: list[PeerInfo] = []
    frames: list[str] = []


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class RedisBroker(LocalMembers):
    """Presence in Redis, frames over pub/sub; same interface as MemoryBroker."""

    # Another process can resume this one's peers (a handoff).
    shared = True

    def __init__(
        self,
        url: str,
        *,
        node_ttl: float = 10.0,
        timeout: float = 2.0,
        **limits: Any,
    ) -> None:
        """`limits`: max_peers_per_room, max_rooms, resume_grace, held_frames."""
        super().__init__(**limits)
        self.url = url
        # Where, for the log: without the password the URL may carry.
        parts = urlsplit(url)
        self._where = f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
        self.node = secrets.token_hex(8)
        self.node_ttl = node_ttl
        self.timeout = timeout
        # Fail fast: one quick retry (a pooled connection may be stale after
        # Redis restarted), then Unavailable; never minutes of backoff. Not
        # after a timeout: the command may have run (a PUBLISH sent twice is
        # a frame delivered twice), its answer merely late.
        self.redis: aioredis.Redis = aioredis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        self.pubsub = self.redis.pubsub()
        self._scripts = {
            name: self.redis.register_script(source(name))
            for name in ("enter", "exit", "heartbeat", "reap", "sync", "claim", "relay", "update")
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(Envelope)
        # Room subscriptions: how many local members and pending entries
        # need each, and the confirmation of each from Redis.
        self._listeners: dict[str, int] = {}
        self._subscribed: dict[str, asyncio.Future[None]] = {}
        # Redis missed a change (an exit while it was down): write back.
        self._dirty = False
        # Peers that left while Redis was down: the other nodes have not heard.
        self._unannounced: set[tuple[str, str]] = set()
        # Loop time since when the heartbeat has been succeeding (None: failing).
        self._healthy_since: float | None = None
        # Resumes waiting for another node's handoff, by peer id.
        self._handoffs: dict[str, _Pending] = {}
        # The number of a peer's entry or exit, until its announcement goes out.
        self._announcing: dict[str, int] = {}
        # Peers handed to another node recently: late frames follow them there.
        self._moved: dict[str, str] = {}

    async def start(self) -> None:
        channel = PREFIX + "node:" + self.node
        self._subscribed[channel] = asyncio.get_running_loop().create_future()
        await self._call(self.pubsub.subscribe(channel))
        self._tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._heartbeat()),
        ]
        await self._confirmed(channel)
        await self._beat()

    # Calls to Redis ---------------------------------------------------------

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            self._dirty = True
            raise Unavailable("the rooms service is unavailable: try again shortly") from exc

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return await self._call(self._scripts[name](keys=keys, args=args))

    # Subscriptions -----------------------------------------------------------

    async def _listen(self, room: str) -> None:
        """Hold a subscription to `room`'s channel; return once Redis confirmed it."""
        channel = PREFIX + "room:" + room
        self._listeners[room] = self._listeners.get(room, 0) + 1
        try:
            if channel not in self._subscribed:
                self._subscribed[channel] = asyncio.get_running_loop().create_future()
                await self._call(self.pubsub.subscribe(channel))
            await self._confirmed(channel)
        except BaseException:
            await self._unlisten(room)
            raise

    async def _confirmed(self, channel: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(self._subscribed[channel]), self.timeout)
        except TimeoutError as exc:
            raise Unavailable("the rooms service is unavailable: try again shortly") from exc

    async def _unlisten(self, room: str) -> None:
        count = self._listeners.get(room, 0) - 1
        if count > 0:
            self._listeners[room] = count
            return
        self._listeners.pop(room, None)
        channel = PREFIX + "room:" + room
        if self._subscribed.pop(channel, None) is not None:
            await self._unsubscribe(channel)

    async def _unsubscribe(self, channel: str) -> None:
        with contextlib.suppress(Unavailable):
            # If Redis is down, the resubscription on reconnect brings it
            # back; its frames then find no local member, which is harmless.
            await self._call(self.pubsub.unsubscribe(channel))

    async def _read(self) -> None:
        """Deliver what pub/sub brings; ride out Redis outages (redis-py resubscribes)."""
        while True:
            try:
                message = await self.pubsub.get_message(timeout=None)
            except (RedisError, OSError):
                await asyncio.sleep(0.25)
                continue
            except RuntimeError:  # not subscribed to anything (yet)
                await asyncio.sleep(0.1)
                continue
            if message is None:
                continue
            kind = message.get("type")
            if kind == "subscribe":
                waiter = self._subscribed.get(message["channel"])
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
            elif kind == "message":
                try:
                    envelope = self._decoder.decode(message["data"])
                except (msgspec.DecodeError, msgspec.ValidationError):
                    log.warning("ignored a malformed pub/sub message")
                    continue
                self._receive(envelope)

    def _receive(self, envelope: Envelope) -> None:
        if envelope.kind == HANDOFF:
            if envelope.node == self.node:
                pending = self._handoffs.get(envelope.to)
                if pending is not None:
                    pending.echoed = True
            elif envelope.sender == self.node:
                self._hand_over(envelope)
            return
        if envelope.kind == HANDED:
            pending = self._handoffs.get(envelope.to)
            if pending is not None and not pending.reply.done():
                pending.reply.set_result(msgspec.json.decode(envelope.frame, type=Handoff))
            return
        if envelope.kind == KICK:
            self._spawn(self._kick_here(envelope.room, envelope.to, envelope.frame))
            return
        if envelope.node == self.node:
            return  # our own publish, delivered locally already
        room, to, frame = envelope.room, envelope.to, envelope.frame
        if to:
            pending = self._handoffs.get(to)
            if pending is not None:
                pending.held.deliver(frame)
            elif not self._deliver(room, frame, to=to) and to in self._moved:
                self._forward(room, to, frame)
            return
        self._deliver(room, frame, sender=envelope.sender, seq=envelope.seq)
        self._deliver_pending(room, frame, envelope.sender)

    def _deliver_pending(self, room: str, frame: str, sender: str) -> None:
        """Room frames for peers on their way here from another node."""
        for pending in self._handoffs.values():
            if pending.room == room and pending.echoed and pending.peer.id != sender:
                pending.held.deliver(frame)

    def _spawn(self, coroutine: Any) -> None:
        """Run `coroutine` beside the reader, which must never wait on Redis itself."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.append(task)
        task.add_done_callback(self._tasks.remove)

    def _publish_nowait(self, channel: str, envelope: Envelope) -> None:
        async def publish() -> None:
            with contextlib.suppress(Unavailable):
                await self._call(self.redis.publish(channel, self._encode(envelope)))

        self._spawn(publish())

    def _forward(self, room: str, to: str, frame: str) -> None:
        node = self._moved[to]
        self._publish_nowait(PREFIX + "node:" + node, Envelope(self.node, room, to, "", frame))

    def _encode(self, envelope: Envelope) -> str:
        return self._encoder.encode(envelope).decode()

    # Broker interface ----------------------------------------------------

    async def enter(
        self,
        room: str,
        peer: PeerInfo,
        mailbox: Mailbox,
        resume_key: str,
        grants: frozenset[str] = frozenset(),
    ) -> list[PeerInfo]:
        # Subscribed first: frames published once we are in must reach us.
        await self._listen(room)
        try:
            result: list[Any] = await self._script(
                "enter",
                keys=[
                    PREFIX + "room:" + room,
                    PREFIX + "rooms",
                    _peer_key(peer.id),
                    PREFIX + "members:" + self.node,
                    PREFIX + "resume:" + _digest(resume_key),
                ],
                args=[
                    room,
                    peer.id,
                    peer.name,
                    peer.identity or "",
                    self.node,
                    self.max_peers_per_room,
                    self.max_rooms,
                    _digest(resume_key),
                    peer.via or "",
                    " ".join(sorted(grants)),
                    repr(time.time()),
                    _state_text(peer),
                ],
            )
            if result and result[0] == -1:
                raise self._room_full(room)
            if result and result[0] == -2:
                raise self._server_full()
        except BaseException:
            await self._unlisten(room)
            raise
        seq = int(result[0])
        self._add(room, peer, mailbox, resume_key, seq, grants)
        self._announcing[peer.id] = seq  # for its peer-joined, published next
        if result[1]:
            self.events.started(room)
        self.events.joined(room, peer)
        return [_peer(*result[i : i + 5]) for i in range(2, len(result), 5)]

    async def exit(self, room: str, peer_id: str, reason: LeaveReason = LeaveReason.LEFT) -> None:
        member = self._member(room, peer_id)
        if member is None:
            return
        self._remove(room, peer_id)
        await self._unlisten(room)
        try:
            seq, emptied = await self._script("exit", keys=[], args=[peer_id, self.node])
        except Unavailable:
            # Once Redis is back, the heartbeat's sync removes it there and
            # tells the other nodes (and says whether that ended the room).
            self._unannounced.add((room, peer_id))
            self.events.left(room, member.info, reason)
            return
        if seq:
            # Ours to report: the script removed it (after a handoff, the new node does).
            self._announcing[peer_id] = int(seq)  # for its farewell, published next
            self.events.left(room, member.info, reason)
            if emptied:
                self.events.finished(room)

    async def update(self, room: str, peer: PeerInfo) -> None:
        self._update_here(room, peer)
        await self._script("update", keys=[_peer_key(peer.id)], args=[room, _state_text(peer)])

    async def kick(self, room: str, peer_id: str, reason: str) -> bool:
        if await self._kick_here(room, peer_id, reason):
            return True
        envelope = self._encode(Envelope(self.node, room, peer_id, "", reason, KICK))
        return bool(await self._script("relay", keys=[], args=[peer_id, room, envelope]))

    async def list_rooms(self) -> dict[str, list[PeerInfo]]:
        names: list[Any] = await self._call(self.redis.smembers(PREFIX + "rooms"))
        rooms: dict[str, list[PeerInfo]] = {}
        for name in sorted(names):
            peers = await self.others(str(name), "")
            if peers:
                rooms[str(name)] = peers
        return rooms

    async def roster(self) -> dict[str, list[Presence]]:
        names: list[Any] = await self._call(self.redis.smembers(PREFIX + "rooms"))
        rooms: dict[str, list[Presence]] = {}
        for name in sorted(names):
            ids = [
                str(i) for i in await self._call(self.redis.zrange(PREFIX + "room:" + name, 0, -1))
            ]
            async with self.redis.pipeline(transaction=False) as pipe:
                for i in ids:
                    pipe.hmget(
                        _peer_key(i), ["name", "identity", "via", "state", "grants", "since"]
                    )
                infos: list[Any] = await self._call(pipe.execute())
            peers = [
                Presence(
                    _peer(i, n, identity, via, state),
                    frozenset((grants or "").split()),
                    float(since or 0),
                )
                for i, (n, identity, via, state, grants, since) in zip(ids, infos, strict=True)
                # Gone between the two reads: it left.
                if n is not None
            ]
            if peers:
                rooms[str(name)] = peers
        return rooms

    async def count_rooms(self) -> int:
        return int(await self._call(self.redis.scard(PREFIX + "rooms")))

    @property
    def reachable(self) -> bool:
        return self._healthy_since is not None

    def relay_now(self, room: str, to: str, frame: str) -> bool | None:
        if self._deliver(room, frame, to=to):
            return True
        pending = self._handoffs.get(to)
        if pending is not None and pending.room == room:
            pending.held.deliver(frame)
            return True
        return None  # another process's peer, or nobody's: ask Redis

    def publish_now(self, room: str, sender: str, frame: str) -> bool:
        return False  # the other processes hear of it through Redis

    async def relay(self, room: str, to: str, frame: str) -> bool:
        here = self.relay_now(room, to, frame)
        if here is not None:
            return here
        envelope = self._encode(Envelope(self.node, room, to, "", frame))
        return bool(await self._script("relay", keys=[], args=[to, room, envelope]))

    async def publish(self, room: str, sender: str, frame: str) -> None:
        # Right after the sender entered or left, this is its announcement.
        seq = self._announcing.pop(sender, 0)
        self._deliver(room, frame, sender=sender, seq=seq)
        self._deliver_pending(room, frame, sender)
        envelope = Envelope(self.node, room, "", sender, frame, FRAME, seq)
        await self._call(self.redis.publish(PREFIX + "room:" + room, self._encode(envelope)))

    async def others(self, room: str, peer_id: str) -> list[PeerInfo]:
        ids: list[Any] = await self._call(self.redis.zrange(PREFIX + "room:" + room, 0, -1))
        ids = [str(i) for i in ids if i != peer_id]
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hmget(_peer_key(i), ["name", "identity", "via", "state"])
            infos: list[Any] = await self._call(pipe.execute())
        return [
            _peer(i, name, identity, via, state)
            for i, (name, identity, via, state) in zip(ids, infos, strict=True)
            # Gone between the two reads: it left (its peer-left follows).
            if name is not None
        ]

    async def suspend(self, room: str, peer_id: str, farewell: str) -> None:
        try:
            await super().suspend(room, peer_id, farewell)
        except Unavailable:
            # No snapshot of the room to resume with: the peer leaves. The
            # local peers hear it now, the others once Redis is back (sync).
            member = self._member(room, peer_id)
            self._remove(room, peer_id)
            await self._unlisten(room)
            self._deliver(room, farewell, sender=peer_id)
            self._unannounced.add((room, peer_id))
            if member is not None:
                self.events.left(room, member.info, LeaveReason.CLOSED)

    async def resume(self, room: str, key: str, mailbox: Mailbox) -> Resumed | None:
        if key in self.keys:
            return await super().resume(room, key, mailbox)
        claim: list[Any] = await self._script(
            "claim", keys=[PREFIX + "resume:" + _digest(key)], args=[room, self.node]
        )
        if not claim:
            return None
        peer_id, old_node, name, identity = (str(x) for x in claim[:4])
        seq = int(float(claim[4]))
        peer = _peer(peer_id, name, identity, claim[5], claim[6])
        pending = _Pending(room, peer, Held(self.held_frames, []))
        self._handoffs[peer_id] = pending
        try:
            await self._listen(room)
            try:
                # On the room's channel: our own copy (the echo) marks where
                # the old node stops holding room frames and we start.
                request = Envelope(self.node, room, peer_id, old_node, "", HANDOFF)
                await self._call(self.redis.publish(PREFIX + "room:" + room, self._encode(request)))
                handoff = await asyncio.wait_for(pending.reply, self.timeout)
            except (TimeoutError, Unavailable):
                handoff = Handoff(ok=False)
            if not handoff.ok or pending.held.overflowed:
                # The old node is gone, or it lost frames: the peer leaves.
                await self._unlisten(room)
                with contextlib.suppress(Unavailable):
                    seq, emptied = await self._script("exit", keys=[], args=[peer_id, self.node])
                    if seq:
                        # Claimed by us, so ours to report.
                        self.events.left(room, peer, LeaveReason.CLOSED)
                        if emptied:
                            self.events.finished(room)
                    await self._farewell(room, peer_id, int(seq))
                return None
            self._add(room, peer, mailbox, key, seq)
            return Resumed(peer, handoff.peers, handoff.frames + list(pending.held.frames))
        finally:
            del self._handoffs[peer_id]

    def _hand_over(self, request: Envelope) -> None:
        """Another node resumes our peer `request.to`: give it what we held."""
        room, peer_id = request.room, request.to
        member = self._member(room, peer_id)
        if member is None:
            self._reply(request, Handoff(ok=False))
            return
        previous = member.mailbox
        self._remove(room, peer_id)
        self._moved[peer_id] = request.node
        loop = asyncio.get_running_loop()
        loop.call_later(60, self._moved.pop, peer_id, None)

        async def finish() -> None:
            await self._unlisten(room)
            if isinstance(previous, Held):
                if previous.overflowed:
                    handoff = Handoff(ok=False)
                else:
                    handoff = Handoff(ok=True, peers=previous.peers, frames=list(previous.frames))
            else:
                # Still connected here: that connection ends, the new one
                # gets the room as it is now.
                previous.evict()
                try:
                    handoff = Handoff(ok=True, peers=await self.others(room, peer_id))
                except Unavailable:
                    handoff = Handoff(ok=False)
            self._reply(request, handoff)

        self._spawn(finish())

    def _reply(self, request: Envelope, handoff: Handoff) -> None:
        frame = msgspec.json.encode(handoff).decode()
        reply = Envelope(self.node, request.room, request.to, "", frame, HANDED)
        self._publish_nowait(PREFIX + "node:" + request.node, reply)

    # Heartbeat, reaping and write-back ----------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            # Cut off from Redis: try often, to be back soon after it is.
            healthy = self._healthy_since is not None
            await asyncio.sleep(self.node_ttl / 4 if healthy else 0.25)
            try:
                await self._beat()
                await self._reap()
            except Unavailable:
                if self._healthy_since is not None:
                    event(
                        "broker-down",
                        "Redis at %s is unreachable",
                        self._where,
                        level=logging.WARNING,
                        url=self._where,
                    )
                self._healthy_since = None
            except Exception:  # never let presence stop
                log.exception("heartbeat failed")

    async def _beat(self) -> None:
        status = await self._script(
            "heartbeat",
            keys=[
                PREFIX + "nodes",
                PREFIX + "alive:" + self.node,
                PREFIX + "reaped:" + self.node,
            ],
            args=[self.node, int(self.node_ttl * 1000)],
        )
        if self._healthy_since is None:
            self._healthy_since = asyncio.get_running_loop().time()
            if self._tasks:
                event("broker-up", "Redis at %s is reachable", self._where, url=self._where)
        if status == 2:
            log.warning("this node was declared dead while cut off: ending its connections")
            self._lose_all()
        elif status == 1 or self._dirty:
            await self._sync()

    async def _sync(self) -> None:
        args: list[Any] = [self.node]
        for room, entry in self.rooms.items():
            for member in entry.members.values():
                info = member.info
                digest = _digest(member.key)
                args += [room, info.id, info.name, info.identity or "", digest, member.seq]
                args.append(info.via or "")
        self._dirty = False
        unannounced, self._unannounced = self._unannounced, set()
        try:
            removed = await self._script("sync", keys=[], args=args)
        except Unavailable:
            self._unannounced |= unannounced
            raise
        removals = _removals(removed)
        for removal in removals:
            if removal.emptied:
                # Its peers' departures were reported when they left.
                self.events.finished(removal.room)
        gone = {(r.room, r.peer.id, r.seq) for r in removals}
        gone.update((room, peer_id, 0) for room, peer_id in unannounced - {g[:2] for g in gone})
        if gone:
            # Pub/sub keeps nothing: wait until the other nodes, back from the
            # same outage, are listening again before telling them.
            self._spawn(self._announce(gone, delay=1.0))

    async def _announce(self, gone: set[tuple[str, str, int]], delay: float) -> None:
        await asyncio.sleep(delay)
        for room, peer_id, seq in gone:
            try:
                await self._farewell(room, peer_id, seq)
            except Unavailable:
                self._unannounced.add((room, peer_id))
                self._dirty = True

    async def _farewell(self, room: str, peer_id: str, seq: int) -> None:
        """Publish that `peer_id` left `room` (change number `seq`)."""
        if seq:
            self._announcing[peer_id] = seq
        await self.publish(room, peer_id, encode(PeerLeft(id=peer_id)))

    async def _reap(self) -> None:
        """Remove the peers of nodes whose heartbeat stopped, and say they left."""
        loop = asyncio.get_running_loop()
        if self._healthy_since is None or loop.time() - self._healthy_since < self.node_ttl:
            return  # just back: give the others a full TTL to beat again first
        nodes: list[Any] = await self._call(self.redis.smembers(PREFIX + "nodes"))
        nodes = [n for n in nodes if n != self.node]
        if not nodes:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(PREFIX + "alive:" + node)
            alive: list[Any] = await self._call(pipe.execute())
        for node, up in zip(nodes, alive, strict=True):
            if not up:
                removed = await self._script("reap", keys=[], args=[node])
                gone = _removals(removed)
                if gone:
                    log.info("node %s stopped: %d of its peers left", node, len(gone))
                for removal in gone:
                    # This node's script reaped them: ours to report, once.
                    self.events.left(removal.room, removal.peer, LeaveReason.NODE_LOST)
                    await self._farewell(removal.room, removal.peer.id, removal.seq)
                    if removal.emptied:
                        self.events.finished(removal.room)

    def _lose_all(self) -> None:
        """Our presence is gone from Redis: end every local connection."""
        for entry in list(self.rooms.values()):
            for member in list(entry.members.values()):
                member.mailbox.lost()
        self._forget()
        self._listeners.clear()
        for channel in [c for c in self._subscribed if c.startswith(PREFIX + "room:")]:
            del self._subscribed[channel]
            self._spawn(self._unsubscribe(channel))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for room, entry in list(self.rooms.items()):
            for peer_id in list(entry.members):
                with contextlib.suppress(Exception):
                    await self.exit(room, peer_id, LeaveReason.SHUTDOWN)
                    await self.publish(room, peer_id, encode(PeerLeft(id=peer_id)))
        with contextlib.suppress(Exception):
            await self.redis.srem(PREFIX + "nodes", self.node)
            await self.redis.delete(PREFIX + "alive:" + self.node)
        with contextlib.suppress(Exception):
            await self.pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis 8
        await self.redis.aclose()


class _Pending:
    """A resume waiting for the old node's handoff."""

    def __init__(self, room: str, peer: PeerInfo, held: Held) -> None:
        self.room = room
        self.peer = peer
        self.held = held
        # Room frames count only after our handoff request came back to us:
        # the old node held the ones before it.
        self.echoed = False
        self.reply: asyncio.Future[Handoff] = asyncio.get_running_loop().create_future()


@dataclass(frozen=True, slots=True)
class Removal:
    """A peer a script removed: its room, the change's number, whether that emptied the room."""

    room: str
    peer: PeerInfo
    seq: int
    emptied: bool


def _removals(result: list[Any]) -> list[Removal]:
    """What drop_all (drop.lua) returns: six fields per peer, flat."""
    return [
        Removal(
            room=str(result[i]),
            peer=PeerInfo(
                id=str(result[i + 1]), name=str(result[i + 4]), identity=str(result[i + 5]) or None
            ),
            seq=int(result[i + 2]),
            emptied=bool(int(result[i + 3])),
        )
        for i in range(0, len(result), 6)
    ]


_status_decoder: msgspec.json.Decoder[Status] = msgspec.json.Decoder(Status)


def _state_text(peer: PeerInfo) -> str:
    """A peer's participant state as the peer hash keeps it ("" for the default)."""
    return "" if peer.state is None else msgspec.json.encode(peer.state).decode()


def _peer(peer_id: Any, name: Any, identity: Any, via: Any, state: Any) -> PeerInfo:
    """A PeerInfo from the peer hash's fields (None or "" where unset)."""
    return PeerInfo(
        id=str(peer_id),
        name=str(name or ""),
        identity=str(identity) if identity else None,
        via=str(via) if via else None,
        state=_status_decoder.decode(state) if state else None,
    )


def _peer_key(peer_id: str) -> str:
    return PREFIX + "peer:" + peer_id
