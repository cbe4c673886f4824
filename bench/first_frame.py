"""Time from opening a room link to the first decoded remote frame, against a floor.

rtcroom: a host page waits in a room; a fresh browser context opens the room
link that joins at once (?prejoin=0, a kiosk's or an embedding site's); we
record when its first remote video frame is presented
(requestVideoFrameCallback), in ms since navigation start.

rtcroom, from Join: the link as people get it, with the step before joining;
once its preview plays and a second has passed (a person looks at it), the
time from the click on "Join" to the first remote frame. The page is ready
before the click (socket open, modules loaded, camera running): the target
is the floor or less.

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

With --marks, the median time of each step instead, on the guest's clock:
the guest's socket, join, offer, answer, connection, first packets and
frame, and the host's (the guest announced, the offer in, the answer out,
connected, the guest's first packets and frame).

    scripts/netns python bench/first_frame.py --runs 15 [--breakdown] [--marks]

(scripts/netns gives a private network: nothing leaves the machine.)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

from harness import launch, rtcroom_server
from playwright.sync_api import Browser, Page, sync_playwright

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

# The floor with rtcroom's start bitrate (--breakdown): the answer that the
# sending connection applies asks for 1.5 Mbps on VP8 (the format the two
# agree on), as the client library's descriptions do (withStartBitrate in
# rtcroom.js). rtcroom against it is rtcroom's cost without that advantage.
FAST_START = "a=fmtp:96 x-google-start-bitrate=1500"
FLOOR_FAST_START_PAGE = FLOOR_PAGE.replace(
    "await a.setRemoteDescription(b.localDescription);",
    "const sdp = b.localDescription.sdp.replace("
    f"'a=rtpmap:96 VP8/90000\\r\\n', '$&{FAST_START}\\r\\n');\n"
    f"if (!sdp.includes('{FAST_START}')) console.log('first-frame VP8 is not format 96 here');\n"
    "await a.setRemoteDescription({type: 'answer', sdp});",
)

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
    path_room = (
        'decodeURIComponent(location.pathname.slice(base.length).replace(/^\\/r\\//, "")'
        '.replace(/\\/$/, ""))'
    )
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


# With --marks: when each step of the call setup happens, in ms since the
# page's navigation (wrappers around WebSocket, getUserMedia and
# RTCPeerConnection). The same script runs in the guest, whose first presented
# remote frame logs its steps, and in the host, whose steps measure() reads
# after each sample (window.rtcroomBenchMarks), named "host: ..."; each page's
# time origin puts them on the guest's clock. The wrappers cost the pages a
# little: these runs are separate from the timed ones.
MARKS = """
(() => {
  const marks = window.rtcroomBenchMarks = {};
  const mark = (step) => {
    const name = PREFIX + step;
    if (!(name in marks)) marks[name] = performance.now();
  };
  const NativeSocket = window.WebSocket;
  window.WebSocket = class extends NativeSocket {
    constructor(...args) {
      super(...args);
      mark("socket created");
      this.addEventListener("open", () => mark("socket open"));
      this.addEventListener("message", ({data}) => {
        const message = JSON.parse(data);
        if (message.type === "joined") mark("joined handled by the page");
        if (message.type === "peer-joined") mark("peer announced");
        if (message.type === "signal" && message.data.description) {
          mark(`${message.data.description.type} arrives`);
        }
      });
    }
    send(data) {
      const message = JSON.parse(data);
      if (message.type === "join") mark("join sent");
      if (message.type === "signal" && message.data.description) {
        mark(`${message.data.description.type} sent`);
      }
      super.send(data);
    }
  };
  const media = navigator.mediaDevices;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => {
    mark("getUserMedia called");
    const promise = getUserMedia(constraints);
    promise.then(() => mark("getUserMedia resolved"), () => {});
    return promise;
  };
  window.RTCPeerConnection = class extends RTCPeerConnection {
    constructor(...args) {
      super(...args);
      mark("peer connection created");
      this.addEventListener("connectionstatechange", () => mark(`connection ${this.connectionState}`));
      // A remote track unmutes when its first packets arrive.
      this.addEventListener("track", ({track}) => {
        track.addEventListener("unmute", () => mark(`first ${track.kind} packets`), {once: true});
      });
    }
  };
  document.addEventListener("DOMContentLoaded", () => mark("DOMContentLoaded (modules ran)"));
  const request = HTMLVideoElement.prototype.requestVideoFrameCallback;
  HTMLVideoElement.prototype.requestVideoFrameCallback = function (callback) {
    return request.call(this, (...args) => {
      mark("first remote frame");
      console.log(`marks ${JSON.stringify({...marks, timeOrigin: performance.timeOrigin})}`);
      callback(...args);
    });
  };
})();
"""


def marks_script(prefix: str = "") -> str:
    """MARKS for one page, its steps' names starting with `prefix`."""
    return MARKS.replace("PREFIX", json.dumps(prefix))


# The host's steps so far and its time origin; then forget them, for the next sample.
HOST_STEPS = """() => {
  const marks = {...window.rtcroomBenchMarks};
  for (const name in window.rtcroomBenchMarks) delete window.rtcroomBenchMarks[name];
  return [marks, performance.timeOrigin];
}"""


def open_and_wait(browser: Browser, url: str, scripts: list[str], prefix: str) -> str:
    """Open `url` in a fresh context with `scripts` injected; the text after
    `prefix` of the first console line that starts with it.

    The page logs to the console: waiting for that adds nothing to the page
    (polling with page.wait_for_function would inject Playwright's script
    into it, about 10 ms of main-thread work in the middle of the call setup).
    """
    context = browser.new_context(permissions=["camera", "microphone"])
    for script in scripts:
        context.add_init_script(script)
    page = context.new_page()
    with page.expect_console_message(
        lambda message: message.text.startswith(prefix), timeout=30_000
    ) as message:
        page.goto(url, wait_until="commit")
    text: str = message.value.text[len(prefix) :]
    context.close()
    return text


def from_join(browser: Browser, url: str, scripts: list[str]) -> float:
    """ms from the click on "Join" to the first remote frame, the step before
    joining set up (its preview playing) and looked at for a second."""
    context = browser.new_context(permissions=["camera", "microphone"])
    for script in scripts:
        context.add_init_script(script)
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("document.getElementById('preview')?.readyState >= 2")
    page.wait_for_timeout(1000)
    with page.expect_console_message(
        lambda message: message.text.startswith("first-frame "), timeout=30_000
    ) as message:
        clicked = page.evaluate(
            "() => { const t = performance.now(); document.getElementById('prejoin-join').click(); return t; }"
        )
    frame = float(message.value.text[len("first-frame ") :])
    context.close()
    return frame - clicked


def open_host(browser: Browser, base: str, scripts: tuple[str, ...] = ()) -> Page:
    """The call page that every case's guest joins (room "bench"), set up."""
    context = browser.new_context(permissions=["camera", "microphone"])
    for script in scripts:
        context.add_init_script(script)
    host = context.new_page()
    host.goto(f"{base}/r/bench?name=host&prejoin=0")
    host.wait_for_selector("body[data-joined=true]", state="attached")
    return host


def measure(runs: int, breakdown: bool = False, marks: bool = False) -> dict[str, list[Any]]:
    """Each case's samples, `runs` rounds of alternating cases after one
    warm-up each: times to the first frame, or with `marks` the steps' times."""
    cases = {
        "rtcroom": ("/r/bench?name=guest&prejoin=0", FIRST_FRAME_PROBE),
        "rtcroom, from Join": ("/r/bench?name=guest", FIRST_FRAME_PROBE),
        "floor": ("/bench/floor", None),
        "client library alone": ("/bench/library", None),
    }
    pages = {"/bench/floor": FLOOR_PAGE, "/bench/library": LIBRARY_PAGE}
    if marks:
        del cases["rtcroom, from Join"]  # its marks would be on the step's clock
    if breakdown:
        cases["room page, library script"] = ("/bench/room-library?name=guest", None)
        pages["/bench/room-library"] = room_page_with_library()
        cases["floor, same start bitrate"] = ("/bench/floor-fast-start", None)
        pages["/bench/floor-fast-start"] = FLOOR_FAST_START_PAGE

    def sample(browser: Browser, url: str, probe: str | None) -> float | dict[str, float]:
        """ms from navigation to the first remote frame, or with `marks` each step's."""
        scripts = [probe] if probe else []
        if marks:
            host.evaluate(HOST_STEPS)  # what the host did before this sample
            marked: dict[str, float] = json.loads(
                open_and_wait(browser, url, [marks_script(), *scripts], "marks ")
            )
            origin = marked.pop("timeOrigin")
            host_marks, host_origin = host.evaluate(HOST_STEPS)
            for step, time in host_marks.items():
                marked[step] = time + host_origin - origin
            return marked
        if "prejoin=0" not in url and url.startswith(base + "/r/"):
            return from_join(browser, url, scripts)
        return float(open_and_wait(browser, url, scripts, "first-frame "))

    results: dict[str, list[Any]] = {name: [] for name in cases}
    with rtcroom_server(pages) as base, sync_playwright() as playwright:
        browser = launch(playwright)
        host = open_host(browser, base, (marks_script("host: "),) if marks else ())
        # One warm-up of each, not counted (first JIT, first codec init).
        for path, probe in cases.values():
            sample(browser, base + path, probe)
        for _ in range(runs):
            for name, (path, probe) in cases.items():
                results[name].append(sample(browser, base + path, probe))
        browser.close()
    return results


def print_marks(results: dict[str, list[dict[str, float]]]) -> None:
    """Median time of each step per case, in the order of rtcroom's medians."""
    steps: list[str] = []
    for samples in results.values():
        for marked in samples:
            steps += [step for step in marked if step not in steps]
    medians = {
        name: {
            step: statistics.median(times)
            for step in steps
            if (times := [marked[step] for marked in samples if step in marked])
        }
        for name, samples in results.items()
    }
    steps.sort(key=lambda step: medians["rtcroom"].get(step, float("inf")))
    print("| step (median ms since navigation) | " + " | ".join(results) + " |")
    print("|---|" + "---:|" * len(results))
    for step in steps:
        cells = [f"{medians[name][step]:.0f}" if step in medians[name] else "-" for name in results]
        print(f"| {step} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument(
        "--breakdown", action="store_true", help="add the room page with the library's script"
    )
    parser.add_argument(
        "--marks", action="store_true", help="when each step of the setup happens, per case"
    )
    args = parser.parse_args()
    if args.marks:
        print(f"runs: {args.runs} of each, alternating")
        print_marks(measure(args.runs, args.breakdown, marks=True))
        return
    results: dict[str, list[float]] = measure(args.runs, args.breakdown)
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
    joined = statistics.median(results["rtcroom, from Join"])
    print(f"ratio rtcroom from Join / floor (medians): {joined / floor:.2f} (target <= 1.00)")
    print(f"ratio client library alone / floor (medians): {library / floor:.2f}")
    if args.breakdown:
        page = statistics.median(results["room page, library script"])
        print(f"ratio room page, library script / floor (medians): {page / floor:.2f}")
        fast = statistics.median(results["floor, same start bitrate"])
        print(f"ratio rtcroom / floor with the same start bitrate (medians): {rtc / fast:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
