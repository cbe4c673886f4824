"""Rate and count limits, sans-I/O: every method takes the time it is called at.

A TokenBucket holds up to `burst` tokens and gains `rate` per second; each
message (or join attempt) takes one. ClientLimits keeps per-address state
shared by all connections of one server.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """`rate` events per second on average, `burst` at once."""

    __slots__ = ("burst", "clock", "last", "rate", "tokens")

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.last = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self.clock()
        elapsed = now - self.last
        self.last = now
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def full(self) -> bool:
        elapsed = self.clock() - self.last
        return self.tokens + elapsed * self.rate >= self.burst


class ClientLimits:
    """Connections and join attempts per client address, for one server."""

    # Keep at most this many idle join buckets before pruning full ones.
    PRUNE_ABOVE = 4096

    def __init__(
        self,
        *,
        max_connections: int,
        joins_per_minute: float,
        join_burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.joins_per_minute = joins_per_minute
        self.join_burst = join_burst
        self.clock = clock
        self.connections: dict[str, int] = {}
        self.join_buckets: dict[str, TokenBucket] = {}

    def connect(self, address: str) -> bool:
        """Count a new connection from `address`; False if it has too many."""
        count = self.connections.get(address, 0)
        if count >= self.max_connections:
            return False
        self.connections[address] = count + 1
        return True

    def disconnect(self, address: str) -> None:
        count = self.connections.get(address, 0) - 1
        if count > 0:
            self.connections[address] = count
        else:
            self.connections.pop(address, None)

    def join_bucket(self, address: str) -> TokenBucket:
        """The join-attempt bucket every connection from `address` shares."""
        bucket = self.join_buckets.get(address)
        if bucket is None:
            if len(self.join_buckets) > self.PRUNE_ABOVE:
                self._prune()
            bucket = TokenBucket(self.joins_per_minute / 60, self.join_burst, self.clock)
            self.join_buckets[address] = bucket
        return bucket

    def _prune(self) -> None:
        # A full bucket holds no history worth keeping.
        for address in [a for a, b in self.join_buckets.items() if b.full()]:
            if address not in self.connections:
                del self.join_buckets[address]
