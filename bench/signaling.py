"""The signaling benchmark suite: rtcroom against what its users would pick instead.

One command runs it all and writes the "Signaling servers" section of
docs/benchmarks.md, with its charts in docs/img/:

    python bench/signaling.py            # the full suite, about 15 minutes
    python bench/signaling.py --smoke --out /tmp/x   # seconds, as the tests run it

Servers under test, each started here as its users start it, on CPU 0:

- rtcroom serve (protocol v1 on /ws; also its /socket.io/ door for the relay),
- Node's socket.io server relaying the tutorials' room events
  (bench/servers/socketio_server.mjs),
- the seeds' python-socketio server on aiohttp (bench/servers/tutorial_socketio.py),
- the seeds' Flask-SocketIO server on gevent (bench/servers/tutorial_flask_socketio.py),
- a bare relay on Node's `ws`, with no validation at all: the floor
  (bench/servers/ws_relay.mjs).

One load generator for all (bench/load/loadgen.mjs, Node with `ws` and
socket.io-client) on CPU 1. Workloads: closed-loop relay between pairs,
open-loop relay at fixed offered rates, idle joined connections, join/leave
churn. rtcroom runs with its defaults, validation and limits on, except the
thresholds that one load host would trip (messages per second per
connection, connections and joins per address): they are raised out of the
way, and their bookkeeping still runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from conftest import free_port, stop_process

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOADGEN = BENCH / "load" / "loadgen.mjs"
BEGIN = "<!-- signaling suite: begin (written by bench/signaling.py) -->"
END = "<!-- signaling suite: end -->"

RAISED = [
    *("--rate", "1000000", "--burst", "1000000"),
    *("--max-connections-per-address", "1000000", "--joins-per-minute", "10000000"),
    *("--log-level", "warning"),
]

RTCROOM = "rtcroom"
RTCROOM_OPS = "rtcroom + metrics, JSON logs"
RTCROOM_HOOK = "rtcroom + dead webhook"
RTCROOM_SIO = "rtcroom /socket.io/"
NODE_SIO = "Node socket.io"
PY_SIO = "python-socketio (aiohttp)"
FLASK = "Flask-SocketIO (gevent)"
FLOOR = "Node ws floor"


@dataclass
class Kind:
    """A server under test: how to start it and which dialect its clients speak."""

    name: str
    dialect: str
    command: list[str]


def kinds() -> list[Kind]:
    python, node = sys.executable, "node"
    rtcroom = [python, "-m", "rtcroom", "serve", "--port", "{port}", *RAISED]
    # What an operator turns on (issue 25): it must cost nothing measurable.
    operations = [
        *rtcroom,
        *("--metrics-port", "{metrics}", "--log-format", "json", "--log-level", "info"),
    ]
    # Events for an endpoint that takes connections and never answers.
    dead_webhook = [*rtcroom, "--webhook", "http://127.0.0.1:{dead}/", "--webhook-secret", WHSEC]
    return [
        Kind(RTCROOM, "v1", rtcroom),
        Kind(RTCROOM_OPS, "v1", operations),
        Kind(RTCROOM_HOOK, "v1", dead_webhook),
        Kind(RTCROOM_SIO, "sio", rtcroom),
        Kind(NODE_SIO, "sio", [node, str(BENCH / "servers" / "socketio_server.mjs"), "{port}"]),
        Kind(PY_SIO, "sio", [python, str(BENCH / "servers" / "tutorial_socketio.py"), "{port}"]),
        Kind(
            FLASK, "sio", [python, str(BENCH / "servers" / "tutorial_flask_socketio.py"), "{port}"]
        ),
        Kind(FLOOR, "raw", [node, str(BENCH / "servers" / "ws_relay.mjs"), "{port}"]),
    ]


WHSEC = "whsec_" + "QmVuY2htYXJrIHdlYmhvb2sgc2VjcmV0IGtleQ=="
# rtcroom with its operations features on: in the relay and churn tables only.
OPERATED = (RTCROOM_OPS, RTCROOM_HOOK)


def one_door() -> list[Kind]:
    """The servers, rtcroom once: its Socket.IO door and operations variants
    are only in the relay (and churn) tables."""
    return [kind for kind in kinds() if kind.name not in (RTCROOM_SIO, *OPERATED)]


def pinned(cpu: int) -> list[str]:
    """taskset onto `cpu` when the machine has it (and taskset exists)."""
    if (os.cpu_count() or 1) > cpu and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


class Server:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.port = free_port()
        # An endpoint that never answers: connections wait in its backlog.
        self.dead = socket.socket()
        self.dead.bind(("127.0.0.1", 0))
        self.dead.listen(4096)
        ports = {
            "{port}": str(self.port),
            "{metrics}": str(free_port()),
            "{dead}": str(self.dead.getsockname()[1]),
        }
        command = []
        for part in kind.command:
            for placeholder, value in ports.items():
                part = part.replace(placeholder, value)
            command.append(part)
        # Its complaints go to a file: a pipe nobody reads could fill and stall it.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            [*pinned(0), *command], stdout=subprocess.DEVNULL, stderr=self.log
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"{kind.name} exited: {self.log.read().decode()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{kind.name} did not start")
        time.sleep(0.2)

    def _stat(self) -> list[str]:
        text = Path(f"/proc/{self.process.pid}/stat").read_text()
        return text.rsplit(")", 1)[1].split()

    def cpu_seconds(self) -> float:
        fields = self._stat()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss(self) -> int:
        """Resident memory in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def last_words(self) -> str:
        """The last line the server wrote to its stderr."""
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "nothing"

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()
        self.dead.close()


def loadgen(server: Server, workload: str, timeout: float, **params: Any) -> dict[str, Any]:
    config = {"dialect": server.kind.dialect, "url": server.url, "workload": workload, **params}
    result = subprocess.run(
        [*pinned(1), "node", str(LOADGEN), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr else "failed")
    out: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


@dataclass
class Results:
    closed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    open: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    idle: dict[str, dict[str, Any]] = field(default_factory=dict)
    churn: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def run_closed(args: argparse.Namespace, results: Results) -> None:
    servers = [Server(kind) for kind in kinds()]
    try:
        for _ in range(args.rounds):
            for server in servers:
                before = server.cpu_seconds()
                try:
                    out = loadgen(
                        server,
                        "closed",
                        120 + 3 * args.seconds,
                        pairs=args.pairs,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    results.failures.append(f"closed loop, {server.kind.name}: {exc}")
                    continue
                out["server_us"] = (server.cpu_seconds() - before) / max(out["messages"], 1) * 1e6
                results.closed.setdefault(server.kind.name, []).append(out)
    finally:
        for server in servers:
            server.stop()


def peak(results: Results, name: str) -> float:
    return statistics.median(r["rate"] for r in results.closed[name])


def run_open(args: argparse.Namespace, results: Results) -> None:
    top = peak(results, RTCROOM)
    rates = [round(top * f) for f in args.fractions]
    for kind in one_door():
        server = Server(kind)
        try:
            for rate in rates:
                try:
                    out = loadgen(
                        server,
                        "open",
                        120 + 3 * args.seconds,
                        pairs=args.pairs,
                        rate=rate,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    )
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    results.failures.append(f"open loop at {rate}/s, {kind.name}: {exc}")
                    break
                results.open.setdefault(kind.name, []).append(out)
                # Past saturation the queue only grows: higher rates say nothing more.
                if out["received"] < 0.95 * out["sent"]:
                    break
        finally:
            server.stop()


def run_idle(args: argparse.Namespace, results: Results) -> None:
    for kind in one_door():
        # A server that cannot hold them all is tried again with half as many.
        for connections in (args.idle, args.idle // 2):
            if idle(kind, connections, args, results):
                break


def idle(kind: Kind, connections: int, args: argparse.Namespace, results: Results) -> bool:
    server = Server(kind)
    try:
        time.sleep(args.settle)
        before = server.rss()
        config = {
            "dialect": kind.dialect,
            "url": server.url,
            "workload": "idle",
            "connections": connections,
            "concurrency": 100,
        }
        process = subprocess.Popen(
            [*pinned(1), "node", str(LOADGEN), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout and process.stdin and process.stderr
        with process:
            line = process.stdout.readline()
            if not line:
                error = process.stderr.read().strip().splitlines()
                results.failures.append(
                    f"idle, {kind.name}, {connections:,} connections: "
                    f"{error[0] if error else 'failed'} (the server said: {server.last_words()})"
                )
                return False
            joined = json.loads(line)
            time.sleep(2 * args.settle)
            after = server.rss()
            process.stdin.close()
            process.wait(60)
        results.idle[kind.name] = {
            "connections": joined["connections"],
            "seconds": joined["seconds"],
            "bytes_per_connection": (after - before) / joined["connections"],
            "rss_before": before,
            "rss_after": after,
        }
        return True
    finally:
        server.stop()


def run_churn(args: argparse.Namespace, results: Results) -> None:
    for kind in [*one_door(), *(k for k in kinds() if k.name in OPERATED)]:
        server = Server(kind)
        try:
            before = server.rss()
            out = loadgen(
                server,
                "churn",
                120 + 3 * args.seconds,
                rooms=args.churn_rooms,
                seconds=args.seconds,
            )
            time.sleep(args.settle)
            out["rss_growth"] = server.rss() - before
            results.churn[kind.name] = out
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            results.failures.append(f"churn, {kind.name}: {exc}")
        finally:
            server.stop()


# The report.


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def node_version(package: str) -> str:
    try:
        return json.loads((BENCH / "node_modules" / package / "package.json").read_text())[
            "version"
        ]
    except OSError:
        return "?"


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    os_name = "?"
    with_release = Path("/etc/os-release")
    if with_release.exists():
        found = re.search(r'PRETTY_NAME="(.+)"', with_release.read_text())
        os_name = found.group(1) if found else "?"
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({model.group(1) if model else '?'}), {memory:.0f} GiB, "
        f"{os_name}, Linux {platform.release()}; Python {platform.python_version()} "
        f"(rtcroom {version('rtcroom')}, uvicorn {version('uvicorn')}, uvloop {version('uvloop')}, "
        f"websockets {version('websockets')}, msgspec {version('msgspec')}, "
        f"python-socketio {version('python-socketio')}, aiohttp {version('aiohttp')}, "
        f"Flask-SocketIO {version('flask-socketio')}, gevent {version('gevent')}); "
        f"Node {node} (socket.io {node_version('socket.io')}, ws {node_version('ws')}, "
        f"socket.io-client {node_version('socket.io-client')})"
    )


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def bar_chart(
    names: list[str],
    values: list[float],
    labels: list[str],
    xlabel: str,
    path: Path,
    *,
    title: str | None = None,
    height: float = 3.6,
    room: float = 1.18,
) -> None:
    """Horizontal bars, first name on top, rtcroom's in green; `room` leaves space for labels."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, height))
    bars = ax.barh(
        names[::-1],
        values[::-1],
        color=["#2a7" if n.startswith("rtcroom") else "#888" for n in names[::-1]],
    )
    ax.bar_label(bars, labels=labels[::-1], padding=3, fontsize=8)
    ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title)
    ax.set_xlim(0, max(values) * room)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def chart_closed(results: Results, path: Path) -> None:
    names = list(results.closed)
    rates = [peak(results, n) for n in names]
    bar_chart(
        names,
        rates,
        [f"{r:,.0f}" for r in rates],
        "messages relayed per second (closed loop, median)",
        path,
        title="Relay throughput, one server process on one core",
    )


def chart_open(results: Results, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.2))
    for name, runs in results.open.items():
        offered = [r["offered"] for r in runs]
        style = "-" if name == RTCROOM else "--"
        line = ax.plot(
            offered, [r["latency_ms"]["p99"] for r in runs], style, marker="o", label=f"{name} p99"
        )
        ax.plot(
            offered,
            [r["latency_ms"]["p50"] for r in runs],
            ":",
            marker=".",
            color=line[0].get_color(),
            label=f"{name} p50",
        )
    ax.set_yscale("log")
    ax.set_xlabel("offered load, messages per second")
    ax.set_ylabel("one-way relay latency, ms")
    ax.axhline(5, color="#c33", linewidth=0.8)
    ax.set_title("Latency against load (open loop)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def chart_idle(results: Results, path: Path) -> None:
    names = list(results.idle)
    kb = [results.idle[n]["bytes_per_connection"] / 1000 for n in names]
    bar_chart(
        names,
        kb,
        [f"{k:.1f} KB" for k in kb],
        "server memory per idle joined connection, KB",
        path,
        height=3,
        room=1.2,
    )


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(args: argparse.Namespace, results: Results, images: Path, relative: str) -> str:
    lines = [BEGIN, "## Signaling servers", ""]
    command = "python bench/signaling.py" + (" --smoke" if args.smoke else "")
    lines += [
        "rtcroom against what its users would otherwise run, side by side in one run "
        f"(`{command}`; {time.strftime('%Y-%m-%d')}). The servers run on CPU 0, the one load "
        "generator for all of them (bench/load/loadgen.mjs: Node, `ws` and socket.io-client) "
        "on CPU 1. rtcroom runs with its defaults, validation and limits on; the thresholds one "
        "load host would trip (messages per second per connection, connections and joins per "
        "address) are raised, their bookkeeping still runs. The Socket.IO servers relay the "
        "tutorials' `join`/`ready`/`data` events; rtcroom relays protocol v1 `signal`s; the floor "
        "relays frames with no protocol at all. The payload is an ICE candidate.",
        "",
        f"Machine: {machine()}.",
        "",
    ]
    names = list(results.closed)
    targets: list[tuple[str, str, str]] = []
    if RTCROOM in results.closed:
        top = peak(results, RTCROOM)
        lines += [
            "### Relay throughput (closed loop)",
            "",
            f"{args.pairs} pairs of peers in rooms of two bounce a message back and forth, one in "
            f"flight per pair; {args.rounds} interleaved rounds of {args.seconds:g} s; medians. "
            "Server CPU is per relayed message over the whole run (joins and warm-up too). "
            "Load generator CPU near 100% means it, not the server, set the pace.",
            "",
            "| server | messages/s | rtcroom / this | round trip p50 | p99 | server CPU per message | load generator CPU |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in names:
            runs = results.closed[name]
            rate = peak(results, name)
            lines.append(
                f"| {name} | {rate:,.0f} | {top / rate:.2f} | "
                f"{med([r['rtt_ms']['p50'] for r in runs]):.2f} ms | {med([r['rtt_ms']['p99'] for r in runs]):.2f} ms | "
                f"{med([r['server_us'] for r in runs]):.1f} µs | {med([r['cpu'] for r in runs]) * 100:.0f}% |"
            )
        lines += ["", f"![relay throughput]({relative}/signaling-throughput.png)", ""]
        for other, goal, label in (
            (NODE_SIO, 1.2, "Node's socket.io"),
            (FLOOR, 0.8, "the bare `ws` floor"),
            (PY_SIO, 5.0, "the seeds' python-socketio"),
        ):
            if other in results.closed:
                ratio = top / peak(results, other)
                targets.append(
                    (
                        f"relay throughput / {label}",
                        f"≥ {goal:g}x",
                        f"{ratio:.2f}x, {verdict(ratio >= goal)}",
                    )
                )
        # Operations cost nothing measurable: within this machine's noise of plain rtcroom.
        for variant in OPERATED:
            if variant in results.closed:
                ratio = peak(results, variant) / top
                targets.append(
                    (
                        f"relay throughput, {variant} / rtcroom",
                        "≥ 0.9x (noise)",
                        f"{ratio:.2f}x, {verdict(ratio >= 0.9)}",
                    )
                )
    if results.open:
        lines += [
            "### Latency against load (open loop)",
            "",
            f"{args.pairs} pairs; one-way messages at fixed offered rates (fractions of rtcroom's "
            f"closed-loop peak), {args.seconds:g} s each after {args.warmup:g} s of warm-up; the "
            "generator sends on a 1 ms tick, so bursts of up to rate/1000 messages are part of "
            "the latency. A server stops being offered more once it delivers less than 95% "
            "of what was sent.",
            "",
            "| server | offered msg/s | delivered | p50 | p99 | max |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, runs in results.open.items():
            for r in runs:
                q = r["latency_ms"]
                lines.append(
                    f"| {name} | {r['offered']:,} | {r['received'] / max(r['sent'], 1) * 100:.0f}% | "
                    f"{ms(q['p50'])} | {ms(q['p99'])} | {ms(q['max'])} |"
                )
        lines += ["", f"![latency against load]({relative}/signaling-latency.png)", ""]
        mine = results.open.get(RTCROOM, [])
        half = round(peak(results, RTCROOM) * 0.5)
        at_half = [r for r in mine if r["offered"] == half]
        if at_half and at_half[0]["latency_ms"]["p99"] is not None:
            p99 = at_half[0]["latency_ms"]["p99"]
            targets.append(
                (
                    f"p99 latency at 50% of rtcroom's peak ({half:,} msg/s)",
                    "≤ 5 ms",
                    f"{p99:.2f} ms, {verdict(p99 <= 5)}",
                )
            )
    if results.idle:
        lines += [
            "### Idle joined connections",
            "",
            f"{args.idle:,} clients join rooms of two (100 joins in flight) and stay; memory is the "
            "server's resident set with them all in, less before any came, each server freshly started.",
            "",
            "| server | connections | time to join them all | joins/s | memory per connection |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, r in results.idle.items():
            lines.append(
                f"| {name} | {r['connections']:,} | {r['seconds']:.1f} s | {r['connections'] / r['seconds']:,.0f} | "
                f"{r['bytes_per_connection'] / 1000:.1f} KB |"
            )
        lines += ["", f"![memory per connection]({relative}/signaling-memory.png)", ""]
        if RTCROOM in results.idle:
            kb = results.idle[RTCROOM]["bytes_per_connection"] / 1000
            targets.append(
                (
                    f"memory per idle joined connection ({args.idle:,})",
                    "≤ 20 KB",
                    f"{kb:.1f} KB, {verdict(kb <= 20)}",
                )
            )
    if results.churn:
        lines += [
            "### Join/leave churn",
            "",
            f"{args.churn_rooms} rooms, each with a resident; in each, a visitor connects, joins "
            f"(done when the resident hears of it), and disconnects, over and over for {args.seconds:g} s. "
            "Memory growth: resident set after the churn less before it.",
            "",
            "| server | cycles/s | join p50 | join p99 | memory growth | errors |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, r in results.churn.items():
            q = r["join_ms"]
            lines.append(
                f"| {name} | {r['rate']:,.0f} | {ms(q['p50'])} | {ms(q['p99'])} | "
                f"{r['rss_growth'] / 1e6:.1f} MB | {'; '.join(r['errors']) or 'none'} |"
            )
        lines.append("")
        plain = results.churn.get(RTCROOM)
        for variant in OPERATED:
            if plain and variant in results.churn and plain["join_ms"]["p99"] is not None:
                mine = results.churn[variant]["join_ms"]["p99"]
                if mine is not None:
                    targets.append(
                        (
                            f"join p99 under churn, {variant} / rtcroom",
                            "≤ 1.5x (noise)",
                            f"{mine / plain['join_ms']['p99']:.2f}x, "
                            f"{verdict(mine <= 1.5 * plain['join_ms']['p99'])}",
                        )
                    )
    if targets:
        lines += ["### Targets", "", "| target | goal | measured |", "|---|---|---|"]
        lines += [f"| {what} | {goal} | {got} |" for what, goal, got in targets]
        lines.append("")
    if results.failures:
        lines += (
            ["### Runs that failed", ""] + [f"- {failure}" for failure in results.failures] + [""]
        )
    lines.append(END)
    return "\n".join(lines)


def write(out: Path, section: str, begin: str = BEGIN, end: str = END) -> None:
    """Put `section` (from its `begin` to its `end` marker) in place of the old one in `out`."""
    text = out.read_text() if out.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    out.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="seconds long: tiny loads, one round")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="the Markdown file to write the section into; charts go to img/ next to it",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--idle", type=int, default=10_000)
    parser.add_argument("--churn-rooms", type=int, default=20)
    parser.add_argument("--only", choices=["closed", "open", "idle", "churn"], action="append")
    args = parser.parse_args()
    args.fractions = [0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.2]
    args.settle = 1.0  # seconds for a server's memory to settle before it is read
    if args.smoke:
        args.rounds, args.seconds, args.warmup, args.pairs = 1, 0.5, 0.2, 2
        args.idle, args.churn_rooms, args.fractions, args.settle = 40, 2, [0.5], 0.2
    if not (BENCH / "node_modules" / "socket.io").exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(BENCH), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
        )

    results = Results()
    only = set(args.only or ["closed", "open", "idle", "churn"])
    started = time.monotonic()
    if only & {"closed", "open"}:
        run_closed(args, results)
        print(f"closed loop done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if "open" in only and RTCROOM in results.closed:
        run_open(args, results)
        print(f"open loop done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if "idle" in only:
        run_idle(args, results)
        print(f"idle done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if "churn" in only:
        run_churn(args, results)
        print(f"churn done ({time.monotonic() - started:.0f} s)", file=sys.stderr)

    images = args.out.parent / "img"
    images.mkdir(parents=True, exist_ok=True)
    if results.closed:
        chart_closed(results, images / "signaling-throughput.png")
    if results.open:
        chart_open(results, images / "signaling-latency.png")
    if results.idle:
        chart_idle(results, images / "signaling-memory.png")
    (images / "signaling-results.json").write_text(json.dumps(results.__dict__, indent=1))
    section = report(args, results, images, "img")
    write(args.out, section)
    print(section)


if __name__ == "__main__":
    main()
