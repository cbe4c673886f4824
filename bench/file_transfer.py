"""File transfer throughput between two pages of the app, against a raw data channel floor.

rtcroom: two pages of the web app in one room (separate browser contexts);
the first sends a file from disk to the second through the app's file input:
the whole path, slicing, SHA-256 on both sides, flow control, the receiver's
verification and acknowledgement. Time from the pick to the sender seeing
"done". Twice: the two users without camera and microphone (like for like with
the floor), and in a call (camera and microphone on, video both ways).

Floor: one page, two RTCPeerConnections connected in the page, one ordered
reliable data channel; the same number of bytes in messages of the app's
chunk size (128 KiB) from one buffer, with the same high/low water marks; time
until all bytes are received. No file, no hashing, no server.

Reference: the floor's raw channel, but between the two app pages (on their
own peer connection, no media): what two renderer processes allow at best.

Runs alternate between the cases.

    scripts/netns python bench/file_transfer.py --size-mb 200 --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from harness import NO_DEVICES, launch, renderer_memory, rtcroom_server
from playwright.sync_api import Browser, Page, sync_playwright

# The floor's and the two-page reference's sender: `size` bytes in 128 KiB
# messages from one buffer, 4 MiB high and 1 MiB low water marks (the app's).
SEND_LOOP = """  const chunk = new Uint8Array(128 * 1024).fill(7);
  const start = performance.now();
  for (let sent = 0; sent < size; sent += chunk.length) {
    if (channel.bufferedAmount > 4 * 1024 * 1024) {
      await new Promise((r) => channel.addEventListener("bufferedamountlow", r, {once: true}));
    }
    channel.send(chunk.subarray(0, Math.min(chunk.length, size - sent)));
  }"""

FLOOR_PAGE = """<!doctype html><meta charset="utf-8"><title>floor</title>
<script type="module">
window.transfer = async (size) => {
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  const channel = a.createDataChannel("bench", {ordered: true});
  channel.binaryType = "arraybuffer";
  channel.bufferedAmountLowThreshold = 1024 * 1024;
  const received = new Promise((resolve) => {
    b.ondatachannel = ({channel: incoming}) => {
      let bytes = 0;
      incoming.binaryType = "arraybuffer";
      incoming.onmessage = ({data}) => {
        bytes += data.byteLength;
        if (bytes >= size) resolve(performance.now());
      };
    };
  });
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  await new Promise((resolve) => (channel.onopen = resolve));
SEND_LOOP
  const end = await received;
  a.close();
  b.close();
  return (end - start) / 1000;
};
</script>""".replace("SEND_LOOP", SEND_LOOP)


# The reference between two pages: a raw channel on the pages' own peer
# connection, bytes from one buffer as in the floor, counted on arrival.
RAW_RECEIVE = """(size) => {
  window.rtcroom.addEventListener("datachannel", ({detail: {channel}}) => {
    if (channel.label !== "bench") return;
    channel.binaryType = "arraybuffer";
    let bytes = 0;
    channel.onmessage = ({data}) => {
      bytes += data.byteLength;
      if (bytes >= size) channel.send("done");
    };
  });
}"""
RAW_SEND = """async (size) => {
  const peer = [...window.rtcroom.peers.values()][0];
  const channel = peer.pc.createDataChannel("bench", {ordered: true});
  channel.bufferedAmountLowThreshold = 1024 * 1024;
  await new Promise((resolve) => (channel.onopen = resolve));
  const done = new Promise((resolve) => (channel.onmessage = resolve));
SEND_LOOP
  await done;
  return (performance.now() - start) / 1000;
}""".replace("SEND_LOOP", SEND_LOOP)


# Resolves when the sender's transfer shows "done".
DONE = """() => {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  new MutationObserver((_, observer) => {
    if (!document.querySelector(".transfer.send[data-state=done]")) return;
    observer.disconnect();
    resolve();
  }).observe(document.body, {subtree: true, childList: true, attributes: true});
  return {promise};
}"""


def two_pages(browser: Browser, base: str, room: str, media: bool) -> tuple[Page, Page]:
    """A sender and a receiver page of the app in `room`, their chat channel open."""
    pages = []
    for name in ("sender", "receiver"):
        context = browser.new_context(permissions=["camera", "microphone"])
        if not media:  # a user without camera and microphone: receive-only
            context.add_init_script(NO_DEVICES)
        page = context.new_page()
        page.goto(f"{base}/r/{room}?name={name}&prejoin=0")
        page.wait_for_selector("body[data-joined=true]")
        pages.append(page)
    sender, receiver = pages
    sender.wait_for_function("[...window.rtcroom.peers.values()][0]?.chat.readyState === 'open'")
    return sender, receiver


def rtcroom_run(
    browser: Browser, base: str, path: Path, room: str, media: bool
) -> tuple[float, int]:
    """Seconds from picking `path` in the sender's page to its "done", and the
    peak resident set of the largest renderer meanwhile (sampled every 100 ms)."""
    sender, receiver = two_pages(browser, base, room, media)
    # Waiting inside the page, on DOM changes: Playwright's wait_for_selector
    # would poll the sender's page on every animation frame.
    done = sender.evaluate_handle(DONE)
    peak = [0]
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(0.1):
            peak[0] = max([peak[0], *renderer_memory().values()])

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    sender.set_input_files("#file-input", path)
    sender.evaluate("(done) => done.promise", done)
    seconds = time.perf_counter() - started
    finished.set()
    sampler.join()
    assert receiver.locator(".transfer.receive[data-state=done]").count() == 1
    for page in (sender, receiver):
        page.context.close()
    return seconds, peak[0]


def raw_run(browser: Browser, base: str, size: int, room: str) -> float:
    """Seconds for `size` bytes over a raw channel between two app pages (no media)."""
    sender, receiver = two_pages(browser, base, room, media=False)
    receiver.evaluate(RAW_RECEIVE, size)
    seconds: float = sender.evaluate(RAW_SEND, size)
    for page in (sender, receiver):
        page.context.close()
    return seconds


def floor_run(browser: Browser, base: str, size: int) -> float:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{base}/bench/dc-floor")
    page.wait_for_function("window.transfer !== undefined")
    seconds: float = page.evaluate("(size) => window.transfer(size)", size)
    context.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    cases = ("rtcroom, no camera", "rtcroom in a call", "raw channel, two pages", "floor")
    speeds: dict[str, list[float]] = {case: [] for case in cases}
    peaks: list[int] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        rtcroom_server({"/bench/dc-floor": FLOOR_PAGE}) as base,
        sync_playwright() as pw,
    ):
        path = Path(folder) / "bench.bin"
        with path.open("wb") as out:
            for _ in range(args.size_mb):
                out.write(os.urandom(1024 * 1024))
        browser = launch(pw)
        for run in range(args.runs):
            alone, rss = rtcroom_run(browser, base, path, f"files{run}", media=False)
            peaks.append(rss)
            seconds = {
                cases[0]: alone,
                cases[1]: rtcroom_run(browser, base, path, f"call{run}", media=True)[0],
                cases[2]: raw_run(browser, base, size, f"raw{run}"),
                cases[3]: floor_run(browser, base, size),
            }
            for case, value in seconds.items():
                speeds[case].append(size / value / 1e6)
        browser.close()
    print(f"file of {args.size_mb} MiB, {args.runs} runs of each, alternating")
    print("| case | median MB/s | min MB/s | max MB/s |")
    print("|---|---:|---:|---:|")
    for name, values in speeds.items():
        print(
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |"
        )
    floor = statistics.median(speeds["floor"])
    for case in cases[:3]:
        # Each round's case next to that round's floor: the spread says how
        # far the machine's noise moves the ratio.
        rounds = sorted(v / f for v, f in zip(speeds[case], speeds["floor"], strict=True))
        print(
            f"ratio {case} / floor (medians): {statistics.median(speeds[case]) / floor:.2f}"
            f" (round by round: {rounds[0]:.2f} to {rounds[-1]:.2f}, median {statistics.median(rounds):.2f})"
        )
    print(
        f"largest renderer during a transfer without camera: {max(peaks) / 2**20:.0f} MiB at most"
        f" (file of {args.size_mb} MiB)"
    )


if __name__ == "__main__":
    main()
