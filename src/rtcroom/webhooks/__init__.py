"""Signed webhooks: room and participant events POSTed to the operator's endpoints.

`--webhook URL` (repeatable) with `--webhook-secret whsec_...`. Events:
`room.started`, `participant.joined`, `participant.left` (with its reason),
`room.finished`, each once per occurrence (the broker reports each once,
across every process sharing Redis: broker/interface.py RoomEvents). The
body (docs/operations.md):

    {"id": "evt_...", "type": "participant.left", "timestamp": "2026-12-04T10:00:00.123Z",
     "data": {"room": "team", "peer": {"id": "...", "name": "Ann", "identity": "ann"},
              "reason": "left"}}

signed per Standard Webhooks (signing.py). Each endpoint gets the events in
order, one at a time: a failure or a timeout is retried with backoff (0.5 s
doubling to 30 s) for `--webhook-retry-for` seconds, then given up (counted
and logged) and the next event goes. The queue (queue.py) is bounded; signaling never waits
for it, nor for an endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import secrets
import time
from typing import Any, Final

import msgspec

from ..broker.interface import LeaveReason
from ..logs import event
from ..protocol import PeerInfo
from ..tally import TALLY
from .http import post
from .queue import EventQueue, MemoryQueue, RedisQueue, endpoint_key
from .signing import headers, parse_secret

log = logging.getLogger("rtcroom.webhooks")

EVENTS: Final = ("room.started", "participant.joined", "participant.left", "room.finished")
FIRST_RETRY: Final = 0.5
LAST_RETRY: Final = 30.0
BATCH: Final = 64


def _timestamp(now: float) -> str:
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _peer(peer: PeerInfo) -> dict[str, Any]:
    return {"id": peer.id, "name": peer.name, "identity": peer.identity}


class Webhooks:
    """RoomEvents made into signed HTTP deliveries, for one server (or cluster)."""

    def __init__(
        self,
        urls: tuple[str, ...],
        secret: str,
        *,
        redis: Any = None,
        node: str = "",
        limit: int = 10000,
        retry_for: float = 600.0,
        timeout: float = 5.0,
    ) -> None:
        self.urls = urls
        self.key = parse_secret(secret)
        self.retry_for = retry_for
        self.timeout = timeout
        endpoints = [endpoint_key(url) for url in urls]
        # The lease outlives the longest single attempt, renewed before each:
        # a killed deliverer's endpoints are taken over after this long.
        lease = 2 * timeout + 2
        self.queue: EventQueue = (
            RedisQueue(redis, node, endpoints, limit, lease)
            if redis is not None
            else MemoryQueue(endpoints, limit)
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._encoder = msgspec.json.Encoder()

    # RoomEvents: called by the broker on the event loop; never blocks.

    def started(self, room: str) -> None:
        self._add("room.started", {"room": room})

    def joined(self, room: str, peer: PeerInfo) -> None:
        self._add("participant.joined", {"room": room, "peer": _peer(peer)})

    def left(self, room: str, peer: PeerInfo, reason: LeaveReason) -> None:
        self._add("participant.left", {"room": room, "peer": _peer(peer), "reason": reason.value})

    def finished(self, room: str) -> None:
        self._add("room.finished", {"room": room})

    def _add(self, kind: str, data: dict[str, Any]) -> None:
        body = {
            "id": "evt_" + secrets.token_hex(12),
            "type": kind,
            "timestamp": _timestamp(time.time()),
            "data": data,
        }
        self.queue.add(self._encoder.encode(body))

    # Delivery ------------------------------------------------------------------

    async def start(self) -> None:
        await self.queue.start()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._deliver_forever(url)) for url in self.urls]

    async def close(self, flush: float = 2.0) -> None:
        """Stop delivering, after up to `flush` s for what waits in this process
        (with Redis, what reached it stays there for the others)."""
        deadline = time.monotonic() + flush
        while self.queue.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.queue.close()

    async def _deliver_forever(self, url: str) -> None:
        endpoint = endpoint_key(url)
        while True:
            try:
                if not await self.queue.lead(endpoint):
                    # Another process delivers to this endpoint.
                    await asyncio.sleep(1.0)
                    continue
                for position, body in await self.queue.next(endpoint, BATCH):
                    if not await self._deliver(url, endpoint, body):
                        break  # the lease went to another process: it redelivers
                    if not await self.queue.commit(endpoint, position):
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis away: try again in a moment; the events wait there.
                log.warning("webhooks to %s wait: %s", url, exc)
                await asyncio.sleep(1.0)

    async def _deliver(self, url: str, endpoint: str, body: bytes) -> bool:
        """Deliver `body` until accepted or given up; False if the lease was lost meanwhile."""
        message_id = msgspec.json.decode(body)["id"]
        deadline = time.monotonic() + self.retry_for
        delay = FIRST_RETRY
        attempt = 0
        while True:
            attempt += 1
            try:
                status = await post(
                    url, body, headers(self.key, message_id, int(time.time()), body), self.timeout
                )
                problem = None if 200 <= status < 300 else f"HTTP {status}"
            except (OSError, TimeoutError) as exc:
                problem = str(exc) or type(exc).__name__
            if problem is None:
                TALLY.webhooks["delivered"] += 1
                return True
            TALLY.webhooks["failed-attempt"] += 1
            if time.monotonic() + delay > deadline:
                TALLY.webhooks["given-up"] += 1
                event(
                    "webhook-failed",
                    "webhook %s to %s given up after %d attempts: %s",
                    message_id,
                    url,
                    attempt,
                    problem,
                    level=logging.WARNING,
                    url=url,
                    id=message_id,
                    attempts=attempt,
                    error=problem,
                )
                return True
            log.info(
                "webhook %s to %s failed (%s): again in %.1f s", message_id, url, problem, delay
            )
            if not await self._wait(endpoint, delay * random.uniform(0.8, 1.2)):
                return False
            delay = min(delay * 2, LAST_RETRY)

    async def _wait(self, endpoint: str, seconds: float) -> bool:
        """Sleep, keeping the lease; False if it was lost."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 2.0))
            if not await self.queue.lead(endpoint):
                return False
        return True
