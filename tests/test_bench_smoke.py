"""The benchmarks run in seconds here, so they cannot rot; their figures are in docs/benchmarks.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.browser


def run_bench(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def ratio(output: str, label: str) -> float:
    match = re.search(re.escape(label) + r" \(medians\): (\d+\.\d+)", output)
    assert match, output
    return float(match.group(1))


def test_first_frame_benchmark_smoke() -> None:
    output = run_bench("first_frame.py", "--runs", "1")
    assert ratio(output, "ratio rtcroom / floor") > 0


def test_file_transfer_benchmark_smoke() -> None:
    output = run_bench("file_transfer.py", "--size-mb", "4", "--runs", "1")
    assert ratio(output, "ratio rtcroom / floor") > 0


def test_python_peers_benchmark_smoke() -> None:
    output = run_bench(
        "python_peers.py",
        *("--size-mb", "2", "--runs", "1", "--echo-seconds", "1", "--participants", "1"),
    )
    assert ratio(output, "ratio rtcroom.client / bare aiortc") > 0
    assert re.search(r"\| 1 \| \d+\.\d+ \| \d+\.\d+ \| \d+\.\d+ \|", output), output


def test_turn_relay_benchmark_smoke() -> None:
    output = run_bench("turn_relay.py", "--runs", "1", "--size-mb", "1")
    assert re.search(r"throughput through coturn / direct: \d+\.\d+", output), output


def test_guard_cost_benchmark_smoke() -> None:
    output = run_bench("guard_cost.py", "--messages", "1000", "--rounds", "1")
    assert re.search(r"\| rate limit \+ viewer grants \| \d+\.\d+ \| \d+\.\d+ \|", output), output


def test_scale_out_benchmark_smoke() -> None:
    output = run_bench(
        "scale_out.py",
        *("--pairs", "4", "--seconds", "0.5", "--rounds", "1"),
        *("--round-trips", "50", "--memory-peers", "20"),
    )
    assert re.search(r"\| --workers 2, Redis broker \| [\d,]+ \| \d+\.\d+ \| [\d.]+ us \|", output)
    assert re.search(r"A cross-process hop adds -?\d+ us", output), output
    assert re.search(r"Redis memory: [\d,]+ bytes per joined peer", output), output


def test_socketio_relay_benchmark_smoke() -> None:
    output = run_bench("socketio_relay.py", "--pairs", "2", "--seconds", "1", "--rounds", "1")
    assert ratio(output, "ratio rtcroom / tutorials' python-socketio") > 0
    assert re.search(r"\| rtcroom serve \| [\d,]+ \| \d+\.\d+ \|", output), output
