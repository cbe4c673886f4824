"""What the guards cost per message in the sans-I/O core.

Feeds the same signal frame to three joined Sessions, side by side in one
run: no guards (the floor), the default per-connection rate limit, and a
viewer token (the rate limit plus the grant check, which parses the data).
Prints microseconds per message and the ratios to the floor.

    python bench/guard_cost.py [--messages 200000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import timeit

from rtcroom.auth import Authenticator, mint_token
from rtcroom.limits import TokenBucket
from rtcroom.session import Session

FRAME = (
    '{"type":"signal","to":"p2","data":{"candidate":{"candidate":'
    '"candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host","sdpMid":"0","sdpMLineIndex":0}}}'
)
SECRET = "bench-secret-that-is-long-enough-for-hs256"


def joined(token: str | None = None, **options: object) -> Session:
    session = Session(peer_id_factory=lambda: "p1", **options)  # type: ignore[arg-type]
    extra = f',"token":"{token}"' if token else ""
    session.receive('{"type":"join","room":"r","name":"a"' + extra + "}")
    session.admitted([])
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    unlimited = 1e12  # the bucket never runs dry: we measure its bookkeeping
    sessions = {
        "no guards": joined(),
        "rate limit": joined(rate=TokenBucket(unlimited, unlimited)),
        "rate limit + viewer grants": joined(
            mint_token(SECRET, room="r", identity="u"),
            rate=TokenBucket(unlimited, unlimited),
            auth=Authenticator(SECRET),
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):  # interleaved, so noise hits all alike
        for name, session in sessions.items():
            elapsed = timeit.timeit(lambda s=session: s.receive(FRAME), number=args.messages)
            times[name].append(elapsed / args.messages * 1e6)
    floor = statistics.median(times["no guards"])
    print("| session | us per message (median) | ratio to no guards |")
    print("|---|---|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| {name} | {median:.2f} | {median / floor:.2f} |")


if __name__ == "__main__":
    main()
