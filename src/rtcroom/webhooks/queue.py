"""Where events wait for delivery: this process's memory, or a Redis stream shared by a cluster.

Both keep every event in one order, an endpoint's position in it (its
cursor), and who delivers to that endpoint now (its lease). With Redis, the
stream is the cluster's single order, the cursors and leases live beside it:
one process at a time delivers to each endpoint, a killed one's lease expires
and another carries on from the cursor, so each event reaches each endpoint
once and in order. Adding never waits for Redis: events go through a local
bounded buffer, forwarded by a task of their own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
from typing import Any, Final, Protocol

from ..tally import TALLY

log = logging.getLogger("rtcroom.webhooks")

PREFIX: Final = "rtcroom:webhooks:"
# Seconds between looks at the stream for events other processes added.
POLL: Final = 0.25


def endpoint_key(url: str) -> str:
    """A short stable name for an endpoint's cursor and lease."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class EventQueue(Protocol):
    """The events in delivery order, with each endpoint's cursor and lease."""

    def add(self, body: bytes) -> None:
        """Queue an event; never blocks (overflow is counted and logged)."""
        ...

    async def lead(self, endpoint: str) -> bool:
        """Take or keep the lease of `endpoint`: True if this process delivers to it."""
        ...

    async def next(self, endpoint: str, count: int) -> list[tuple[str, bytes]]:
        """Up to `count` events after `endpoint`'s cursor: (position, body); waits
        a moment for one when there is none (an empty list then)."""
        ...

    async def commit(self, endpoint: str, position: str) -> bool:
        """Move `endpoint`'s cursor past `position`; False if the lease was lost."""
        ...

    def pending(self) -> int:
        """Events only this process holds (they are lost if it stops now)."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


def _overflow(size: int) -> None:
    TALLY.webhooks["overflow"] += 1
    # One line per thousand, not one per event when an endpoint is down for long.
    if TALLY.webhooks["overflow"] % 1000 == 1:
        from ..logs import event

        event(
            "webhook-overflow",
            "webhook queue full (%d events): dropping new events",
            size,
            level=logging.WARNING,
            dropped=TALLY.webhooks["overflow"],
        )


class MemoryQueue:
    """One process: a bounded list, gone when the process stops."""

    def __init__(self, endpoints: list[str], limit: int) -> None:
        self.limit = limit
        self._events: collections.deque[tuple[int, bytes]] = collections.deque()
        self._next = 1
        self._cursors = dict.fromkeys(endpoints, 0)
        self._added = asyncio.Event()

    def add(self, body: bytes) -> None:
        if len(self._events) >= self.limit:
            _overflow(self.limit)
            return
        self._events.append((self._next, body))
        self._next += 1
        self._added.set()

    def pending(self) -> int:
        return len(self._events)

    async def lead(self, endpoint: str) -> bool:
        return True

    async def next(self, endpoint: str, count: int) -> list[tuple[str, bytes]]:
        cursor = self._cursors[endpoint]
        found = [(str(n), body) for n, body in self._events if n > cursor][:count]
        if not found:
            self._added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._added.wait(), POLL * 4)
        return found

    async def commit(self, endpoint: str, position: str) -> bool:
        self._cursors[endpoint] = int(position)
        low = min(self._cursors.values())
        while self._events and self._events[0][0] <= low:
            self._events.popleft()
        return True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


# KEYS: the stream. ARGV: the bound, the event. The entry's id, or 0 when full.
_ADD = """
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
return redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
"""

# KEYS: the lease. ARGV: this node, milliseconds. 1 if this node holds it now.
_LEAD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: the lease, the cursor, the stream, then every endpoint's cursor.
# ARGV: this node, the position. Moves the cursor if this node holds the
# lease, and trims the stream of what every endpoint has had.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local low_ms, low_seq = nil, nil
for i = 4, #KEYS do
  local ms, seq = parse(redis.call('GET', KEYS[i]) or '0-0')
  if low_ms == nil or ms < low_ms or (ms == low_ms and seq < low_seq) then
    low_ms, low_seq = ms, seq
  end
end
redis.call('XTRIM', KEYS[3], 'MINID', string.format('%.0f-%d', low_ms, low_seq))
return 1
"""


class RedisQueue:
    """A cluster: one Redis stream, each endpoint's cursor and lease beside it.

    Every process of the cluster must name the same endpoints (the stream is
    trimmed of what all of them have had).
    """

    def __init__(
        self, redis: Any, node: str, endpoints: list[str], limit: int, lease: float
    ) -> None:
        self.redis = redis
        self.node = node
        self.limit = limit
        self.lease_ms = int(lease * 1000)
        self.stream = PREFIX + "stream"
        self._cursor_keys = [PREFIX + "cursor:" + e for e in endpoints]
        # Events not yet in Redis (it may be down): bounded like the stream.
        self._outbox: collections.deque[bytes] = collections.deque()
        self._waiting = asyncio.Event()
        self._added = asyncio.Event()
        self._forwarder: asyncio.Task[None] | None = None
        self._add = redis.register_script(_ADD)
        self._lead = redis.register_script(_LEAD)
        self._commit = redis.register_script(_COMMIT)

    def add(self, body: bytes) -> None:
        if len(self._outbox) >= self.limit:
            _overflow(self.limit)
            return
        self._outbox.append(body)
        self._waiting.set()

    def pending(self) -> int:
        return len(self._outbox)

    async def start(self) -> None:
        self._forwarder = asyncio.get_running_loop().create_task(self._forward())

    async def _forward(self) -> None:
        """Move the outbox into the stream, in order; wait and retry while Redis is away."""
        outbox = self._outbox
        while True:
            await self._waiting.wait()
            self._waiting.clear()
            while outbox:
                body = outbox[0]
                try:
                    added = await self._add(keys=[self.stream], args=[self.limit, body])
                except Exception as exc:
                    log.warning("webhook events wait for Redis: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                outbox.popleft()
                if added == 0:
                    _overflow(self.limit)
                self._added.set()

    async def lead(self, endpoint: str) -> bool:
        return bool(
            await self._lead(keys=[PREFIX + "lease:" + endpoint], args=[self.node, self.lease_ms])
        )

    async def next(self, endpoint: str, count: int) -> list[tuple[str, bytes]]:
        cursor = await self.redis.get(PREFIX + "cursor:" + endpoint) or "0-0"
        entries = await self.redis.xrange(self.stream, f"({cursor}", "+", count=count)
        if not entries:
            # Our own events wake us at once, other processes' within POLL.
            self._added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._added.wait(), POLL)
        return [(str(position), _bytes(fields["e"])) for position, fields in entries]

    async def commit(self, endpoint: str, position: str) -> bool:
        keys = [PREFIX + "lease:" + endpoint, PREFIX + "cursor:" + endpoint, self.stream]
        return bool(await self._commit(keys=keys + self._cursor_keys, args=[self.node, position]))

    async def close(self) -> None:
        if self._forwarder is not None:
            self._forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._forwarder


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
