"""The web app's user-facing behaviour: lobby, links, receive-only, errors in plain words."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from browser import NO_DEVICES, close, enter, ms, open_call, peer_id, wait_frames_advancing
from conftest import RunningServer, free_port
from playwright.sync_api import Browser, Page, expect
from test_admin import SECRET as ADMIN_SECRET
from test_admin import call as admin_call
from test_admin import token as admin_token

from rtcroom.auth import ALL_GRANTS, mint_token

pytestmark = pytest.mark.browser

REFUSE_MEDIA = """
navigator.mediaDevices.getUserMedia = () =>
  Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


def test_lobby_suggests_a_room_and_joins_by_link(chromium: Browser, server: RunningServer) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/")
    suggested = page.input_value("#room")
    assert suggested
    page.fill("#name", "Ada")
    page.click("#join")
    # The name from the lobby: the step before joining says it, asks nothing.
    expect(page.locator("#prejoin-given")).to_have_text("You join as Ada.")
    expect(page.locator("#prejoin-name")).to_be_hidden()
    enter(page)
    page.wait_for_selector("body[data-joined=true]")
    assert page.url == f"{server.url}/r/{suggested}?name=Ada"
    expect(page.locator("#room-name")).to_have_text(suggested)
    expect(page.locator("figure.local figcaption")).to_have_text("Ada (you)")
    # The invite link is the room link without the name.
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.click("#copy-link")
    expect(page.locator("#status")).to_have_text("Invite link copied")
    assert page.evaluate("navigator.clipboard.readText()") == f"{server.url}/r/{suggested}"
    context.close()


def test_link_without_name_asks_for_it(chromium: Browser, server: RunningServer) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/r/asking")
    expect(page.locator("#prejoin-name")).to_be_visible()
    time.sleep(1.5)  # a person takes a while to type: longer than the page's setup
    # "Join" without a name asks for one, and joins nobody.
    page.click("#prejoin-join")
    expect(page.locator("#prejoin-name")).to_be_focused()
    expect(page.locator("#prejoin")).to_be_visible()
    page.fill("#prejoin-name", "Grace")
    page.click("#prejoin-join")
    page.wait_for_selector("body[data-joined=true]")
    expect(page.locator("figure.local figcaption")).to_have_text("Grace (you)")
    expect(page.locator("#status")).to_have_text("Waiting for others…")
    context.close()


def test_invalid_room_is_explained(chromium: Browser, server: RunningServer) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/r/no%20spaces?name=x")
    expect(page.locator("#notice")).to_contain_text("not valid")
    context.close()


def test_receive_only_user_joins_and_sees_others(chromium: Browser, server: RunningServer) -> None:
    sender = open_call(chromium, server.url, "ro", "camera")
    context = chromium.new_context()
    context.add_init_script(REFUSE_MEDIA)
    page = context.new_page()
    page.goto(server.url + "/r/ro?name=viewer")
    enter(page)
    page.wait_for_selector("body[data-joined=true]")
    expect(page.locator("#notice")).to_contain_text("receive-only")
    expect(page.locator("#toggle-mic")).to_be_disabled()
    wait_frames_advancing(page, {peer_id(sender)})
    # The sender sees a tile for the viewer (with no video in it).
    expect(sender.locator(f'video[data-peer-id="{peer_id(page)}"]')).to_have_count(1)
    context.close()
    close(sender)


def test_room_full_is_shown_in_plain_words(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server("--max-peers", "2")
    pages = [open_call(chromium, server.url, "small", f"p{i}") for i in range(2)]
    context = chromium.new_context()
    page = context.new_page()
    page.goto(server.url + "/r/small?name=late")
    enter(page)
    expect(page.locator("#notice")).to_have_text(
        "This room is full. Try another room or come back later."
    )
    expect(page.locator("#status")).to_have_text("Not connected")
    context.close()
    for p in pages:
        close(p)


AUTH_SECRET = "browser-test-secret-0123456789abcdef"


def test_links_with_access_tokens(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    """The page joins with the link's token (sent before the app's modules load)."""
    server = start_server("--auth-secret", AUTH_SECRET)
    speaker = mint_token(AUTH_SECRET, room="talk", identity="s", grants=ALL_GRANTS)
    context = chromium.new_context(permissions=["camera", "microphone"])
    page = context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server.url}/r/talk?name=speaker&token={speaker}")
    enter(page)
    expect(page.locator("#status")).to_have_text("Waiting for others…")
    # One connection: the one the page opened before its modules loaded.
    assert sockets == [server.url.replace("http", "ws") + "/ws"]
    # A link without a token cannot join this call: no such link is offered,
    # the page says how to invite.
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.evaluate("navigator.clipboard.writeText('untouched')")
    expect(page.locator("#copy-link")).to_have_text("How to invite")
    page.click("#copy-link")
    expect(page.locator("#notice")).to_contain_text("each person joins with a link of their own")
    assert page.evaluate("navigator.clipboard.readText()") == "untouched"

    # A viewer's link: in the room, receiving, not asked for a camera.
    viewer = mint_token(AUTH_SECRET, room="talk", identity="v", grants={"subscribe"})
    watcher = open_call(chromium, server.url, "talk", "viewer", query={"token": viewer})
    expect(watcher.locator("#notice")).to_contain_text("You joined as a viewer")
    wait_frames_advancing(watcher, {peer_id(page)})

    # A link for another room, and no token at all: refused in plain words.
    elsewhere = mint_token(AUTH_SECRET, room="other", identity="x", grants=ALL_GRANTS)
    for query in (f"?name=x&token={elsewhere}", "?name=x"):
        context = chromium.new_context()
        refused = context.new_page()
        refused.goto(f"{server.url}/r/talk{query}")
        enter(refused)
        expect(refused.locator("#notice")).to_contain_text(
            "Your link does not let you into this room"
        )
        expect(refused.locator("#status")).to_have_text("Not connected")
        context.close()
    close(watcher)
    close(page)


def test_unreachable_and_lost_server_are_shown(chromium: Browser, server: RunningServer) -> None:
    # The page comes from a server whose signaling is not there: its own
    # origin, where nothing listens, serves the app's files fetched from the
    # running server; the WebSocket then meets a refused connection.
    context = chromium.new_context()
    page = context.new_page()
    dead = f"http://127.0.0.1:{free_port()}"
    page.route(
        dead + "/**",
        lambda route: route.fulfill(
            response=route.fetch(url=route.request.url.replace(dead, server.url))
        ),
    )
    page.goto(dead + "/r/gone?name=x")
    enter(page)
    expect(page.locator("#notice")).to_contain_text("cannot be reached")
    expect(page.locator("#end-title")).to_have_text("The server cannot be reached")
    # A module the page still fetches through the route must not outlive the
    # context (Playwright then fails the next call: "Request context disposed").
    page.unroute_all(behavior="ignoreErrors")
    context.close()

    # Once in a room, losing the server is not the end: the page keeps trying.
    page = open_call(chromium, server.url, "gone", "y")
    server.stop()
    expect(page.locator("#status")).to_have_text("Reconnecting…")
    expect(page.locator("#notice")).to_contain_text(
        "connection to the server was lost", timeout=ms(20_000)
    )
    close(page)


def test_mute_and_camera_buttons(chromium: Browser, server: RunningServer) -> None:
    page = open_call(chromium, server.url, "buttons", "me")
    # Joining does not wait for the camera: on a busy machine it may start
    # after the join. The buttons are about its tracks.
    microphone = "window.rtcroom.localStream?.getAudioTracks()[0]?.enabled"
    page.wait_for_function(f"{microphone} === true")
    page.click("#toggle-mic")
    expect(page.locator("#toggle-mic")).to_have_text("Unmute")
    page.wait_for_function(f"{microphone} === false")
    page.keyboard.press("v")
    expect(page.locator("#toggle-camera")).to_have_text("Camera on")
    expect(page.locator("figure.local")).to_have_class("tile local muted camera-off")
    expect(page.locator("figure.local .tile-media")).to_have_text("muted · camera off")
    page.click("#toggle-mic")
    expect(page.locator("#toggle-mic")).to_have_text("Mute")
    page.wait_for_function(f"{microphone} === true")
    close(page)


SLOW_CAMERA = """
const realGetUserMedia = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) =>
  new Promise((resolve) => setTimeout(resolve, 1500)).then(() => realGetUserMedia(constraints));
"""


@pytest.mark.parametrize("slow", ["newcomer", "first"])
def test_a_camera_that_starts_late_still_reaches_the_others(
    chromium: Browser, server: RunningServer, slow: str
) -> None:
    """Joining does not wait for the camera; its tracks slot in when it starts."""

    def open_slow(name: str) -> Page:
        context = chromium.new_context(permissions=["camera", "microphone"])
        context.add_init_script(SLOW_CAMERA)
        page = context.new_page()
        page.goto(f"{server.url}/r/late?name={name}")
        enter(page)
        page.wait_for_selector("body[data-joined=true]")
        return page

    if slow == "first":
        late = open_slow("late")
        other = open_call(chromium, server.url, "late", "prompt")
    else:
        other = open_call(chromium, server.url, "late", "prompt")
        late = open_slow("late")
    wait_frames_advancing(other, {peer_id(late)})
    wait_frames_advancing(late, {peer_id(other)})
    close(late)
    close(other)


def test_no_camera_or_microphone_is_explained(chromium: Browser, server: RunningServer) -> None:
    context = chromium.new_context()
    context.add_init_script(NO_DEVICES)
    page = context.new_page()
    page.goto(server.url + "/r/nodevice?name=x")
    enter(page)
    page.wait_for_selector("body[data-joined=true]")
    expect(page.locator("#notice")).to_contain_text("No camera or microphone was found")
    expect(page.locator("figure.local .tile-media")).to_have_text("receive-only")
    context.close()


def test_the_web_app_obeys_a_moderators_mute(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server("--auth-secret", ADMIN_SECRET)
    speaker = admin_token("talk", "s", *(ALL_GRANTS - {"admin"}))
    page = open_call(chromium, server.url, "talk", "Sam", query={"token": speaker})
    mic, cam = page.locator("#toggle-mic"), page.locator("#toggle-camera")
    expect(mic).to_have_text("Mute")

    status, _, _ = admin_call(
        server, "POST", f"/rooms/talk/peers/{peer_id(page)}/mute", body={"kind": "audio"}
    )
    assert status == 200
    expect(page.locator("#notice")).to_have_text("Olga muted your microphone.")
    expect(mic).to_have_text("Unmute")
    assert page.evaluate("window.rtcroom.localStream.getAudioTracks()[0].enabled") is False
    # The camera keeps going until asked; the user may unmute.
    expect(cam).to_have_text("Camera off")
    mic.click()
    assert page.evaluate("window.rtcroom.localStream.getAudioTracks()[0].enabled") is True

    admin_call(server, "POST", f"/rooms/talk/peers/{peer_id(page)}/mute", body={"kind": "video"})
    expect(page.locator("#notice")).to_have_text("Olga turned your camera off.")
    expect(cam).to_have_text("Camera on")
    expect(page.locator("figure.local .tile-media")).to_have_text("camera off")

    # Kicked by a moderator: the page says so in the moderator's words.
    admin_call(
        server,
        "POST",
        f"/rooms/talk/peers/{peer_id(page)}/kick",
        body={"reason": "Please rejoin later."},
    )
    expect(page.locator("#notice")).to_have_text("Please rejoin later.")
    close(page)


def test_a_token_link_joins_under_the_tokens_name_without_asking(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server("--auth-secret", ADMIN_SECRET)
    grants = ("publish", "subscribe", "data")
    zoe = mint_token(ADMIN_SECRET, room="named", identity="z", name="Zoë", grants=grants)
    bo = mint_token(ADMIN_SECRET, room="named", identity="b", name="Bo", grants=grants)
    context = chromium.new_context(permissions=["camera", "microphone"])
    context.set_default_timeout(ms(30_000))
    first = context.new_page()
    first.goto(f"{server.url}/r/named?token={zoe}")  # no ?name=: the token's
    enter(first)
    first.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    expect(first.locator("#name-dialog")).to_be_hidden()
    expect(first.locator("figure.local figcaption")).to_have_text("Zoë (you)")
    # A name typed into the link does not win over the token's, on our own tile either.
    second = open_call(chromium, server.url, "named", "Typed", query={"token": bo})
    expect(second.locator("figure.local figcaption")).to_have_text("Bo (you)")
    expect(first.locator("#grid figcaption", has_text="Bo")).to_be_visible()
    expect(second.locator("#grid figcaption", has_text="Zoë")).to_be_visible()
    close(first)
    close(second)


def test_messages_speak_in_one_voice_without_internals(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server("--auth-secret", ADMIN_SECRET)
    token = admin_token("voice", "s", *(ALL_GRANTS - {"admin"}))
    page = open_call(chromium, server.url, "voice", "Sam", query={"token": token})
    env = {**os.environ, "RTCROOM_AUTH_SECRET": ADMIN_SECRET}

    def cli(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "rtcroom", *args, server.url, "voice", peer_id(page)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    # The command's moderator ("moderator", lower case) and the server's
    # default reason ("removed by a moderator") read as sentences.
    cli("mute")
    expect(page.locator("#notice")).to_have_text("Moderator muted your microphone.")
    cli("kick")
    expect(page.locator("#notice")).to_have_text("Removed by a moderator.")
    close(page)

    # Janus absent: no "SFU" on screen, and what to do.
    nowhere = start_server(
        "--sfu", f"ws://127.0.0.1:{free_port()}", "--sfu-from", "1",
        env={"RTCROOM_SFU_SECRET": "a-secret-for-a-janus-that-is-not-there"},
    )  # fmt: skip
    context = chromium.new_context(permissions=["camera", "microphone"])
    lone = context.new_page()
    lone.goto(f"{nowhere.url}/r/big?name=Ann")
    enter(lone)
    notice = lone.locator("#notice")
    expect(notice).to_have_text(
        "The call cannot start right now: a part of the service is not running. "
        "Try again in a minute."
    )
    context.close()


REMEMBERED_RELAY = "localStorage.setItem('rtcroom.relay', '1');"


def test_relay_only_is_not_offered_without_turn_and_a_remembered_choice_does_not_break_calls(
    chromium: Browser, server: RunningServer
) -> None:
    # The test server has no TURN: relay only cannot work there.
    remembered = open_call(chromium, server.url, "relay", "Ann", init_script=REMEMBERED_RELAY)
    other = open_call(chromium, server.url, "relay", "Bo")
    try:
        expect(remembered.locator("#notice")).to_have_text(
            "Relay only is off for this call: this server has no relay (TURN) server."
        )
        # The calls connect directly instead of "connecting…" for good.
        wait_frames_advancing(remembered, {peer_id(other)})
        wait_frames_advancing(other, {peer_id(remembered)})
        remembered.click("#open-settings")
        expect(remembered.locator("#relay-only")).to_be_disabled()
        expect(remembered.locator("#relay-note")).to_have_text(
            "This server has no relay (TURN) server."
        )
        remembered.click("#settings-done")
        # A link that asks for it: said at once, not "connecting…" for good.
        asked = open_call(chromium, server.url, "relay", "Cy", query={"relay": "1"})
        expect(asked.locator("#notice")).to_contain_text(
            "this server has no relay (TURN) server, so the call cannot connect"
        )
        close(asked)
    finally:
        close(remembered)
        close(other)


def test_a_removed_persons_tile_goes_from_the_others_pages(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server("--auth-secret", ADMIN_SECRET)
    grants = ALL_GRANTS - {"admin"}
    ann = open_call(
        chromium, server.url, "gone", "Ann", query={"token": admin_token("gone", "a", *grants)}
    )
    bo = open_call(
        chromium, server.url, "gone", "Bo", query={"token": admin_token("gone", "b", *grants)}
    )
    bo_id = peer_id(bo)
    wait_frames_advancing(ann, {bo_id})
    tile = ann.locator(f'figure[data-peer-id="{bo_id}"]')
    expect(tile).to_have_count(1)
    status, _, _ = admin_call(server, "POST", f"/rooms/gone/peers/{bo_id}/kick", body={})
    assert status == 200
    expect(bo.locator("#notice")).to_have_text("Removed by a moderator.")
    expect(tile).to_have_count(0)
    # Bo's page ends: what happened, camera and microphone released, what next.
    expect(bo.locator("#end-title")).to_have_text("You were removed from the call")
    expect(bo.locator("#end-reason")).to_have_text("Removed by a moderator.")
    bo.wait_for_function(
        "() => window.rtcroom.localStream.getTracks().every((t) => t.readyState === 'ended')"
    )
    expect(bo.locator("#grid")).to_be_hidden()
    with bo.expect_navigation():
        bo.click("#rejoin")  # the token still admits Bo
    bo.wait_for_selector("body[data-joined=true]", timeout=ms(20_000))
    expect(ann.locator("#grid figcaption", has_text="Bo")).to_be_visible()
    close(ann)
    close(bo)
