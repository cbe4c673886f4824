"""Prometheus metrics (--metrics-port): what an operator graphs and alerts on.

Served on a listener of their own (never the public port) by
prometheus-client. Counting happens in tally.py as plain integers; a
sampler copies it into the metrics every `interval` seconds, with the
gauges read from the live objects, so the relay path pays nothing for them.

With --workers N each worker samples its own figures into files of
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR, made by the
parent), and the parent serves their sum: counters and connections or peers
summed over the live workers, rooms as the cluster sees them (the highest
figure of any worker), the broker up only if every worker reaches it.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter as Tally
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    start_http_server,
)

from .tally import TALLY

if TYPE_CHECKING:
    from .admission import Admission
    from .broker import Broker

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Seconds a frame spends in the server: from its arrival to its queueing for
# every recipient of this process (or its hand-off to Redis).
FRAME_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR) or None


class Metrics:
    """This process's metrics, refreshed by sample()."""

    def __init__(self, sfu: bool = False) -> None:
        # In multiprocess mode the values live in files (the parent sums
        # them): no registry here. Otherwise one of this server's own, so
        # that several servers in one process (tests) do not collide.
        shared = multiprocess_dir() is not None
        self.registry = None if shared else CollectorRegistry()
        r: dict[str, Any] = {"registry": self.registry}
        self.connections = Gauge(
            "rtcroom_connections",
            "Open client connections (WebSocket and Socket.IO)",
            multiprocess_mode="livesum",
            **r,
        )
        self.peers = Gauge(
            "rtcroom_peers",
            "Peers in rooms, held by this server"
            + (", by how their room is served (mesh or sfu)" if sfu else ""),
            ["mode"] if sfu else [],
            multiprocess_mode="livesum",
            **r,
        )
        self.rooms = Gauge(
            "rtcroom_rooms",
            "Rooms with at least one peer, across the processes sharing them",
            multiprocess_mode="livemax",
            **r,
        )
        self.broker_up = Gauge(
            "rtcroom_broker_up",
            "1 if the broker (Redis) is reachable, else 0",
            multiprocess_mode="livemin",
            **r,
        )
        self.joins = Counter("rtcroom_joins", "Peers admitted to a room (resumes not counted)", **r)
        self.frames = Counter("rtcroom_frames", "Frames received from clients", **r)
        self.relayed = Counter(
            "rtcroom_frames_relayed",
            "Frames relayed to peers: signals, broadcasts, join and leave announcements",
            **r,
        )
        self.errors = Counter("rtcroom_errors", "Error frames sent to clients", ["code"], **r)
        self.refusals = Counter(
            "rtcroom_refusals",
            "Clients turned away at the door or limited: origin, connections (per "
            "address), joins (per address), rate (messages per connection)",
            ["reason"],
            **r,
        )
        self.frame_seconds = Histogram(
            "rtcroom_frame_seconds",
            "Time a frame spends in the server, arrival to queued for its recipients "
            "(one frame in 32 measured)",
            buckets=FRAME_BUCKETS, **r,
        )  # fmt: skip
        self.webhooks = Counter(
            "rtcroom_webhooks",
            "Webhook deliveries by outcome: delivered, failed-attempt (retried), given-up "
            "(after --webhook-retry-for), overflow (dropped: the queue was full)",
            ["outcome"],
            **r,
        )
        self.sfu = sfu
        # What was copied from TALLY so far.
        self._seen: dict[str, int] = {"joins": 0, "frames": 0, "relayed": 0}
        self._errors: Tally[str] = Tally()
        self._refusals: Tally[str] = Tally()
        self._webhooks: Tally[str] = Tally()

    def sample(self, admission: Admission, broker: Broker, rooms: int) -> None:
        """Copy what TALLY counted since the last sample, and the gauges' values."""
        tally = TALLY
        for name, counter in (("joins", self.joins), ("frames", self.frames),
                              ("relayed", self.relayed)):  # fmt: skip
            value = getattr(tally, name)
            if value > self._seen[name]:
                counter.inc(value - self._seen[name])
            self._seen[name] = value
        for totals, seen, counter, label in (
            (tally.errors, self._errors, self.errors, "code"),
            (tally.refusals, self._refusals, self.refusals, "reason"),
            (tally.webhooks, self._webhooks, self.webhooks, "outcome"),
        ):
            for key, value in list(totals.items()):
                if value > seen[key]:
                    counter.labels(**{label: key}).inc(value - seen[key])
                seen[key] = value
        timings, tally.frame_seconds = tally.frame_seconds, []
        for seconds in timings:
            self.frame_seconds.observe(seconds)
        self.connections.set(len(admission.connections))
        held = sum(len(room.members) for room in getattr(broker, "rooms", {}).values())
        if self.sfu:
            in_sfu = len(admission.sfu.peers) if admission.sfu is not None else 0
            self.peers.labels(mode="sfu").set(in_sfu)
            self.peers.labels(mode="mesh").set(max(0, held - in_sfu))
        else:
            self.peers.set(held)
        self.rooms.set(rooms)
        self.broker_up.set(1 if broker.reachable else 0)


async def sample_forever(
    metrics: Metrics, admission: Admission, broker: Broker, interval: float
) -> None:
    """Sample every `interval` s until cancelled."""
    while True:
        try:
            rooms = await broker.count_rooms()
        except Exception:
            rooms = 0
        metrics.sample(admission, broker, rooms)
        await asyncio.sleep(interval)


def serve(host: str, port: int, registry: CollectorRegistry | None) -> Any:
    """Serve /metrics on host:port in a thread; `registry` None: the workers' sum.

    Returns the server (its shutdown() stops it).
    """
    if registry is None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call,unused-ignore]
    server, thread = start_http_server(port, host, registry)
    return _Listener(server, thread)


class _Listener:
    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self.server, self.thread = server, thread

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def worker_gone(pid: int) -> None:
    """A worker exited: its gauges no longer count (its counters still do)."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call,unused-ignore]
