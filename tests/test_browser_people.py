"""What the people in a call see of each other: muted, camera off, hands,
reactions, a recording in progress. In Chromium and Firefox, in a mesh and
in a room served by the SFU, next to Python peers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from browser import (
    ARTIFACT_DIR,
    check_accessibility,
    close,
    enter,
    ms,
    open_call,
    peer_id,
    wait_frames_advancing,
)
from conftest import RunningJanus, RunningServer
from playwright.sync_api import Browser, Page, expect
from test_client_browser import Background, background  # noqa: F401
from test_sfu_browser import sfu_server

from rtcroom.client import Room, Status

pytestmark = pytest.mark.browser

# What the others see must change within a second of the change.
SOON = ms(1_000)


def tile(page: Page, of: Page) -> str:
    """The selector of `of`'s camera tile on `page`."""
    return f'figure.tile[data-peer-id="{peer_id(of)}"]'


def see_each_others_state(ann: Page, bo: Page, initials: str) -> None:
    """Ann mutes, turns her camera off, raises her hand, reacts: Bo sees each within a second."""
    name = ann.evaluate("window.rtcroom.name")
    ann_on_bo = tile(bo, ann)
    expect(bo.locator(ann_on_bo)).to_be_visible()
    expect(bo.locator(f"{ann_on_bo} .tile-media")).to_have_text("")
    expect(bo.locator(f"{ann_on_bo} .avatar")).to_be_hidden()

    ann.keyboard.press("m")
    expect(bo.locator(f"{ann_on_bo} .tile-media")).to_have_text("muted", timeout=SOON)
    ann.click("#toggle-camera")
    expect(bo.locator(f"{ann_on_bo} .tile-media")).to_have_text("muted · camera off", timeout=SOON)
    # A dark tile with her initials and her name, not a black one.
    expect(bo.locator(f"{ann_on_bo} .avatar")).to_be_visible(timeout=SOON)
    expect(bo.locator(f"{ann_on_bo} .avatar")).to_have_text(initials)
    expect(bo.locator(f"{ann_on_bo} figcaption")).to_have_text(name)
    expect(bo.locator(f"{ann_on_bo} video")).to_be_hidden()
    # Her own page says the same of her own tile.
    expect(ann.locator("figure.local .tile-media")).to_have_text("muted · camera off")

    ann.click("#toggle-hand")
    expect(ann.locator("#toggle-hand")).to_have_text("Lower hand")
    expect(bo.locator(f"{ann_on_bo} .tile-hand")).to_have_text("✋ hand raised", timeout=SOON)
    expect(bo.locator("#announcer")).to_have_text(f"{name} raised their hand.", timeout=SOON)
    check_accessibility(bo, "a raised hand")

    ann.click("#open-reactions")
    expect(ann.locator("#reactions")).to_be_visible()
    ann.click('#reactions button[aria-label="React with applause"]')
    expect(ann.locator("#reactions")).to_be_hidden()
    expect(bo.locator(f"{ann_on_bo} .reaction")).to_have_text("👏", timeout=SOON)
    expect(bo.locator("#announcer")).to_have_text(f"{name} reacted 👏", timeout=SOON)
    expect(ann.locator("figure.local .reaction")).to_have_text("👏")

    # Back on: the tile shows her picture again; the hand goes down.
    ann.keyboard.press("m")
    ann.click("#toggle-camera")
    ann.keyboard.press("h")
    expect(bo.locator(f"{ann_on_bo} .tile-media")).to_have_text("", timeout=SOON)
    expect(bo.locator(f"{ann_on_bo} .tile-hand")).to_have_text("", timeout=SOON)
    expect(bo.locator(f"{ann_on_bo} video")).to_be_visible()


def ann_and_bo(
    request: pytest.FixtureRequest, engine: str, server: RunningServer, room: str, ann: str = "Ann"
) -> tuple[Page, Page]:
    """Ann in the browser under test (`engine`), Bo in Chromium, in `room`: both ways across browsers."""
    browser: Browser = request.getfixturevalue(engine)
    chromium: Browser = request.getfixturevalue("chromium")
    return open_call(browser, server.url, room, ann), open_call(chromium, server.url, room, "Bo")


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_each_sees_the_others_mute_camera_hand_and_reactions(
    request: pytest.FixtureRequest, engine: str, chromium: Browser, server: RunningServer
) -> None:
    ann, bo = ann_and_bo(request, engine, server, f"people-{engine}", "Ann Lee")
    see_each_others_state(ann, bo, "AL")
    see_each_others_state(bo, ann, "B")
    close(ann)
    close(bo)


def test_state_travels_in_a_room_served_by_the_sfu(
    chromium: Browser, start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus, "--sfu-from", "1")
    ann = open_call(chromium, server.url, "people-sfu", "Ann Lee")
    bo = open_call(chromium, server.url, "people-sfu", "Bo")
    assert ann.evaluate("window.rtcroom.mode") == "sfu"
    see_each_others_state(ann, bo, "AL")
    close(ann)
    close(bo)


def test_a_recorder_in_the_room_is_shown_to_everyone(
    chromium: Browser,
    server: RunningServer,
    background: Background,  # noqa: F811
) -> None:
    ann = open_call(chromium, server.url, "recorded", "Ann")
    bo = open_call(chromium, server.url, "recorded", "Bo")
    for page in (ann, bo):
        expect(page.locator("#recording")).to_be_hidden()
    recorder = Status(mic="none", camera="none", kind="recorder")
    rec: Room = background.run(Room.join(server.url, "recorded", "Minutes", state=recorder))
    for page in (ann, bo):
        expect(page.locator("#recording")).to_have_text(
            "Recording: this call is recorded by Minutes", timeout=SOON
        )
        expect(page.locator("#announcer")).to_have_text(
            "Minutes joined. This call is being recorded by Minutes.", timeout=SOON
        )
        # Its tile says what it is, on a dark tile with its initials.
        expect(page.locator('figure.tile[data-kind="recorder"] .tile-kind')).to_have_text(
            "recording"
        )
        expect(page.locator('figure.tile[data-kind="recorder"] .avatar')).to_have_text("M")
    check_accessibility(ann, "the recording banner")
    # A page that joins later sees it at once.
    cy = open_call(chromium, server.url, "recorded", "Cy")
    expect(cy.locator("#recording")).to_be_visible()
    background.run(rec.leave())
    for page in (ann, bo, cy):
        expect(page.locator("#recording")).to_be_hidden(timeout=ms(2_000))
        expect(page.locator("#announcer")).to_have_text(
            "Minutes left. The recording stopped.", timeout=ms(2_000)
        )
    for page in (ann, bo, cy):
        close(page)


def test_a_bot_shows_as_a_bot_and_can_say_it_is_muted(
    chromium: Browser,
    server: RunningServer,
    background: Background,  # noqa: F811
) -> None:
    from rtcroom.commands.media import PatternTrack

    ann = open_call(chromium, server.url, "botstate", "Ann")
    bot: Room = background.run(
        Room.join(server.url, "botstate", "Pattern", tracks=[PatternTrack()])
    )
    bot_tile = 'figure.tile[data-kind="bot"]'
    expect(ann.locator(f"{bot_tile} .tile-kind")).to_have_text("bot")
    # It sends no sound: there is no microphone to be muted.
    expect(ann.locator(f"{bot_tile} .tile-media")).to_have_text("")
    background.run(bot.set_state(camera="off", hand=True))
    expect(ann.locator(f"{bot_tile} .tile-media")).to_have_text("camera off", timeout=SOON)
    expect(ann.locator(f"{bot_tile} .tile-hand")).to_have_text("✋ hand raised", timeout=SOON)
    background.run(bot.leave())
    close(ann)


# getUserMedia refused until the person allows it (window.allowCamera).
REFUSED_UNTIL_ALLOWED = """
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => window.allowCamera
  ? realGetUserMedia(constraints)
  : Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


def test_a_refused_camera_is_explained_and_tried_again_without_reloading(
    chromium: Browser, server: RunningServer
) -> None:
    bo = open_call(chromium, server.url, "allow", "Bo")
    context = chromium.new_context(permissions=["camera", "microphone"])
    context.add_init_script(REFUSED_UNTIL_ALLOWED)
    ann = context.new_page()
    ann.goto(f"{server.url}/r/allow?name=Ann")
    expect(ann.locator("#prejoin-note")).to_contain_text("Camera and microphone access is blocked")
    expect(ann.locator("#prejoin-note")).to_contain_text("Allow it")
    expect(ann.locator("#prejoin-camera-on")).to_be_disabled()
    check_accessibility(ann, "camera refused before joining")
    # The person allows the camera in the browser, then tries again: no reload.
    ann.evaluate("window.allowCamera = true")
    ann.click("#prejoin-retry")
    expect(ann.locator("#prejoin-note")).to_be_hidden()
    expect(ann.locator("#prejoin-retry")).to_be_hidden()
    ann.wait_for_function("document.getElementById('preview').readyState >= 2")
    expect(ann.locator("#prejoin-camera")).not_to_be_disabled()
    enter(ann)
    ann.wait_for_selector("body[data-joined=true]")
    wait_frames_advancing(bo, {peer_id(ann)})
    close(ann)
    close(bo)


def test_choices_before_joining_are_what_the_others_see_and_are_remembered(
    chromium: Browser, server: RunningServer
) -> None:
    bo = open_call(chromium, server.url, "chosen", "Bo")
    context = chromium.new_context(permissions=["camera", "microphone"])
    ann = context.new_page()
    ann.goto(f"{server.url}/r/chosen")
    # The preview plays; the microphone's level moves (the fake microphone beeps).
    ann.wait_for_function("document.getElementById('preview').readyState >= 2")
    ann.wait_for_function("document.getElementById('mic-level').value > 0.05")
    expect(ann.locator("#prejoin-camera option")).not_to_have_count(0)
    ann.fill("#prejoin-name", "Ann Lee")
    ann.uncheck("#prejoin-camera-on")
    expect(ann.locator("#preview-tile .avatar")).to_have_text("AL")
    expect(ann.locator("#preview-tile .avatar")).to_be_visible()
    ann.uncheck("#prejoin-mic-on")
    assert ann.evaluate("document.getElementById('mic-level').value") == 0
    enter(ann)
    ann.wait_for_selector("body[data-joined=true]")
    # Bo never sees her otherwise: her join says so.
    ann_on_bo = f'figure.tile[data-peer-id="{peer_id(ann)}"]'
    expect(bo.locator(f"{ann_on_bo} .tile-media")).to_have_text("muted · camera off")
    expect(ann.locator("#toggle-mic")).to_have_text("Unmute")
    expect(ann.locator("#toggle-camera")).to_have_text("Camera on")
    # The next time, in the same browser: the name and the choices are remembered.
    again = context.new_page()
    again.goto(f"{server.url}/r/chosen")
    expect(again.locator("#prejoin-name")).to_have_value("Ann Lee")
    expect(again.locator("#prejoin-mic-on")).not_to_be_checked()
    expect(again.locator("#prejoin-camera-on")).not_to_be_checked()
    again.close()
    close(ann)
    close(bo)


def on_stage(page: Page) -> str:
    """The peer id (or "screen:<id>") of the tile on `page`'s stage, "" when none."""
    value: str = page.evaluate(
        """() => {
          const tile = document.querySelector("#grid > figure.on-stage");
          if (!tile) return "";
          const screen = tile.querySelector("video[data-screen]");
          return screen ? `screen:${screen.dataset.screen}` : tile.dataset.peerId ?? "local";
        }"""
    )
    return value


def wait_on_stage(page: Page, expected: str, timeout: float = 30.0) -> None:
    page.wait_for_function(
        """(expected) => {
          const tile = document.querySelector("#grid > figure.on-stage");
          const screen = tile?.querySelector("video[data-screen]");
          return (screen ? `screen:${screen.dataset.screen}` : tile?.dataset.peerId) === expected;
        }""",
        arg=expected,
        timeout=ms(timeout * 1000),
    )


def test_speaker_view_follows_the_speaker_a_pin_holds_and_a_screen_takes_the_stage(
    chromium: Browser, server: RunningServer
) -> None:
    ann = open_call(chromium, server.url, "stage", "Ann")
    bo = open_call(chromium, server.url, "stage", "Bo")
    cy = open_call(chromium, server.url, "stage", "Cy")
    wait_frames_advancing(bo, {peer_id(ann), peer_id(cy)})
    expect(bo.locator("#toggle-layout")).to_have_text("Speaker view")
    bo.click("#toggle-layout")
    expect(bo.locator("#toggle-layout")).to_have_text("Grid view")
    expect(bo.locator("#grid")).to_have_class("grid speaker")
    # Only Cy's microphone is on: Cy takes the stage; then only Ann's.
    ann.click("#toggle-mic")
    wait_on_stage(bo, peer_id(cy))
    check_accessibility(bo, "speaker view")
    cy.click("#toggle-mic")
    ann.click("#toggle-mic")
    wait_on_stage(bo, peer_id(ann))
    # Pinned, Cy stays on the stage while Ann speaks.
    cy_tile = f'#grid > figure[data-peer-id="{peer_id(cy)}"]'
    bo.click(f"{cy_tile} .pin")
    expect(bo.locator(f"{cy_tile} .pin")).to_have_attribute("aria-pressed", "true")
    wait_on_stage(bo, peer_id(cy), timeout=2)
    bo.wait_for_timeout(3000)
    assert on_stage(bo) == peer_id(cy)
    bo.click(f"{cy_tile} .pin")
    wait_on_stage(bo, peer_id(ann))
    # Back to the grid; Ann shares her screen: it takes the stage.
    bo.click("#toggle-layout")
    expect(bo.locator("#grid")).not_to_have_class("grid speaker")
    assert on_stage(bo) == ""
    ann.click("#toggle-screen")
    wait_on_stage(bo, f"screen:{peer_id(ann)}")
    expect(bo.locator("#toggle-layout")).to_have_text("Grid view")
    ann.click("#toggle-screen")
    wait_on_stage(bo, peer_id(ann))
    for page in (ann, bo, cy):
        close(page)


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_in_a_call_of_two_your_video_is_small_movable_and_can_be_hidden(
    request: pytest.FixtureRequest, engine: str, chromium: Browser, server: RunningServer
) -> None:
    ann, bo = ann_and_bo(request, engine, server, f"two-{engine}")
    wait_frames_advancing(ann, {peer_id(bo)})
    expect(ann.locator("#grid")).to_have_class("grid one-to-one")
    own = ann.locator("#grid > figure.local")
    other = ann.locator(f'#grid > figure[data-peer-id="{peer_id(bo)}"]')
    own_box, other_box = own.bounding_box(), other.bounding_box()
    assert own_box and other_box
    # Small, over the other person's video, in the bottom right corner.
    assert own_box["width"] * own_box["height"] < other_box["width"] * other_box["height"] / 8
    assert own_box["x"] > other_box["x"] + other_box["width"] / 2
    assert own_box["y"] > other_box["y"] + other_box["height"] / 2
    ann.click('button[aria-label="Move your video to another corner"]')
    expect(own).to_have_attribute("data-corner", "bottom-left")
    moved = own.bounding_box()
    assert moved and moved["x"] < other_box["x"] + other_box["width"] / 2
    ann.click('button[aria-label="Hide your video"]')
    expect(own).to_be_hidden()
    expect(ann.locator("#show-self")).to_be_focused()
    # Hidden from us only: Bo still sees Ann.
    wait_frames_advancing(bo, {peer_id(ann)})
    ann.keyboard.press("Enter")
    expect(own).to_be_visible()
    expect(ann.locator("#show-self")).to_be_hidden()
    # A third person: back to a grid of equals.
    cy = open_call(chromium, server.url, f"two-{engine}", "Cy")
    expect(ann.locator("#grid")).not_to_have_class("grid one-to-one")
    for page in (ann, bo, cy):
        close(page)


# What the microphone track was asked for, and (Chromium) what it does:
# Firefox's fake microphone has no sound processing to turn on or off.
AUDIO_ASKED = "(name) => window.rtcroom.localStream?.getAudioTracks()[0]?.getConstraints()[name]"
AUDIO_SETTING = "(name) => window.rtcroom.localStream?.getAudioTracks()[0]?.getSettings()[name]"


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_noise_suppression_echo_cancellation_and_auto_gain_are_settings(
    request: pytest.FixtureRequest, engine: str, chromium: Browser, server: RunningServer
) -> None:
    ann, bo = ann_and_bo(request, engine, server, f"sound-{engine}")
    # On by default.
    for name in ("noiseSuppression", "echoCancellation", "autoGainControl"):
        assert ann.evaluate(AUDIO_ASKED, name) is True, name
        if engine == "chromium":
            assert ann.evaluate(AUDIO_SETTING, name) is True, name
    ann.click("#open-settings")
    expect(ann.locator("#sound-noiseSuppression")).to_be_checked()
    ann.uncheck("#sound-noiseSuppression")
    ann.wait_for_function(f"() => ({AUDIO_ASKED})('noiseSuppression') === false")
    assert ann.evaluate(AUDIO_ASKED, "echoCancellation") is True
    if engine == "chromium":
        assert ann.evaluate(AUDIO_SETTING, "noiseSuppression") is False
        assert ann.evaluate(AUDIO_SETTING, "echoCancellation") is True
    ann.keyboard.press("Escape")
    # The call goes on with the new microphone track: Bo still hears Ann.
    heard = """async (peer) => {
      const stats = await window.rtcroom.peers.get(peer).pc.getStats();
      return [...stats.values()].filter((s) => s.type === "inbound-rtp" && s.kind === "audio")
        .reduce((sum, s) => sum + s.bytesReceived, 0);
    }"""
    before = bo.evaluate(heard, peer_id(ann))
    bo.wait_for_function(f"async () => ({heard})({peer_id(ann)!r}) > {before} + 2000")
    # Remembered: the next call in this browser starts without it.
    again = ann.context.new_page()
    again.goto(f"{server.url}/r/sound2-{engine}?name=Ann")
    enter(again)
    again.wait_for_selector("body[data-joined=true]")
    assert again.evaluate(AUDIO_ASKED, "noiseSuppression") is False
    again.click("#open-settings")
    expect(again.locator("#sound-noiseSuppression")).not_to_be_checked()
    for page in (ann, bo, again):
        close(page)


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_screenshots_of_the_people_in_a_call(
    request: pytest.FixtureRequest,
    engine: str,
    chromium: Browser,
    server: RunningServer,
    background: Background,  # noqa: F811
) -> None:
    """The README's screenshots: the step before joining, a call with muted,
    camera-off and hand-raised people and a recorder, the speaker view, an end."""
    browser: Browser = request.getfixturevalue(engine)
    prefix = "" if engine == "chromium" else "firefox-"
    ARTIFACT_DIR.mkdir(exist_ok=True)
    room = f"team-{engine}"
    ann = open_call(chromium, server.url, room, "Ann Lee")
    cy = open_call(chromium, server.url, room, "Cy Young")
    context = browser.new_context(
        permissions=["camera", "microphone"], viewport={"width": 1280, "height": 720}
    )
    context.set_default_timeout(ms(30_000))
    bo = context.new_page()
    bo.goto(f"{server.url}/r/{room}?name=Bo")
    bo.wait_for_function("document.getElementById('preview').readyState >= 2")
    expect(bo.locator("#prejoin-given")).to_have_text("You join as Bo.")
    bo.screenshot(path=str(ARTIFACT_DIR / f"{prefix}prejoin.png"))
    enter(bo)
    bo.wait_for_selector("body[data-joined=true]")
    wait_frames_advancing(bo, {peer_id(ann), peer_id(cy)})
    rec: Room = background.run(
        Room.join(
            server.url, room, "Minutes", state=Status(mic="none", camera="none", kind="recorder")
        )
    )
    ann.click("#toggle-mic")
    ann.click("#toggle-camera")
    cy.click("#toggle-hand")
    expect(bo.locator(f"{tile(bo, ann)} .tile-media")).to_have_text("muted · camera off")
    expect(bo.locator(f"{tile(bo, cy)} .tile-hand")).to_have_text("✋ hand raised")
    expect(bo.locator("#recording")).to_be_visible()
    bo.click("#open-reactions")
    bo.click('#reactions button[aria-label="React with celebration"]')
    bo.screenshot(path=str(ARTIFACT_DIR / f"{prefix}people.png"))
    bo.click("#toggle-layout")
    bo.click(f"{tile(bo, cy)} .pin")
    wait_on_stage(bo, peer_id(cy))
    bo.wait_for_timeout(1000)
    bo.screenshot(path=str(ARTIFACT_DIR / f"{prefix}speaker-view.png"))
    bo.click("#leave")
    expect(bo.locator("#end-title")).to_have_text("You left the call")
    bo.screenshot(path=str(ARTIFACT_DIR / f"{prefix}end.png"))
    background.run(rec.leave())
    for page in (ann, cy, bo):
        close(page)


def test_a_poor_connection_is_shown_to_the_others_and_clears(
    chromium: Browser, server: RunningServer
) -> None:
    """A slow, lossy test network: each page measures it on its own
    calls and the others see "poor connection" on its tile; then it clears."""
    if os.environ.get("RTCROOM_NETNS") != "1":
        raise RuntimeError("this test shapes the test network: run it in scripts/netns")
    ann = open_call(chromium, server.url, "lossy", "Ann")
    bo = open_call(chromium, server.url, "lossy", "Bo")
    wait_frames_advancing(bo, {peer_id(ann)})
    quality = bo.locator(f"{tile(bo, ann)} .tile-connection")
    expect(quality).to_have_text("")
    # The test network (all of it goes through lo) squeezed to 200 kbit/s: the
    # calls' packets queue up to a second and the rest are dropped.
    shape = ["tbf", "rate", "200kbit", "burst", "16kbit", "latency", "1s"]
    subprocess.run(["tc", "qdisc", "add", "dev", "lo", "root", *shape], check=True)
    try:
        expect(quality).to_have_text("poor connection", timeout=ms(20_000))
        expect(ann.locator("#grid figure.local .tile-connection")).to_have_text("poor connection")
    finally:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=True)
    expect(quality).to_have_text("", timeout=ms(20_000))
    close(ann)
    close(bo)


# Every track the page holds, from any <video> or the client: none may be live after an end.
LIVE_TRACKS = """() => {
  const tracks = new Set(window.rtcroom?.localStream?.getTracks() ?? []);
  for (const video of document.querySelectorAll("video")) {
    for (const track of video.srcObject?.getTracks() ?? []) tracks.add(track);
  }
  return [...tracks].filter((track) => track.readyState === "live").length;
}"""

# And the preview's tracks, kept by the step before joining (window.rtcroomEarlyMedia).
EARLY_TRACKS_LIVE = """async () => {
  const stream = await window.rtcroomEarlyMedia?.catch(() => null);
  return (stream?.getTracks() ?? []).filter((track) => track.readyState === "live").length;
}"""


def ended(page: Page, title: str, reason: str) -> None:
    """The end screen, in words, with camera and microphone released."""
    expect(page.locator("#end-title")).to_have_text(title)
    expect(page.locator("#end-reason")).to_have_text(reason)
    expect(page.locator("#end-title")).to_be_focused()
    page.wait_for_function(f"() => ({LIVE_TRACKS})() === 0")
    assert page.evaluate(EARLY_TRACKS_LIVE) == 0
    expect(page.locator("#grid")).to_be_hidden()


def test_every_end_says_what_happened_releases_the_camera_and_offers_what_next(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    from test_admin import SECRET
    from test_admin import call as admin_call
    from test_admin import token as admin_token

    server = start_server("--auth-secret", SECRET, "--max-peers", "2")
    grants = ("publish", "subscribe", "data")
    ann = open_call(
        chromium, server.url, "ends", "Ann", query={"token": admin_token("ends", "a", *grants)}
    )
    bo = open_call(
        chromium, server.url, "ends", "Bo", query={"token": admin_token("ends", "b", *grants)}
    )

    # Refused: the room is full. Back to the lobby, this room filled in.
    late = chromium.new_context(permissions=["camera", "microphone"]).new_page()
    late.goto(f"{server.url}/r/ends?name=Cy&token={admin_token('ends', 'c', *grants)}")
    enter(late)
    ended(late, "You could not join", "This room is full. Try another room or come back later.")
    check_accessibility(late, "end screen: refused")
    late.click("#to-lobby")
    late.wait_for_url(f"{server.url}/?room=ends")
    late.context.close()

    # Refused: a link for another room.
    wrong = chromium.new_context(permissions=["camera", "microphone"]).new_page()
    wrong.goto(f"{server.url}/r/ends?name=Cy&token={admin_token('elsewhere', 'c', *grants)}")
    enter(wrong)
    ended(
        wrong,
        "You could not join",
        "Your link does not let you into this room (it may have expired). Ask for a new one.",
    )
    wrong.context.close()

    # The room closed by a moderator: both pages end; Rejoin works again.
    status, _, _ = admin_call(server, "POST", "/rooms/ends/close", body={})
    assert status == 200
    for page in (ann, bo):
        ended(page, "You were removed from the call", "The room was closed by a moderator.")
    with ann.expect_navigation():
        ann.click("#rejoin")
    ann.wait_for_selector("body[data-joined=true]")
    expect(ann.locator("#grid figure.local")).to_be_visible()
    close(ann)
    close(bo)
