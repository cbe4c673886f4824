"""The benchmarks run in seconds here, so they cannot rot; their figures are in docs/benchmarks.md."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rtcroom.webapp import WEB_ROOT

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
    output = run_bench("first_frame.py", "--runs", "1", "--breakdown")
    assert ratio(output, "ratio rtcroom / floor") > 0
    assert ratio(output, "ratio rtcroom from Join / floor") > 0
    assert ratio(output, "ratio client library alone / floor") > 0
    assert ratio(output, "ratio room page, library script / floor") > 0
    assert ratio(output, "ratio rtcroom / floor with the same start bitrate") > 0


def test_first_frame_ab_smoke(tmp_path: Path) -> None:
    # A variant of the web assets whose app module reports a first frame at
    # once: its row shows 1 ms only if its page and its module were served.
    variant = tmp_path / "web"
    shutil.copytree(WEB_ROOT, variant)
    app = variant / "app.js"
    app.write_text('console.log("first-frame 1");\n' + app.read_text())
    output = run_bench(
        "first_frame_ab.py",
        *("--rounds", "1", "--variant", f"instant={variant}", "app=/r/bench?name=guest&prejoin=0"),
        "no controls=/r/bench?name=guest&prejoin=0|.controls{display:none!important}",
        "instant=/r/bench?name=guest&prejoin=0&variant=instant",
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in output.splitlines()}
    assert re.search(r"\| app \| \d+ \| \d+\.\d\d \| - \|", rows["app"]), output
    assert re.search(r"[+-]\d+\.\d ms \(", rows["no controls"]), output
    assert re.match(r"\| instant \| 1 \| 0\.\d\d \| -\d+\.\d ms", rows["instant"]), output
    assert "floor" in rows, output


def test_first_frame_marks_smoke() -> None:
    output = run_bench("first_frame.py", "--runs", "1", "--breakdown", "--marks")
    rows = {line.split(" | ")[0].lstrip("| "): line for line in output.splitlines()}
    # Every case reaches its first frame; only the app and the library pages
    # join a room, so only they send an offer (not the two floors).
    assert re.fullmatch(r"\| first remote frame( \| \d+){5} \|", rows["first remote frame"])
    assert re.fullmatch(r"\| offer sent \| \d+ \| - \| \d+ \| \d+ \| - \|", rows["offer sent"])
    # The host's steps, on the guest's clock: after the guest's offer.
    answer = rows["host: answer sent"]
    assert re.fullmatch(r"\| host: answer sent \| \d+ \| - \| \d+ \| \d+ \| - \|", answer)
    assert int(answer.split(" | ")[1]) > int(rows["offer sent"].split(" | ")[1])
    assert re.fullmatch(r"\| first video packets( \| \d+){5} \|", rows["first video packets"])


def test_file_transfer_benchmark_smoke() -> None:
    output = run_bench("file_transfer.py", "--size-mb", "4", "--runs", "1")
    for case in ("rtcroom, no camera", "rtcroom in a call", "raw channel, two pages"):
        assert ratio(output, f"ratio {case} / floor") > 0
    assert re.search(r"largest renderer during a transfer without camera: [1-9]\d* MiB", output)


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


def test_signaling_suite_smoke(tmp_path: Path) -> None:
    """The whole suite, tiny: every server, every workload, the report and its charts."""
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nWhat was there stays.\n")
    run_bench("signaling.py", "--smoke", "--out", str(out))
    text = out.read_text()
    assert "What was there stays." in text
    for server in (
        "rtcroom",
        "rtcroom /socket.io/",
        "Node socket.io",
        "python-socketio (aiohttp)",
        "Flask-SocketIO (gevent)",
        "Node ws floor",
        "rtcroom + metrics, JSON logs",
        "rtcroom + dead webhook",
    ):
        assert re.search(rf"\| {re.escape(server)} \| [\d,]+ \| \d+\.\d+ \|", text), server
    # Operations side by side with plain rtcroom: relay and churn, each with a ratio.
    for variant in ("rtcroom + metrics, JSON logs", "rtcroom + dead webhook"):
        assert re.search(
            rf"\| relay throughput, {re.escape(variant)} / rtcroom \| .* \| \d+\.\d+x, ", text
        )
        assert re.search(
            rf"\| join p99 under churn, {re.escape(variant)} / rtcroom \| .* \| \d+\.\d+x, ", text
        )
        assert re.search(
            rf"\| {re.escape(variant)} \| [\d,]+ \| [\d.]+ ms \| [\d.]+ ms \| -?[\d.]+ MB \| none \|",
            text,
        ), variant
    for server in ("rtcroom", "Node socket.io", "Flask-SocketIO (gevent)", "Node ws floor"):
        # Open loop, idle connections and churn, each with a figure and no errors.
        # (A server far past saturation may deliver nothing within the grace: "-".)
        assert re.search(
            rf"\| {re.escape(server)} \| [\d,]+ \| \d+% \| (?:[\d.]+ ms|-) \|", text
        ), server
        assert re.search(
            rf"\| {re.escape(server)} \| 40 \| [\d.]+ s \| [\d,]+ \| [\d.]+ KB \|", text
        ), server
        assert re.search(
            rf"\| {re.escape(server)} \| [\d,]+ \| [\d.]+ ms \| [\d.]+ ms \| -?[\d.]+ MB \| none \|",
            text,
        ), server
    assert re.search(r"\| rtcroom \| [\d,]+ \| 100% \|", text), text
    assert "Runs that failed" not in text, text
    assert re.search(r"\| relay throughput / Node's socket.io \| ≥ 1.2x \| \d+\.\d+x", text), text
    for chart in ("throughput", "latency", "memory"):
        assert (tmp_path / "img" / f"signaling-{chart}.png").stat().st_size > 10_000
    # Run twice, the section is replaced, not repeated.
    run_bench("signaling.py", "--smoke", "--out", str(out), "--only", "closed")
    assert out.read_text().count("## Signaling servers") == 1


def test_sfu_benchmark_smoke(tmp_path: Path) -> None:
    """bench/sfu.py at N = 2: the mesh and the SFU measured, the report and its charts."""
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n")
    output = run_bench("sfu.py", "--smoke", "--out", str(out))
    for mode in ("mesh", "sfu"):
        # uplink, page CPU, (Janus), fps, first frame: all measured.
        row = re.search(
            rf"\| 2 \| {mode} \| ([\d,]+) \| (\d+\.\d+) \| ([\d.]*) \| (\d+\.\d) \| ([\d,]+) \|",
            output,
        )
        assert row, output
        assert int(row[1].replace(",", "")) > 0 and float(row[4]) > 0
    assert "Join to first remote frame at N = 2, SFU against mesh" in out.read_text()
    for chart in ("sfu-uplink.png", "sfu-page-cpu.png", "sfu-first-frame.png"):
        assert (tmp_path / "img" / chart).stat().st_size > 1000


def test_startup_benchmark_smoke() -> None:
    output = run_bench("startup.py", "--base", "HEAD", "--runs", "1")
    rows = re.findall(r"^\| `rtcroom [^`]+` \| ([\d.]+) \| ([\d.]+) \|", output, re.M)
    assert len(rows) == 3, output
    assert all(float(before) > 0 and float(after) > 0 for before, after in rows)
