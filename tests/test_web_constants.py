"""What the browser's client library shares with Python, checked against rtcroom/protocol.py.

And the room page's inline copies of the library's room pattern and token
reading, checked against the library.

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
const restartDelays = [];
for (let attempt = 1; attempt <= 24; attempt++) {
  restartDelays.push(rtcroom.reconnectDelay(attempt, 0.999, true));
}
console.log(JSON.stringify({
  room: rtcroom.ROOM_PATTERN.source,
  transient: [...rtcroom.TRANSIENT_ERRORS],
  connection: [...rtcroom.CONNECTION_ERRORS],
  held: rtcroom.HELD_SIGNALS,
  iceRestart: rtcroom.ICE_RESTART_AFTER_MS,
  file: rtcroom.FILE_CHANNEL,
  reactions: rtcroom.REACTIONS,
  delays,
  restartDelays,
}));
"""


def test_the_client_library_agrees_with_the_protocol() -> None:
    js = run_module(SCRIPT % web_module("rtcroom.js"))
    assert js["room"] == protocol.ROOM_PATTERN
    assert sorted(js["transient"]) == sorted(protocol.TRANSIENT_ERRORS)
    assert sorted(js["connection"]) == sorted(protocol.CONNECTION_ERRORS)
    assert js["held"] == protocol.HELD_SIGNALS
    assert js["iceRestart"] == protocol.ICE_RESTART_AFTER * 1000
    assert js["file"] == {"label": protocol.FILE_LABEL, "protocol": protocol.FILE_PROTOCOL}
    assert js["reactions"] == list(protocol.REACTIONS)
    assert protocol.Reaction.__args__ == protocol.REACTIONS  # type: ignore[attr-defined]
    expected = [
        protocol.reconnect_delay(attempt, random) * 1000
        for attempt in range(1, 10)
        for random in (0, 0.25, 0.999)
    ]
    assert js["delays"] == expected
    # After `bye`: at most 1.5 s apart for the first 20 attempts, then as before.
    restart = [protocol.reconnect_delay(attempt, 0.999, True) * 1000 for attempt in range(1, 25)]
    assert js["restartDelays"] == restart
    assert max(restart[:20]) < 1500 and restart[23] > 8000


TOKENS = """
import { tokenClaims, tokenGrants, tokenName } from %s;
%s
const claims = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
const tokens = [
  null, "", "garbage", "a.b.c", "a.%%%%%%.c",
  `h.${claims({grants: ["publish", "subscribe"]})}.s`,
  `h.${claims({grants: ["subscribe"]})}.s`,
  `h.${claims({identity: "no grants"})}.s`,
  `h.${claims({grants: "not a list"})}.s`,
  `h.${claims({grants: ["data"], name: "é~?"})}.sig`,
];
console.log(JSON.stringify(tokens.map((t) => [tokenClaims(t), pageTokenClaims(t), tokenGrants(t), tokenName(t)])));
"""


def test_the_room_page_reads_tokens_as_the_client_library_does() -> None:
    page = (WEB / "room.html").read_text()
    found = re.search(r"\n( +)(function tokenClaims\(token\) \{\n.*?\n\1\})\n", page, re.S)
    assert found is not None, "room.html has no tokenClaims"
    copy = found.group(2).replace("function tokenClaims(", "function pageTokenClaims(")
    results = run_module(TOKENS % (web_module("rtcroom.js"), copy))
    assert len(results) == 10
    for library, page_copy, _, _ in results:
        assert page_copy == library
    assert [r[2] for r in results[5:9]] == [["publish", "subscribe"], ["subscribe"], [], []]
    assert [r[3] for r in results] == [""] * 9 + ["é~?"]
    # And the page derives grants and name from the claims as the library does.
    assert "Array.isArray(claims?.grants) ? claims.grants : []" in page
    assert 'typeof claims?.name === "string" ? claims.name.trim()' in page


def test_the_pages_check_room_names_as_the_protocol_does() -> None:
    # The room page's inline script, before rtcroom.js has loaded.
    room_page = (WEB / "room.html").read_text()
    assert f"/{protocol.ROOM_PATTERN}/.test(room)" in room_page
    # The lobby's form: an HTML pattern is anchored by itself, and a - in a
    # class is escaped (the v flag that browsers compile it with).
    lobby = (WEB / "index.html").read_text()
    [pattern] = re.findall(r'id="room"[^>]*pattern="([^"]+)"', lobby)
    assert "^" + pattern.replace("\\-", "-") + "$" == protocol.ROOM_PATTERN
