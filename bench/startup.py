"""How long rtcroom's commands keep a person waiting, against another commit's, in one run.

    python bench/startup.py [--base COMMIT] [--runs N]

Whole-process timings, each the median of N runs (interleaved, so that the
shared machine's load falls on both alike): `rtcroom --help`, `rtcroom token`,
and `rtcroom serve` from launch until /healthz answers 200. The other commit
runs from a `git worktree` of this checkout with the same Python and packages
(PYTHONPATH=its src/). Prints a table, and with --out writes it into
docs/benchmarks.md between its markers.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- startup: begin (written by bench/startup.py) -->"
END = "<!-- startup: end -->"
SECRET = "a-benchmark-secret-of-enough-length-0123"
# The targets on a quiet machine (seconds).
TARGETS = {"rtcroom --help": 0.25, "rtcroom token": 0.25, "rtcroom serve to /healthz": 0.6}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(src: Path, *args: str) -> list[str]:
    """`rtcroom ARGS` with the rtcroom of `src` (the `rtcroom` script is `rtcroom.cli:main`)."""
    return [
        sys.executable,
        "-c",
        "import sys; from rtcroom.cli import main; sys.exit(main())",
        *args,
    ]


def environment(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "RTCROOM_AUTH_SECRET": SECRET}


def time_command(src: Path, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(command(src, *args), env=environment(src), stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def time_serve(src: Path) -> float:
    port = free_port()
    env = {k: v for k, v in environment(src).items() if k != "RTCROOM_AUTH_SECRET"}
    started = time.perf_counter()
    process = subprocess.Popen(
        command(src, "serve", "--port", str(port), "--log-level", "warning"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"rtcroom serve of {src} exited") from None
                time.sleep(0.002)
    finally:
        process.terminate()
        process.wait()


CASES: dict[str, Callable[[Path], float]] = {
    "rtcroom --help": lambda src: time_command(src, "--help"),
    "rtcroom token": lambda src: time_command(src, "token", "--room", "r", "--identity", "a"),
    "rtcroom serve to /healthz": time_serve,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="4c1eda5", help="the commit to compare with (4c1eda5)")
    parser.add_argument("--runs", type=int, default=15, help="runs of each case (15)")
    parser.add_argument("--out", type=Path, help="write the table into this file's section")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base],
            check=True,
            capture_output=True,
        )
        try:
            sources = {args.base: base / "src", "this checkout": ROOT / "src"}
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.runs):
                for case, measure in CASES.items():
                    for label, src in sources.items():
                        times.setdefault((case, label), []).append(measure(src))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True
            )
    lines = [
        BEGIN,
        "",
        f"`python bench/startup.py --base {args.base} --runs {args.runs}` "
        f"({time.strftime('%Y-%m-%d')}): medians of {args.runs} interleaved runs, seconds, "
        f"load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        f"| command | {args.base} | this checkout | ratio | target (quiet machine) |",
        "|---|---:|---:|---:|---|",
    ]
    for case, target in TARGETS.items():
        before = statistics.median(times[(case, args.base)])
        after = statistics.median(times[(case, "this checkout")])
        met = "met" if after <= target else "**not met**"
        lines.append(
            f"| `{case}` | {before:.3f} | {after:.3f} | {after / before:.2f}x | "
            f"≤ {target} s, {met} |"
        )
    lines += ["", END]
    section = "\n".join(lines)
    print(section)
    if args.out:
        text = args.out.read_text()
        if BEGIN in text:
            head, rest = text.split(BEGIN, 1)
            text = head + section + rest.split(END, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n## Start-up\n\n" + section + "\n"
        args.out.write_text(text)


if __name__ == "__main__":
    main()
