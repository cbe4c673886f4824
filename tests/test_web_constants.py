"""What the browser's client library shares with Python, checked against rtcroom/protocol.py.

The values are written once in Python; rtcroom.js has copies (no build
step to generate them), and so have the two places that must work before
any module loads: the lobby's form (index.html) and the room page's inline
script (room.html).
"""

from __future__ import annotations

import re

from node import WEB, run_module, web_module

from rtcroom import protocol

SCRIPT = """
import * as rtcroom from %s;
const delays = [];
for (let attempt = 1; attempt <= 9; attempt++) {
  for (const random of [0, 0.25, 0.999]) delays.push(rtcroom.reconnectDelay(attempt, random));
}
console.log(JSON.stringify({
  room: rtcroom.ROOM_PATTERN.source,
  transient: [...rtcroom.TRANSIENT_ERRORS],
  connection: [...rtcroom.CONNECTION_ERRORS],
  held: rtcroom.HELD_SIGNALS,
  delays,
}));
"""


def test_the_client_library_agrees_with_the_protocol() -> None:
    js = run_module(SCRIPT % web_module("rtcroom.js"))
    assert js["room"] == protocol.ROOM_PATTERN
    assert sorted(js["transient"]) == sorted(protocol.TRANSIENT_ERRORS)
    assert sorted(js["connection"]) == sorted(protocol.CONNECTION_ERRORS)
    assert js["held"] == protocol.HELD_SIGNALS
    expected = [
        protocol.reconnect_delay(attempt, random) * 1000
        for attempt in range(1, 10)
        for random in (0, 0.25, 0.999)
    ]
    assert js["delays"] == expected


def test_the_pages_check_room_names_as_the_protocol_does() -> None:
    # The room page's inline script, before rtcroom.js has loaded.
    room_page = (WEB / "room.html").read_text()
    assert f"/{protocol.ROOM_PATTERN}/.test(room)" in room_page
    # The lobby's form: an HTML pattern is anchored by itself, and a - in a
    # class is escaped (the v flag that browsers compile it with).
    lobby = (WEB / "index.html").read_text()
    [pattern] = re.findall(r'id="room"[^>]*pattern="([^"]+)"', lobby)
    assert "^" + pattern.replace("\\-", "-") + "$" == protocol.ROOM_PATTERN
