"""The admin API (/admin/v1/) and its CLI (rtcroom rooms, kick, mute, close)
against real `rtcroom serve` processes sharing Redis. The web app obeying a
moderator is in test_browser_app.py."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from conftest import RunningRedis, RunningServer
from test_serve import Peer, connect

from rtcroom.auth import ALL_GRANTS, mint_token

SECRET = "admin-test-secret-0123456789abcdef-xyz"


def token(room: str, identity: str, *grants: str, name: str | None = None) -> str:
    return mint_token(SECRET, room=room, identity=identity, name=name, grants=grants)


ADMIN = token("*", "ops", "admin", name="Olga")


def call(
    server: RunningServer, method: str, path: str, bearer: str | None = ADMIN, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """One admin API request: (status, headers, JSON body)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.url}/admin/v1{path}", data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.load(response)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.load(exc)


def cli(*args: str, secret: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTCROOM_")}
    if secret:
        env["RTCROOM_AUTH_SECRET"] = SECRET
    return subprocess.run(
        [sys.executable, "-m", "rtcroom", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


async def join(server: RunningServer, room: str, name: str, bearer: str) -> tuple[Peer, dict]:
    peer = await connect(server)
    await peer.send({"type": "join", "room": room, "name": name, "token": bearer})
    joined = await peer.recv()
    assert joined["type"] == "joined", joined
    return peer, joined


async def closed_with(peer: Peer) -> list[dict[str, Any]]:
    """What `peer` receives until the server closes its connection."""
    received = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            received.append(await peer.recv(timeout=10))
    return received


async def test_list_mute_kick_and_close_across_two_processes(
    start_server: Callable[..., RunningServer], redis_server: RunningRedis
) -> None:
    one, two = (
        start_server("--broker", redis_server.url, "--auth-secret", SECRET) for _ in range(2)
    )
    everything = sorted(ALL_GRANTS - {"admin"})
    ann, ja = await join(one, "team", "Ann", token("team", "ann", *everything, name="Ann"))
    bob, jb = await join(two, "team", "Bob", token("team", "bob", "subscribe"))
    assert (await ann.recv())["type"] == "peer-joined"
    solo, js = await join(two, "solo", "Sol", token("solo", "sol", "publish"))

    # Each process lists the peers of both.
    for server in (one, two):
        status, _, listing = call(server, "GET", "/rooms")
        assert status == 200
        rooms = {room["room"]: room["peers"] for room in listing["rooms"]}
        assert list(rooms) == ["solo", "team"]
        team = rooms["team"]
        assert [(p["id"], p["name"], p["identity"], p["grants"]) for p in team] == [
            (ja["id"], "Ann", "ann", everything),
            (jb["id"], "Bob", "bob", ["subscribe"]),
        ]
        for peer in team + rooms["solo"]:
            since = datetime.datetime.fromisoformat(peer["since"].replace("Z", "+00:00"))
            age = datetime.datetime.now(datetime.UTC) - since
            assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=2), peer
    status, _, one_room = call(one, "GET", "/rooms/solo")
    assert (status, [p["id"] for p in one_room["peers"]]) == (200, [js["id"]])
    assert call(one, "GET", "/rooms/nowhere")[:1] == (404,)

    # The CLI: a table, and JSON.
    listed = await asyncio.to_thread(cli, "rooms", one.url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ROOM", "PEER", "NAME", "IDENTITY", "GRANTS", "CONNECTED"]
    assert lines[1].split()[:5] == ["solo", js["id"], "Sol", "sol", "publish"]
    assert lines[2].split()[:5] == ["team", ja["id"], "Ann", "ann", ",".join(everything)]
    assert lines[-1] == "2 rooms, 3 peers"
    as_json = await asyncio.to_thread(cli, "rooms", two.url, "--json")
    assert [room["room"] for room in json.loads(as_json.stdout)] == ["solo", "team"]

    # Mute: asked through the process that does not hold Ann, named by her name.
    muted = await asyncio.to_thread(cli, "mute", two.url, "team", "Ann", "--as", "Olga")
    assert muted.returncode == 0, muted.stderr
    assert await ann.recv() == {"type": "mute", "kind": "audio", "by": "Olga"}
    status, _, answer = call(
        two, "POST", f"/rooms/team/peers/{ja['id']}/mute", body={"kind": "video"}
    )
    assert (status, answer) == (200, {"muted": ja["id"], "kind": "video"})
    assert await ann.recv() == {"type": "mute", "kind": "video", "by": "Olga"}

    # Kick Bob (held by two) through one: he is told why, closed with 4003,
    # the room sees him leave once, and his resume key no longer works.
    kicked = await asyncio.to_thread(cli, "kick", one.url, "team", jb["id"], "--reason", "spam")
    assert kicked.returncode == 0, kicked.stderr
    assert await closed_with(bob) == [
        {"type": "error", "code": "kicked", "message": "spam", "app": True}
    ]
    assert bob.ws.close_code == 4003
    assert await ann.recv() == {"type": "peer-left", "id": jb["id"]}
    await ann.nothing(0.5)
    back = await connect(one)
    await back.send(
        {
            "type": "join",
            "room": "team",
            "name": "Bob",
            "token": token("team", "bob", "subscribe"),
            "resume": jb["resume"],
        }
    )
    again = await back.recv()
    assert again["type"] == "joined" and again["id"] != jb["id"]
    assert (await ann.recv())["peer"]["id"] == again["id"]  # a newcomer, not a resume
    missing = await asyncio.to_thread(cli, "kick", one.url, "team", "nobody")
    assert missing.returncode == 1
    assert "no peer 'nobody' in room team" in missing.stderr

    # Close the room (its peers on both processes): everyone gets the reason, then leaves.
    status, _, answer = call(two, "POST", "/rooms/team/close", body={"reason": "meeting over"})
    assert status == 200 and sorted(answer["kicked"]) == sorted([ja["id"], again["id"]])
    for peer in (ann, back):
        received = await closed_with(peer)
        assert received[-1] == {
            "type": "error",
            "code": "kicked",
            "message": "meeting over",
            "app": True,
        }
        assert peer.ws.close_code == 4003
    # The holders remove them as they close them: the room is gone from the list soon after.
    deadline = asyncio.get_running_loop().time() + 10
    while [room["room"] for room in call(one, "GET", "/rooms")[2]["rooms"]] != ["solo"]:
        assert asyncio.get_running_loop().time() < deadline, "the closed room is still listed"
        await asyncio.sleep(0.1)
    assert call(one, "POST", "/rooms/team/close")[0] == 404
    await solo.ws.close()


async def test_refusals_say_nothing_more(start_server: Callable[..., RunningServer]) -> None:
    server = start_server("--auth-secret", SECRET)
    peer, joined = await join(server, "team", "Ann", token("team", "ann", "publish"))
    kick = f"/rooms/team/peers/{joined['id']}/kick"

    status, headers, body = call(server, "GET", "/rooms", bearer=None)
    assert (status, body) == (401, {"error": "unauthorized"})
    assert headers["www-authenticate"] == 'Bearer realm="rtcroom"'
    forged = mint_token(
        "another-secret-0123456789abcdefghij", room="*", identity="x", grants=["admin"]
    )
    expired = mint_token(SECRET, room="*", identity="x", grants=["admin"], ttl=1, now=0)
    for bad in ("not-a-token", forged, expired):
        assert call(server, "GET", "/rooms", bearer=bad)[::2] == (401, {"error": "unauthorized"})
        assert call(server, "POST", kick, bearer=bad)[::2] == (401, {"error": "unauthorized"})
    # Valid tokens that are not enough: no admin grant; admin of another room.
    everything_but_admin = token("*", "u", "publish", "subscribe", "data")
    other_room = token("other", "mod", "admin")
    for weak in (everything_but_admin, other_room):
        assert call(server, "GET", "/rooms", bearer=weak)[::2] == (403, {"error": "forbidden"})
        assert call(server, "POST", kick, bearer=weak)[::2] == (403, {"error": "forbidden"})
    # An admin of one room acts there, and cannot list every room.
    team_admin = token("team", "mod", "admin")
    assert call(server, "GET", "/rooms/team", bearer=team_admin)[0] == 200

    # Bad requests say what is wrong; nothing happens.
    mute = f"/rooms/team/peers/{joined['id']}/mute"
    status, _, body = call(server, "POST", mute, body={"kind": "loud"})
    assert status == 400 and "audio" in body["error"]
    status, _, body = call(server, "POST", kick, body={"why": "x"})
    assert status == 400 and "why" in body["error"]
    status, _, body = call(server, "POST", kick, body={"reason": "x" * 201})
    assert status == 400 and "reason" in body["error"]
    assert call(server, "GET", "/rooms/team")[2]["peers"][0]["id"] == joined["id"]
    await peer.nothing(0.3)

    refused = await asyncio.to_thread(cli, "rooms", server.url, "--token", everything_but_admin)
    assert refused.returncode == 1 and "admin grant" in refused.stderr
    no_secret = await asyncio.to_thread(cli, "rooms", server.url, secret=False)
    assert no_secret.returncode == 1 and "--auth-secret" in no_secret.stderr
    await peer.ws.close()


async def test_open_mode_has_no_admin_api(server: RunningServer) -> None:
    status, _, body = call(server, "GET", "/rooms")
    assert (status, body) == (403, {"error": "the admin API needs the server's --auth-secret"})


async def test_a_python_peer_hears_mute_and_kick(
    start_server: Callable[..., RunningServer],
) -> None:
    from rtcroom.client import Room

    server = start_server("--auth-secret", SECRET)
    bot = await Room.join(server.url, "talk", "bot", token=token("talk", "bot", "publish"))
    asked: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    bot.on("mute", lambda kind, by: asked.put_nowait((kind, by)))
    muted = await asyncio.to_thread(cli, "mute", server.url, "talk", "bot", "--video")
    assert muted.returncode == 0, muted.stderr
    assert await asyncio.wait_for(asked.get(), 10) == ("video", "moderator")

    assert call(server, "POST", f"/rooms/talk/peers/{bot.id}/kick")[0] == 200
    await asyncio.wait_for(bot.wait_closed(), 10)
    # Closed for good: no reconnection after a kick.
    assert bot.kicked and bot.kicked_reason == "removed by a moderator"
    assert call(server, "GET", "/rooms")[2] == {"rooms": []}
