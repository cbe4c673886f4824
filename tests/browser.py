"""Helpers for driving the web app in headless Chromium and Firefox."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from playwright.sync_api import Browser, Page

ARTIFACT_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"

# Every wait of the browser tests scales with this one factor: set
# RTCROOM_TEST_SLOWDOWN above 1 on a machine slower than CI's. The waits
# themselves are sized for a CI machine with one of its two cores busy.
SLOWDOWN = float(os.environ.get("RTCROOM_TEST_SLOWDOWN", "1"))


def ms(milliseconds: float) -> float:
    """A Playwright timeout, scaled by SLOWDOWN."""
    return milliseconds * SLOWDOWN


def seconds(value: float) -> float:
    """A wait in seconds, scaled by SLOWDOWN."""
    return value * SLOWDOWN


# An init script: a user who has no camera or microphone (getUserMedia finds
# none), for a context that may use them.
NO_DEVICES = """navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Requested device not found", "NotFoundError"));"""

# Counts decoded frames of every remote <video>, keyed by peer id.
FRAME_COUNTS = """() => Object.fromEntries(
  [...document.querySelectorAll('video[data-peer-id]')].map(v => [
    v.dataset.peerId,
    // Firefox counts no frames of a MediaStream in getVideoPlaybackQuality():
    // its painted frames instead.
    v.videoWidth > 0 ? (v.mozPaintedFrames ?? v.getVideoPlaybackQuality().totalVideoFrames) : 0,
  ]))"""


def open_call(
    browser: Browser,
    base_url: str,
    room: str,
    name: str,
    *,
    media: bool = True,
    query: dict[str, str] | None = None,
    init_script: str | None = None,
) -> Page:
    """Open the room link in a fresh browser context, as a new user would
    (`init_script` runs in the page before its own scripts)."""
    context = browser.new_context(
        permissions=["camera", "microphone"] if media else [],
        viewport={"width": 960, "height": 600},
    )
    context.set_default_timeout(ms(30_000))
    if init_script:
        context.add_init_script(init_script)
    page = context.new_page()
    page.goto(f"{base_url}/r/{quote(room)}?{urlencode({'name': name, **(query or {})})}")
    if (query or {}).get("prejoin") != "0":
        enter(page)
    page.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    return page


def enter(page: Page) -> None:
    """Press "Join" on the step before joining, as a person would once the preview is up."""
    page.click("#prejoin-join")


def peer_id(page: Page) -> str:
    value: str = page.evaluate("() => window.rtcroom.id")
    return value


# The stats overlay's connection for a direct path on the test network: the
# remote candidate is peer-reflexive when its connectivity check arrives
# before the candidate itself (a race that each browser wins sometimes).
DIRECT = re.compile(r"^host ↔ (host|prflx)$")

# What a page's peer connections are doing, for a failure's message: states,
# transceivers, candidate pairs and inbound video, by peer id.
CONNECTIONS = """async () => {
  const client = window.rtcroom;
  if (!client) return "no client (window.rtcroom)";
  const out = {};
  for (const [id, peer] of client.peers) {
    const pc = peer.pc;
    const stats = [];
    (await pc.getStats()).forEach((s) => {
      if (s.type === "candidate-pair" && s.nominated)
        stats.push(`pair ${s.state} sent=${s.bytesSent} received=${s.bytesReceived}`);
      if (s.type === "local-candidate" || s.type === "remote-candidate")
        stats.push(`${s.type} ${s.candidateType} ${s.protocol} ${s.address}:${s.port}`);
      if (s.type === "inbound-rtp")
        stats.push(`in ${s.kind} packets=${s.packetsReceived} decoded=${s.framesDecoded ?? "-"}`);
      if (s.type === "outbound-rtp")
        stats.push(`out ${s.kind} packets=${s.packetsSent}`);
    });
    out[id] = {
      connection: pc.connectionState, ice: pc.iceConnectionState,
      gathering: pc.iceGatheringState, signaling: pc.signalingState,
      transceivers: pc.getTransceivers().map((t) =>
        `${t.mid} ${t.receiver.track.kind} ${t.direction}/${t.currentDirection} ` +
        `send=${t.sender.track ? t.sender.track.readyState : "none"} recv-muted=${t.receiver.track.muted}`),
      stats,
    };
  }
  return out;
}"""


def wait_frames_advancing(page: Page, expected_peers: set[str], timeout: float = 30.0) -> None:
    """Wait until `page` plays video of exactly `expected_peers`, frames advancing."""
    deadline = time.monotonic() + seconds(timeout)
    last: dict[str, Any] = {}
    advanced: set[str] = set()
    while time.monotonic() < deadline:
        counts: dict[str, int] = page.evaluate(FRAME_COUNTS)
        for pid, count in counts.items():
            if count > 0 and pid in last and count > last[pid]:
                advanced.add(pid)
        last = counts
        if set(counts) == expected_peers and advanced >= expected_peers:
            return
        time.sleep(0.25)
    raise AssertionError(
        f"page of {peer_id(page)}: wanted advancing video from {sorted(expected_peers)}, "
        f"frame counts {last}, advancing {sorted(advanced)}; "
        f"connections: {page.evaluate(CONNECTIONS)}"
    )


def close(page: Page) -> None:
    page.context.close()


def renderer_memory() -> dict[int, int]:
    """Resident set of each Chromium renderer process now, in bytes (Linux)."""
    sizes = {}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"--type=renderer" in cmdline.read_bytes():
                pages = int((cmdline.parent / "statm").read_text().split()[1])
                sizes[int(cmdline.parent.name)] = pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    return sizes


# axe-core (npm, tests/axe), the accessibility rules of WCAG 2.1 A and AA.
AXE = Path(__file__).resolve().parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
  });
  return {
    violations: result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${n.failureSummary}`),
    })),
    passes: result.passes.length,
    incomplete: result.incomplete.map((v) => v.id),
  };
}"""

# Every check of this run, for the summary at the end of the test output
# (conftest.pytest_terminal_summary): (browser, state, violations, rules passed).
AXE_RESULTS: list[tuple[str, str, int, int]] = []


def check_accessibility(page: Page, state: str) -> None:
    """Run axe-core in `page` as it is now; fail on any WCAG 2.1 A/AA violation."""
    if not AXE.exists():
        raise RuntimeError("axe-core is missing: run scripts/test (npm ci in tests/axe)")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(AXE_RUN)
    browser = page.context.browser.browser_type.name if page.context.browser else "?"
    violations = result["violations"]
    AXE_RESULTS.append((browser, state, len(violations), result["passes"]))
    details = "\n".join(
        f"  {v['id']} ({v['impact']}): {v['help']}\n" + "\n".join(f"    {n}" for n in v["nodes"])
        for v in violations
    )
    assert not violations, f"axe-core, {browser}, {state}: {len(violations)} violations\n{details}"
