"""Paired A/B of rtcroom's relay: does this working tree relay as fast as revision REV?

The shared machine's speed drifts by tens of percent between runs (compare
two runs of bench/signaling.py), so a change to the relay path is judged
here, not by its absolute figures: REV (checked out into a temporary git
worktree) and the working tree run side by side, each round measures both
(the order alternating) with signaling.py's closed-loop workload, and the
result is the median of the per-round ratios with a bootstrap 90 % interval.

    python bench/relay_ab.py 77b1a37 --rounds 12

Both run `rtcroom serve` with signaling.py's raised thresholds on CPU 0;
the load generator runs on CPU 1. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from signaling import RAISED, Kind, Server, loadgen

ROOT = Path(__file__).resolve().parent.parent


def command(source: Path) -> list[str]:
    """`rtcroom serve` from the sources in `source` (a src/ directory)."""
    boot = f"import sys; sys.path.insert(0, {str(source)!r}); from rtcroom.cli import main; "
    boot += "sys.exit(main())"
    return [sys.executable, "-c", boot, "serve", "--port", "{port}", *RAISED]


def interval(ratios: list[float], rounds: int = 2000) -> tuple[float, float]:
    medians = sorted(
        statistics.median(random.choices(ratios, k=len(ratios))) for _ in range(rounds)
    )
    return medians[int(0.05 * rounds)], medians[int(0.95 * rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("revision", help="the git revision to compare with (A)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pairs", type=int, default=20)
    args = parser.parse_args()

    worktree = Path(tempfile.mkdtemp(prefix="rtcroom-ab-"))
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(worktree), args.revision],
        check=True,
        capture_output=True,
    )
    try:
        a = Server(Kind(f"A {args.revision}", "v1", command(worktree / "src")))
        b = Server(Kind("B working tree", "v1", command(ROOT / "src")))
        rates: dict[str, list[float]] = {"A": [], "B": []}
        cpu: dict[str, list[float]] = {"A": [], "B": []}
        try:
            for round_ in range(args.rounds):
                order = [("A", a), ("B", b)] if round_ % 2 == 0 else [("B", b), ("A", a)]
                for name, server in order:
                    before = server.cpu_seconds()
                    out = loadgen(
                        server,
                        "closed",
                        120 + 3 * args.seconds,
                        pairs=args.pairs,
                        seconds=args.seconds,
                        warmup=1.0,
                    )
                    rates[name].append(out["rate"])
                    used = server.cpu_seconds() - before
                    cpu[name].append(used / max(out["messages"], 1) * 1e6)
                print(f"round {round_ + 1}: A {rates['A'][-1]:,.0f}  B {rates['B'][-1]:,.0f}")
        finally:
            a.stop()
            b.stop()
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
            capture_output=True,
        )
        shutil.rmtree(worktree, ignore_errors=True)

    ratios = [rb / ra for ra, rb in zip(rates["A"], rates["B"], strict=True)]
    cpu_ratios = [cb / ca for ca, cb in zip(cpu["A"], cpu["B"], strict=True)]
    low, high = interval(ratios)
    cpu_low, cpu_high = interval(cpu_ratios)
    print()
    print("| | A (" + args.revision + ") | B (working tree) | B / A, median of rounds | 90 % |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| messages/s | {statistics.median(rates['A']):,.0f} | "
        f"{statistics.median(rates['B']):,.0f} | {statistics.median(ratios):.3f} | "
        f"{low:.3f} to {high:.3f} |"
    )
    print(
        f"| server CPU per message | {statistics.median(cpu['A']):.1f} µs | "
        f"{statistics.median(cpu['B']):.1f} µs | {statistics.median(cpu_ratios):.3f} | "
        f"{cpu_low:.3f} to {cpu_high:.3f} |"
    )


if __name__ == "__main__":
    main()
