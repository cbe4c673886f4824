"""The server's log (--log-format): events a collector can count, and no secret in it."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import signal
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from conftest import RunningServer
from test_serve import Peer, connect

from rtcroom import mint_token
from rtcroom.logs import REDACTED, JsonFormatter, Redactor

AUTH_SECRET = "auth-secret-of-the-log-test-0123456789"
TURN_SECRET = "turn-secret-of-the-log-test-abcdef"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"webhook-secret-of-the-log-test!!").decode()


def record(message: str, *args: object, **extra: Any) -> logging.LogRecord:
    return logging.LogRecord("rtcroom", logging.INFO, __file__, 1, message, args, None, **extra)


def test_json_lines_carry_time_level_event_and_fields() -> None:
    line = record("Ann joined %s", "r")
    line.event, line.fields = "join", {"room": "r", "peer": "p1", "name": "Ann", "identity": None}
    parsed = json.loads(JsonFormatter().format(line))
    assert parsed["event"] == "join" and parsed["level"] == "info"
    assert parsed["message"] == "Ann joined r"
    assert parsed["room"] == "r" and parsed["peer"] == "p1" and "identity" not in parsed
    assert parsed["time"].endswith("Z")
    # A plain log line is the event "log".
    assert json.loads(JsonFormatter().format(record("hello")))["event"] == "log"


def test_secrets_and_token_shapes_are_redacted_wherever_they_appear() -> None:
    token = mint_token(AUTH_SECRET, room="r", identity="ann")
    redactor = Redactor([AUTH_SECRET, None, ""])
    line = record("join with %s and %s", token, AUTH_SECRET)
    line.fields = {"reason": f"bad token {token}"}
    try:
        raise ValueError(f"secret {AUTH_SECRET}")
    except ValueError:
        import sys

        line.exc_info = sys.exc_info()
    assert redactor.filter(line)
    text = JsonFormatter().format(line)
    assert AUTH_SECRET not in text and token not in text
    assert text.count(REDACTED) >= 4


async def test_a_scenario_logs_one_join_and_one_leave_per_peer_and_no_secret(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server(
        *("--log-format", "json", "--auth-secret", AUTH_SECRET),
        *("--turn-url", "turn:127.0.0.1:3478", "--turn-secret", TURN_SECRET),
        # An endpoint that refuses connections: its retries are logged too.
        *("--webhook", "http://127.0.0.1:9/hook", "--webhook-secret", WEBHOOK_SECRET),
    )
    tokens = {
        name: mint_token(AUTH_SECRET, room="logs", identity=name.lower(), name=name,
                         grants=["publish", "subscribe", "data"])
        for name in ("Ann", "Bob", "Cy")
    }  # fmt: skip
    peers: dict[str, Peer] = {}
    joined: dict[str, dict[str, Any]] = {}
    for name, token in tokens.items():
        peers[name] = await connect(server)
        await peers[name].send({"type": "join", "room": "logs", "name": name, "token": token})
        joined[name] = await peers[name].recv()
        assert joined[name]["type"] == "joined"
    # A token for another room is refused, and logged as such.
    stranger = await connect(server)
    wrong = mint_token(AUTH_SECRET, room="other", identity="eve")
    await stranger.send({"type": "join", "room": "logs", "name": "Eve", "token": wrong})
    assert (await stranger.recv())["code"] == "unauthorized"
    await stranger.ws.close()
    # Bob comes back on a new connection with his resume key.
    again = await connect(server)
    await again.send(
        {"type": "join", "room": "logs", "name": "Bob", "token": tokens["Bob"],
         "resume": joined["Bob"]["resume"]}
    )  # fmt: skip
    assert (await again.recv())["id"] == joined["Bob"]["id"]
    # An operator mutes Cy through the admin API.
    admin = mint_token(AUTH_SECRET, room="*", identity="ops", grants=["admin"])
    request = urllib.request.Request(
        f"{server.url}/admin/v1/rooms/logs/peers/{joined['Cy']['id']}/mute",
        data=b'{"kind": "audio"}',
        headers={"Authorization": f"Bearer {admin}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    assert (await peers["Cy"].recv())["type"] == "mute"
    await peers["Ann"].send({"type": "leave"})
    await peers["Ann"].ws.close()
    # The rest leave as the server drains on SIGTERM.
    server.process.send_signal(signal.SIGTERM)
    for peer in (again, peers["Cy"]):
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await peer.recv()
    assert await asyncio.to_thread(server.process.wait, 15) == 0

    text = server.log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert {"time", "level", "event", "message"} <= line.keys(), line
    events = Counter(line["event"] for line in lines)
    ids = {name: joined[name]["id"] for name in tokens}
    joins = Counter(line["peer"] for line in lines if line["event"] == "join")
    leaves = Counter(line["peer"] for line in lines if line["event"] == "leave")
    assert joins == Counter(ids.values()) == leaves, (joins, leaves)
    reasons = {line["name"]: line["reason"] for line in lines if line["event"] == "leave"}
    # Ann said leave; the drained ones stayed resumable until the process stopped.
    assert reasons == {"Ann": "left", "Bob": "shutdown", "Cy": "shutdown"}, reasons
    [refused] = [line for line in lines if line["event"] == "refused"]
    assert refused["code"] == "unauthorized" and refused["address"] == "127.0.0.1"
    assert refused["room"] == "logs"
    [resume] = [line for line in lines if line["event"] == "resume"]
    assert resume["peer"] == ids["Bob"]
    assert events["drain"] == 1 and events["room-started"] == events["room-finished"] == 1
    # No secret and no token, in any line.
    [mute] = [line for line in lines if line["event"] == "mute"]
    assert mute["peer"] == ids["Cy"] and mute["by"] == "ops"
    assert any("webhook" in line["message"] for line in lines)
    for secret in (AUTH_SECRET, TURN_SECRET, WEBHOOK_SECRET, wrong, admin, *tokens.values()):
        assert secret not in text
    for name in tokens:
        assert joined[name]["resume"] not in text
