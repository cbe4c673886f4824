"""Python peers come back like the browser does, next to a page in Chromium:
a dropped signaling connection resumes, a server restart rejoins."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest
from browser import FRAME_COUNTS, close, ms, open_call, peer_id, seconds, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser
from proxy import Proxy
from test_browser_resume import NEW_ADDRESS, PATH_IN_USE, VETH, set_address, wait_decoding
from test_client_browser import Background, background, rtcroom_cli, stop  # noqa: F401
from test_sfu_browser import Counter

from rtcroom.client import Room
from rtcroom.commands.media import PatternTrack

pytestmark = pytest.mark.browser


def test_a_python_peer_resumes_and_the_page_never_loses_it(
    chromium: Browser,
    server: RunningServer,
    proxy: Proxy,
    background: Background,  # noqa: F811
) -> None:
    page = open_call(chromium, server.url, "py-resume", "Ann")
    events: list[object] = []

    async def join() -> Room:
        # The Python peer's signaling goes through the proxy.
        room = await Room.join(proxy.url, "py-resume", "robot", tracks=[PatternTrack(320, 240)])
        room.on("reconnecting", lambda attempt: events.append(("reconnecting", attempt)))
        room.on("reconnected", lambda resumed: events.append(("reconnected", resumed)))
        return room

    robot: Room = background.run(join())
    robot_id = robot.id
    wait_frames_advancing(page, {robot_id})

    # The network between the robot and the server fails, and stays down 3 s.
    proxy.refuse = True
    assert proxy.drop() >= 1
    deadline = time.monotonic() + seconds(3)
    last = page.evaluate(FRAME_COUNTS)[robot_id]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        # The tile stays, its video keeps advancing (media is peer to peer).
        now = page.evaluate(FRAME_COUNTS)
        assert set(now) == {robot_id}, now
        assert now[robot_id] > last, "the robot's video stopped while its signaling was down"
        last = now[robot_id]
    proxy.refuse = False
    deadline = time.monotonic() + seconds(15)
    while ("reconnected", True) not in events:
        assert time.monotonic() < deadline, f"the robot did not resume: {events}"
        time.sleep(0.1)
    assert events[0] == ("reconnecting", 1)
    assert robot.id == robot_id  # resumed: the same peer
    assert page.evaluate("() => window.rtcroom.peers.size") == 1
    wait_frames_advancing(page, {robot_id})
    # Its signaling works again: a newcomer page calls the robot through it.
    newcomer = open_call(chromium, server.url, "py-resume", "Bo")
    wait_frames_advancing(newcomer, {robot_id, peer_id(page)})
    background.run(robot.leave())
    for each in (page, newcomer):
        close(each)


def test_a_bot_rejoins_after_a_server_restart(
    chromium: Browser, start_server: Callable[..., RunningServer]
) -> None:
    server = start_server()
    page = open_call(chromium, server.url, "tv-restart", "Ann")
    player = rtcroom_cli("bot", "play", server.url, "tv-restart", "--pattern")
    try:
        page.wait_for_function("document.querySelectorAll('video[data-peer-id]').length === 1")
        first_id = page.evaluate("document.querySelector('video[data-peer-id]').dataset.peerId")
        wait_frames_advancing(page, {first_id})

        server.stop()  # rooms and resume keys go with it
        page.wait_for_selector("body[data-reconnecting=true]", timeout=ms(5000))
        restarted = start_server(port=server.port)
        page.wait_for_selector("body:not([data-reconnecting])", timeout=ms(20_000))
        # The bot joined the new server by itself: the page sees it again, playing.
        page.wait_for_function(
            "(old) => { const v = document.querySelector('video[data-peer-id]');"
            " return v && v.dataset.peerId !== old; }",
            arg=first_id,
            timeout=ms(30_000),
        )
        second_id = page.evaluate("document.querySelector('video[data-peer-id]').dataset.peerId")
        wait_frames_advancing(page, {second_id})
        assert player.poll() is None, "the bot gave up"
        restarted.stop()
    finally:
        output = stop(player)
        close(page)
    assert "Traceback" not in output, output


def test_a_network_change_restarts_ice_with_a_python_peer(
    chromium: Browser,
    server: RunningServer,
    background: Background,  # noqa: F811
) -> None:
    """The page restarts ICE; the Python peer (aiortc has no ICE restart)
    takes the restart offer on a new connection: media flows again both ways,
    the same peers, the chat still works."""
    if os.environ.get("RTCROOM_NETNS") != "1":
        raise RuntimeError("this test changes the test network's address: run it in scripts/netns")
    page = open_call(chromium, server.url, "py-roam", "Ann")
    chats: list[str] = []
    counters: list[Counter] = []

    async def join() -> Room:
        room = await Room.join(server.url, "py-roam", "robot", tracks=[PatternTrack(320, 240)])
        counters.append(Counter(room))
        room.on("chat", lambda peer, message: chats.append(message.text))
        return room

    robot: Room = background.run(join())
    frames = counters[0].frames
    wait_frames_advancing(page, {robot.id})
    before = page.evaluate(PATH_IN_USE)
    set_address(VETH, NEW_ADDRESS)
    try:
        page.wait_for_function(
            "(ufrag) => { const p = [...window.rtcroom.peers.values()][0];"
            " return p.pc.iceConnectionState === 'connected'"
            " && !p.pc.localDescription.sdp.includes(`a=ice-ufrag:${ufrag}`); }",
            arg=before["ufrag"],
            timeout=ms(45_000),
        )
        wait_decoding(page)
        assert page.evaluate(PATH_IN_USE)["address"] == NEW_ADDRESS
        # The robot decodes the page's video again.
        now = frames.get("Ann", 0)
        deadline = time.monotonic() + seconds(15)
        while frames.get("Ann", 0) < now + 20:
            assert time.monotonic() < deadline, f"the robot gets no video again: {frames}"
            time.sleep(0.25)
        page.evaluate("window.rtcroom.sendChat('still there?')")
        deadline = time.monotonic() + seconds(10)
        while "still there?" not in chats:
            assert time.monotonic() < deadline, "the chat did not come back"
            time.sleep(0.1)
        assert page.locator("#grid figure.tile").count() == 2
    finally:
        set_address(NEW_ADDRESS, VETH)
    background.run(robot.leave())
    close(page)
