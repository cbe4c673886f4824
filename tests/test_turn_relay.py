"""Browser calls through a real coturn with relay-only policy (Python peers: test_client.py).

These tests need loopback relaying (every peer is on this machine), so they
start coturn with the testing-only allowance (conftest.start_turn).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from browser import close, enter, peer_id, wait_frames_advancing
from conftest import RunningServer, RunningTurn
from playwright.sync_api import Browser, Page

SELECTED_PAIR = """async () => {
  const peer = [...window.rtcroom.peers.values()][0];
  const stats = new Map();
  (await peer.pc.getStats()).forEach((s) => stats.set(s.id, s));
  const transport = [...stats.values()].find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair = transport && stats.get(transport.selectedCandidatePairId);
  if (!pair) return null;
  return [stats.get(pair.localCandidateId).candidateType, stats.get(pair.remoteCandidateId).candidateType];
}"""


def relay_server(start_server: Callable[..., RunningServer], turn: RunningTurn) -> RunningServer:
    return start_server("--turn-url", turn.url, env={"RTCROOM_TURN_SECRET": turn.secret})


def turn_sessions(turn: RunningTurn) -> str:
    """coturn's session lines (allocations, permissions, errors), for a failure's message."""
    lines = turn.log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if "session" in line)[-6000:]


def open_relay_call(browser: Browser, server: RunningServer, name: str) -> Page:
    context = browser.new_context(permissions=["camera", "microphone"])
    page = context.new_page()
    page.goto(f"{server.url}/r/private?name={name}&relay=1")
    enter(page)
    page.wait_for_selector("body[data-joined=true]")
    return page


@pytest.mark.browser
def test_relay_only_pages_play_video_through_coturn(
    chromium: Browser,
    start_server: Callable[..., RunningServer],
    start_turn: Callable[..., RunningTurn],
) -> None:
    turn = start_turn(allow_loopback_relay=True)
    server = relay_server(start_server, turn)
    a = open_relay_call(chromium, server, "Ann")
    b = open_relay_call(chromium, server, "Bo")
    ice = a.evaluate("window.rtcroom.iceServers")
    assert ice[0]["username"].endswith(":" + peer_id(a))
    try:
        wait_frames_advancing(a, {peer_id(b)})
        wait_frames_advancing(b, {peer_id(a)})
    except AssertionError as failure:
        raise AssertionError(f"{failure}\ncoturn's sessions:\n{turn_sessions(turn)}") from None
    for page in (a, b):
        assert page.evaluate(SELECTED_PAIR) == ["relay", "relay"]
    close(a)
    close(b)
