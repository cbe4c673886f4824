"""SFU rooms against the mesh: uplink, CPU and first frame as rooms grow, in one run.

For each room size N (default 2, 4, 6, 8, 12, 16), a room of two Chromium
pages (fake 640x480 camera) and N - 2 Python publishers (a 160x120 test
pattern each, rtcroom.client), once as a mesh (`rtcroom serve`) and once
through the SFU (`rtcroom serve --sfu`, Debian's Janus from `rtcroom
sfu-config`). Per room, over a window once the room is set up:

- uplink per participant: what the measured page sends, all its peer
  connections together (outbound-rtp bytesSent), in kbit/s;
- page CPU: all Chromium processes' CPU time (/proc) per second of wall
  time, divided by the two pages;
- Janus CPU per forwarded stream: Janus's CPU time per second, divided by
  the video streams it forwards (each page receives N - 1; the Python
  publishers receive nothing: their tokens grant publish only);
- the lowest frame rate at which the measured page decodes any other
  participant's video (inbound-rtp framesDecoded over the window);
- join to first remote frame: the measured page joins last; from its
  navigation to its first decoded remote frame.

The mesh stops at --mesh-max participants (default 8): past that the Python
publishers, which encode once per other participant, take the machine.
Runs inside the test network (Janus needs a non-loopback address):

    scripts/netns python bench/sfu.py

writes its section of docs/benchmarks.md and charts in docs/img/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS, VETH, free_port  # noqa: E402
from signaling import write  # noqa: E402

from rtcroom.auth import mint_token  # noqa: E402

SECRET = "a-secret-for-the-sfu-benchmark-0123456789"
JANUS_SECRET = "a-janus-secret-for-the-sfu-benchmark"
BEGIN = "<!-- sfu suite: begin (written by bench/sfu.py) -->"
END = "<!-- sfu suite: end -->"

PAGE_STATS = """async () => {
  const c = window.rtcroom;
  const pcs = [...[...c.peers.values()].map((p) => p.pc), c.sfu.publisher, c.sfu.subscriber].filter(Boolean);
  let sent = 0;
  const frames = {};
  for (const pc of pcs) {
    (await pc.getStats()).forEach((s) => {
      if (s.type === "outbound-rtp") sent += s.bytesSent;
      if (s.type === "inbound-rtp" && s.kind === "video") frames[`${s.trackIdentifier ?? s.mid}:${s.ssrc}`] = s.framesDecoded ?? 0;
    });
  }
  return {sent, frames, now: performance.now()};
}"""

FIRST_FRAME = """() => [...document.querySelectorAll('video[data-peer-id]')].some(
  (v) => v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 0)"""


@dataclass
class Row:
    mode: str
    n: int
    uplink_kbps: float = 0.0
    page_cpu: float = 0.0
    janus_cpu_per_stream: float | None = None
    min_fps: float = 0.0
    first_frame_ms: float = 0.0
    errors: list[str] = field(default_factory=list)


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes, in seconds (/proc/PID/stat)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def chromium_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if command.endswith(b"chromium") or b"/chromium" in command:
                pids.append(int(entry.name))
    return pids


def start_janus(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "RTCROOM_SFU_SECRET": JANUS_SECRET}
    subprocess.run(
        [
            *(sys.executable, "-m", "rtcroom", "sfu-config", "--out", str(folder)),
            *("--api-ip", VETH, "--api-port", str(port), "--media-ip", VETH),
            *("--min-port", "42000", "--max-port", "43999"),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    janus = subprocess.Popen(
        ["janus", "-F", str(folder), "-C", str(folder / "janus.jcfg")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return janus, f"ws://{VETH}:{port}"


def start_server(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "RTCROOM_SFU_SECRET": JANUS_SECRET, "RTCROOM_AUTH_SECRET": SECRET}
    server = subprocess.Popen(
        [sys.executable, "-m", "rtcroom", "serve", "--port", str(port), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    for _ in range(200):
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return server, url
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("rtcroom serve did not start")


def token(room: str, identity: str, grants: list[str]) -> str:
    return mint_token(SECRET, room=room, identity=identity, grants=grants)


async def publishers(url: str, room: str, count: int, grants: list[str]) -> None:
    """`count` Python publishers in `room` until SIGTERM (run in a process of its own)."""
    from rtcroom.client import Room
    from rtcroom.commands.media import PatternTrack

    rooms = []
    for i in range(count):
        rooms.append(
            await Room.join(
                url,
                room,
                f"py{i}",
                tracks=[PatternTrack(160, 120)],
                token=token(room, f"py{i}", grants),
            )
        )
    print("ready", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for joined in rooms:
        await joined.leave()


def measure(
    args: argparse.Namespace, browser: object, url: str, mode: str, n: int, janus_pid: int | None
) -> Row:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    row = Row(mode, n)
    room = f"{mode}{n}"
    python_grants = ["publish"] if mode == "sfu" else ["publish", "subscribe", "data"]
    helper = None
    if n > 2:
        helper = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--publishers",
                url,
                room,
                str(n - 2),
                ",".join(python_grants),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert helper.stdout is not None
        if helper.stdout.readline().strip() != "ready":
            raise RuntimeError("the Python publishers did not join")
    contexts = []
    try:

        def page(name: str) -> object:
            context = browser.new_context(
                permissions=["camera", "microphone"], viewport={"width": 1280, "height": 800}
            )
            contexts.append(context)
            new = context.new_page()
            full = token(room, name, ["publish", "subscribe", "data"])
            new.goto(f"{url}/r/{room}?name={name}&token={full}&prejoin=0")
            return new

        other = page("other")
        other.wait_for_selector("body[data-joined=true]", timeout=30_000)
        time.sleep(2)
        started = time.monotonic()
        measured = page("measured")
        measured.wait_for_function(FIRST_FRAME, timeout=60_000, polling=20)
        row.first_frame_ms = (time.monotonic() - started) * 1000
        time.sleep(args.settle)
        pids = chromium_pids()
        before = measured.evaluate(PAGE_STATS)
        cpu0, janus0, wall0 = (
            cpu_seconds(pids),
            cpu_seconds([janus_pid] if janus_pid else []),
            time.monotonic(),
        )
        time.sleep(args.window)
        after = measured.evaluate(PAGE_STATS)
        cpu1, janus1, wall1 = (
            cpu_seconds(pids),
            cpu_seconds([janus_pid] if janus_pid else []),
            time.monotonic(),
        )
        wall = wall1 - wall0
        row.uplink_kbps = (after["sent"] - before["sent"]) * 8 / 1000 / wall
        row.page_cpu = (cpu1 - cpu0) / wall / 2
        if janus_pid:
            forwarded = 2 * (n - 1)
            row.janus_cpu_per_stream = (janus1 - janus0) / wall / forwarded
        rates = [
            (count - before["frames"].get(key, 0)) / wall for key, count in after["frames"].items()
        ]
        # The remote videos: the other page and the Python publishers.
        rates = sorted(rates, reverse=True)[: n - 1]
        row.min_fps = min(rates) if len(rates) == n - 1 else 0.0
        if len(rates) < n - 1:
            row.errors.append(f"video from {len(rates)} of {n - 1} participants")
    finally:
        for context in contexts:
            context.close()
        if helper is not None:
            helper.send_signal(signal.SIGTERM)
            try:
                helper.wait(20)
            except subprocess.TimeoutExpired:
                helper.kill()
    return row


def chart(rows: list[Row], metric: str, ylabel: str, path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    for mode, color in (("mesh", "#888"), ("sfu", "#2a7")):
        points = [
            (r.n, getattr(r, metric))
            for r in rows
            if r.mode == mode and getattr(r, metric) is not None
        ]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", color=color, label=mode)
    ax.set_xlabel("participants")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(args: argparse.Namespace, rows: list[Row]) -> str:
    by = {(r.mode, r.n): r for r in rows}
    lines = [
        BEGIN,
        "## SFU rooms against the mesh (bench/sfu.py)",
        "",
        "`scripts/netns python bench/sfu.py`: per room size, two Chromium pages and",
        "N - 2 Python publishers, as a mesh and through the SFU (Janus), in one run",
        f"(window {args.window:g} s after {args.settle:g} s of settling; the mesh up to {args.mesh_max}).",
        "",
        "| N | mode | uplink per participant (kbit/s) | page CPU (cores) | Janus CPU per forwarded stream (% of a core) | slowest remote video (fps) | join to first remote frame (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r.n, r.mode)):
        janus = "" if r.janus_cpu_per_stream is None else f"{r.janus_cpu_per_stream * 100:.2f}"
        note = f" ({'; '.join(r.errors)})" if r.errors else ""
        lines.append(
            f"| {r.n} | {r.mode} | {r.uplink_kbps:,.0f} | {r.page_cpu:.2f} | {janus} | {r.min_fps:.1f}{note} | {r.first_frame_ms:,.0f} |"
        )
    lines += ["", "Against the targets:", ""]
    base = by.get(("sfu", 2))
    if base and base.uplink_kbps:
        spread = [
            (r.n, r.uplink_kbps / base.uplink_kbps) for r in rows if r.mode == "sfu" and r.n <= 12
        ]
        worst = max(spread, key=lambda item: abs(item[1] - 1))
        ok = all(abs(ratio - 1) <= 0.25 for _, ratio in spread)
        lines.append(
            f"- SFU uplink per participant up to N = 12, against N = 2: {', '.join(f'{n}: {x:.2f}x' for n, x in spread)}"
            f" (target within ±25 %: {'met' if ok else f'missed at N = {worst[0]}'})."
        )
    mesh2 = by.get(("mesh", 2))
    mesh = [r for r in rows if r.mode == "mesh"]
    if mesh2 and mesh2.uplink_kbps:
        lines.append(
            "- Mesh uplink per participant against N = 2: "
            + ", ".join(
                f"{r.n}: {r.uplink_kbps / mesh2.uplink_kbps:.1f}x (N - 1 = {r.n - 1})" for r in mesh
            )
            + "."
        )
    if base and mesh2 and mesh2.first_frame_ms:
        ratio = base.first_frame_ms / mesh2.first_frame_ms
        lines.append(
            f"- Join to first remote frame at N = 2, SFU against mesh: {ratio:.2f}x "
            f"({base.first_frame_ms:.0f} against {mesh2.first_frame_ms:.0f} ms; target at most 1.5x: {'met' if ratio <= 1.5 else 'missed'})."
        )
    good = [r.n for r in rows if r.mode == "sfu" and r.min_fps >= 15 and not r.errors]
    largest = max(good) if good else 0
    lines.append(
        f"- The largest SFU room here where the measured page decodes every other participant at 15 fps or more: "
        f"N = {largest} (target: 16)."
    )
    lines += [
        "",
        "How to read it. All of it runs on this 2-core machine at once: the two",
        "pages, the N - 2 Python publishers (aiortc encodes in Python's process),",
        "rtcroom and Janus. In the mesh each participant encodes its camera once per",
        "other participant and the Python publishers decode everyone: the machine is",
        "saturated from N = 4, Chromium lowers what it sends (uplink per participant",
        "grows far less than N - 1 times) and the frame rates collapse. Through the",
        "SFU each participant encodes once, whatever N; the measured page's uplink",
        "is its three simulcast layers, flat. (With 4 s of settling, an earlier run",
        "caught Chromium's bandwidth estimate still ramping the top layer up at some",
        "N: 8 s lets it settle.) Janus stays under 1 % of a core per forwarded stream from N = 4, falling",
        "as streams share its work. `--sfu-from` defaults to 4 from these figures:",
        "from N = 4 the mesh's slowest video is at half the SFU's frame rate.",
        "",
        "![uplink per participant](img/sfu-uplink.png)",
        "",
        "![page CPU](img/sfu-page-cpu.png)",
        "",
        "![join to first remote frame](img/sfu-first-frame.png)",
        "",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2,4,6,8,12,16", help="room sizes, comma separated")
    parser.add_argument("--mesh-max", type=int, default=8)
    parser.add_argument("--window", type=float, default=6.0)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--smoke", action="store_true", help="N = 2 only, short windows")
    parser.add_argument(
        "--publishers", nargs=4, metavar=("URL", "ROOM", "COUNT", "GRANTS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.publishers:
        url, room, count, grants = args.publishers
        asyncio.run(publishers(url, room, int(count), grants.split(",")))
        return
    sizes = [int(n) for n in args.sizes.split(",")]
    if args.smoke:
        sizes, args.window, args.settle = [2], 1.5, 1.0
    from playwright.sync_api import sync_playwright

    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        janus, janus_url = start_janus(Path(folder) / "janus")
        mesh, mesh_url = start_server("--max-peers", "20")
        sfu, sfu_url = start_server("--sfu", janus_url, "--sfu-from", "1")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for n in sizes:
                    for mode, url, pid in (("mesh", mesh_url, None), ("sfu", sfu_url, janus.pid)):
                        if mode == "mesh" and n > args.mesh_max:
                            continue
                        row = measure(args, browser, url, mode, n, pid)
                        rows.append(row)
                        print(json.dumps(asdict(row)), file=sys.stderr, flush=True)
                browser.close()
        finally:
            for process in (mesh, sfu, janus):
                process.terminate()
                process.wait(10)
    images = args.out.parent / "img"
    images.mkdir(parents=True, exist_ok=True)
    chart(rows, "uplink_kbps", "kbit/s", images / "sfu-uplink.png", "Uplink per participant")
    chart(rows, "page_cpu", "cores", images / "sfu-page-cpu.png", "CPU per page")
    chart(
        rows, "first_frame_ms", "ms", images / "sfu-first-frame.png", "Join to first remote frame"
    )
    (images / "sfu-results.json").write_text(json.dumps([asdict(r) for r in rows], indent=1))
    section = report(args, rows)
    write(args.out, section, BEGIN, END)
    print(section)


if __name__ == "__main__":
    main()
