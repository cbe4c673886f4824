"""What this process counts as it serves: plain integers, cheap on the relay path.

The core and the doors add to TALLY as things happen (an error frame built,
a join admitted, a frame relayed, a refusal); metrics.py reads it when it
samples, so counting costs an integer addition whether metrics are on or
not. Gauges (connections, peers, rooms) are not counted here: they are read
from the live objects when sampled.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

# One frame in SAMPLE_EVERY has its time in the server measured.
SAMPLE_EVERY = 32
# At most this many measured times wait for the next sample; later ones are dropped.
MAX_TIMINGS = 4096


@dataclass(slots=True)
class Tally:
    # Frames received from clients (every kind).
    frames: int = 0
    # Frames handed to the broker for other peers: signals, broadcasts, announcements.
    relayed: int = 0
    # Peers admitted to a room (resumes not counted).
    joins: int = 0
    # Error frames built for clients, by code (protocol.error).
    errors: Counter[str] = field(default_factory=Counter)
    # Clients turned away, by reason: origin, connections, joins, rate.
    refusals: Counter[str] = field(default_factory=Counter)
    # Webhook events: delivered, failed-attempt, given-up, overflow (webhooks/).
    webhooks: Counter[str] = field(default_factory=Counter)
    # Seconds a sampled frame spent in the server: received to queued for its recipients.
    frame_seconds: list[float] = field(default_factory=list)

    def timed(self, seconds: float) -> None:
        if len(self.frame_seconds) < MAX_TIMINGS:
            self.frame_seconds.append(seconds)


TALLY = Tally()
