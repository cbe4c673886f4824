"""The benchmarks run in seconds here, so they cannot rot; their figures are in docs/benchmarks.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.browser


def test_first_frame_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "first_frame.py"), "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"ratio rtcroom / floor \(medians\): (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 0


def test_file_transfer_benchmark_smoke() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "file_transfer.py"), "--size-mb", "4", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"ratio rtcroom / floor \(medians\): (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 0


def test_python_peers_benchmark_smoke() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "python_peers.py"),
            *("--size-mb", "2", "--runs", "1", "--echo-seconds", "1", "--participants", "1"),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    match = re.search(r"ratio rtcroom.client / bare aiortc \(medians\): (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) > 0
    assert re.search(r"\| 1 \| \d+\.\d+ \| \d+\.\d+ \| \d+\.\d+ \|", result.stdout), result.stdout
