"""Time from opening a room link to the first decoded remote frame, against a floor.

rtcroom: a host page waits in a room; a fresh browser context opens the room
link; we record when its first remote video frame is presented
(requestVideoFrameCallback), in ms since navigation start.

Floor: a fresh context loads a trivial page from the same server process,
calls getUserMedia and connects two RTCPeerConnections in the page, no
signaling server; same clock, same event.

Client library alone: the same start as the room page (camera, socket and
join from an inline script) and RoomClient from /static/rtcroom.js, with a
bare <video> per remote camera: no stylesheet, no UI. What a page of your own
built on the library gets; the difference to rtcroom is the app's page.

With --breakdown, a fourth case: the room page itself (its HTML, stylesheet,
inline start and preloads) with the client library's script instead of the
app's module: it splits the difference between rtcroom and the library page
into the page (HTML and CSS) and the app's module (UI, self-view, panels).

Runs alternate between the cases so that machine noise hits them alike.

    scripts/netns python bench/first_frame.py --runs 15 [--breakdown]

(scripts/netns gives a private network: nothing leaves the machine.)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from harness import launch, rtcroom_server
from playwright.sync_api import Browser, sync_playwright

from rtcroom.webapp import WebAssets

FLOOR_PAGE = """<!doctype html><meta charset="utf-8"><title>floor</title>
<video id="v" autoplay playsinline muted></video>
<script type="module">
const stream = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
const a = new RTCPeerConnection(), b = new RTCPeerConnection();
a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
const video = document.getElementById("v");
b.ontrack = (e) => {
  if (e.track.kind !== "video") return;
  video.srcObject = new MediaStream([e.track]);
  video.requestVideoFrameCallback(() => console.log(`first-frame ${performance.now()}`));
};
for (const track of stream.getTracks()) a.addTrack(track, stream);
await a.setLocalDescription();
await b.setRemoteDescription(a.localDescription);
await b.setLocalDescription();
await a.setRemoteDescription(b.localDescription);
</script>"""

# The client library alone (what a page of your own built on /static/rtcroom.js
# gets): the room page's inline start (camera, socket, early join), then a
# RoomClient and a muted <video> per remote camera; no stylesheet, no UI.
LIBRARY_PAGE = """<!doctype html><meta charset="utf-8"><title>library</title>
<link rel="modulepreload" href="/static/rtcroom.js">
<script>
{
  window.media = navigator.mediaDevices.getUserMedia({audio: true, video: true});
  const socket = new WebSocket(`ws://${location.host}/ws`);
  const join = {type: "join", room: "bench", name: "library"};
  const received = [];
  socket.onmessage = (event) => received.push(event.data);
  socket.addEventListener("open", () => socket.send(JSON.stringify(join)));
  window.early = {socket, join, received};
}
</script>
<script type="module">
import { RoomClient } from "/static/rtcroom.js";
const client = new RoomClient({room: "bench", name: "library", localStream: window.media, early: window.early});
client.addEventListener("track", ({detail: {peer, track}}) => {
  if (track.kind !== "video") return;
  const video = Object.assign(document.createElement("video"), {autoplay: true, muted: true});
  video.srcObject = peer.stream;
  document.body.append(video);
  video.requestVideoFrameCallback(() => console.log(`first-frame ${performance.now()}`));
});
client.join();
</script>"""

LIBRARY_SCRIPT = LIBRARY_PAGE[LIBRARY_PAGE.index('<script type="module">') :]


def room_page_with_library() -> str:
    """The room page as served, its app module replaced by the library page's script."""
    room = WebAssets().assets["room.html"].body.decode()
    path_room = 'decodeURIComponent(location.pathname.replace(/^\\/r\\//, "").replace(/\\/$/, ""))'
    app = '<script type="module" src="/static/app.js"></script>'
    if path_room not in room or app not in room:
        raise SystemExit(
            "room.html changed: update room_page_with_library() in bench/first_frame.py"
        )
    script = (
        LIBRARY_SCRIPT.replace('name: "library"', 'name: "guest"')
        .replace("window.media", "window.rtcroomEarlyMedia")
        .replace("window.early", "window.rtcroomEarly")
        .replace("document.body.append(video)", 'document.getElementById("grid").append(video)')
    )
    # Served from /bench/room-library: the room comes from the link otherwise.
    return room.replace(path_room, '"bench"').replace(app, script)


# Injected into the room page: note when the first remote frame is presented.
FIRST_FRAME_PROBE = """
new MutationObserver((_, observer) => {
  const video = document.querySelector("video[data-peer-id]");
  if (!video) return;
  observer.disconnect();
  video.requestVideoFrameCallback(() => console.log(`first-frame ${performance.now()}`));
}).observe(document, {childList: true, subtree: true});
"""


def first_frame(browser: Browser, url: str, probe: str | None) -> float:
    """Open `url` in a fresh context; ms from navigation to the first remote frame.

    The page logs the time to the console: waiting for that adds nothing to
    the page (polling with page.wait_for_function would inject Playwright's
    script into it, about 10 ms of main-thread work in the middle of the call
    setup).
    """
    context = browser.new_context(permissions=["camera", "microphone"])
    if probe:
        context.add_init_script(probe)
    page = context.new_page()
    with page.expect_console_message(
        lambda message: message.text.startswith("first-frame "), timeout=30_000
    ) as message:
        page.goto(url, wait_until="commit")
    value = float(message.value.text.split()[1])
    context.close()
    return value


def measure(runs: int, breakdown: bool = False) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"rtcroom": [], "client library alone": [], "floor": []}
    pages = {"/bench/floor": FLOOR_PAGE, "/bench/library": LIBRARY_PAGE}
    if breakdown:
        results["room page, library script"] = []
        pages["/bench/room-library"] = room_page_with_library()
    with rtcroom_server(pages) as base, sync_playwright() as playwright:
        browser = launch(playwright)
        host = browser.new_context(permissions=["camera", "microphone"]).new_page()
        host.goto(f"{base}/r/bench?name=host")
        host.wait_for_selector("body[data-joined=true]")
        # One warm-up of each, not counted (first JIT, first codec init).
        first_frame(browser, f"{base}/r/bench?name=guest", FIRST_FRAME_PROBE)
        first_frame(browser, f"{base}/bench/floor", None)
        first_frame(browser, f"{base}/bench/library", None)
        if breakdown:
            first_frame(browser, f"{base}/bench/room-library?name=guest", None)
        for _ in range(runs):
            results["rtcroom"].append(
                first_frame(browser, f"{base}/r/bench?name=guest", FIRST_FRAME_PROBE)
            )
            results["floor"].append(first_frame(browser, f"{base}/bench/floor", None))
            results["client library alone"].append(
                first_frame(browser, f"{base}/bench/library", None)
            )
            if breakdown:
                results["room page, library script"].append(
                    first_frame(browser, f"{base}/bench/room-library?name=guest", None)
                )
        browser.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument(
        "--breakdown", action="store_true", help="add the room page with the library's script"
    )
    args = parser.parse_args()
    results = measure(args.runs, args.breakdown)
    rtc, floor = statistics.median(results["rtcroom"]), statistics.median(results["floor"])
    library = statistics.median(results["client library alone"])
    print(f"runs: {args.runs} of each, alternating")
    print("| case | median ms | min ms | max ms |")
    print("|---|---:|---:|---:|")
    for name, samples in results.items():
        print(
            f"| {name} | {statistics.median(samples):.0f} | {min(samples):.0f} | "
            f"{max(samples):.0f} |"
        )
    print(f"ratio rtcroom / floor (medians): {rtc / floor:.2f} (target <= 1.20)")
    print(f"ratio client library alone / floor (medians): {library / floor:.2f}")
    if args.breakdown:
        page = statistics.median(results["room page, library script"])
        print(f"ratio room page, library script / floor (medians): {page / floor:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
