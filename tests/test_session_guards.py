"""What the core refuses: bad tokens, missing grants, floods, join storms, full servers.

Every refusal is an error the client can read, and leaves no trace in the
rooms (no peer-joined, no relayed frame, no member left behind).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_session import Client

from rtcroom.auth import ALL_GRANTS, Authenticator, mint_token
from rtcroom.broker import MemoryBroker
from rtcroom.limits import ClientLimits, TokenBucket

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
NOW = 1_800_000_000.0
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def offer(video: str, audio: str = "recvonly", data: bool = False) -> dict[str, Any]:
    sdp = SDP + f"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na={audio}\r\n"
    sdp += f"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na={video}\r\n"
    if data:
        sdp += "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    return {"description": {"type": "offer", "sdp": sdp}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> Any:
    broker = MemoryBroker(max_peers_per_room=4, max_rooms=2, resume_grace=0)
    ids = itertools.count(1)
    auth = Authenticator(SECRET)

    def make(**options: Any) -> Client:
        options.setdefault("auth", auth)
        options.setdefault("clock", lambda: NOW)
        return Client(broker, ids, **options)

    return broker, make


def token(room: str = "team", grants: Any = ALL_GRANTS, **claims: Any) -> str:
    claims.setdefault("identity", "user")
    return mint_token(SECRET, room=room, grants=grants, now=NOW, **claims)


async def join(client: Client, room: str, tok: str | None, name: str = "Ann") -> dict[str, Any]:
    message: dict[str, Any] = {"type": "join", "room": room, "name": name}
    if tok is not None:
        message["token"] = tok
    [answer] = await client.send(message)
    return answer


async def test_tokens_are_required_and_checked(world: Any) -> None:
    broker, make = world
    host, guest = make(), make()
    joined = await join(host, "team", token(identity="host-1", name="Host"))
    assert joined["type"] == "joined"
    assert joined["grants"] == sorted(ALL_GRANTS)
    for bad in (
        None,
        token(room="other"),
        mint_token("x" * 40, room="team", identity="u", now=NOW),
        mint_token(SECRET, room="team", identity="u", ttl=10, now=NOW - 100),
    ):
        answer = await join(guest, "team", bad)
        assert answer["type"] == "error"
        assert answer["code"] == "unauthorized"
        assert bad is None or bad not in answer["message"]
    # Nothing leaked: the host heard of no one, the room holds one member.
    assert host.inbox.take() == []
    assert list(broker.rooms["team"].members) == [joined["id"]]
    # The same connection may still join with a good token.
    assert (await join(guest, "team", token(identity="guest-2")))["type"] == "joined"


async def test_token_identity_and_name_win_over_the_join_message(world: Any) -> None:
    _, make = world
    a, b = make(), make()
    await join(a, "team", token(identity="id-a"), name="Ann")
    joined = await join(b, "team", token(identity="id-b", name="Real Name"), name="Fake")
    assert joined["peers"] == [{"id": joined["peers"][0]["id"], "name": "Ann", "identity": "id-a"}]
    [announce] = a.inbox.take()
    assert announce["peer"]["name"] == "Real Name"
    assert announce["peer"]["identity"] == "id-b"


async def test_subscriber_only_peer_cannot_send_media(world: Any) -> None:
    _, make = world
    host, viewer = make(), make()
    host_id = (await join(host, "team", token()))["id"]
    joined = await join(viewer, "team", token(grants=["subscribe"]))
    assert joined["grants"] == ["subscribe"]
    host.inbox.take()
    for data, why in (
        (offer("sendrecv"), "does not grant publish: this offer sends video"),
        (offer("recvonly", audio="sendonly"), "sends audio"),
        (offer("recvonly", data=True), "does not grant data"),
        ({"sdp": "v=0"}, "must be a description or a candidate"),
    ):
        [error] = await viewer.send({"type": "signal", "to": host_id, "data": data})
        assert error["code"] == "forbidden"
        assert why in error["message"]
    [error] = await viewer.send({"type": "broadcast", "data": "hi"})
    assert error["code"] == "forbidden"
    assert host.inbox.take() == []
    # What a viewer may send goes through.
    for data in (offer("recvonly"), {"candidate": None}):
        assert await viewer.send({"type": "signal", "to": host_id, "data": data}) == []
        assert host.inbox.take()[0]["data"] == data


async def test_publisher_only_peer_cannot_receive(world: Any) -> None:
    _, make = world
    host, camera = make(), make()
    host_id = (await join(host, "team", token()))["id"]
    await join(camera, "team", token(grants=["publish"]))
    [error] = await camera.send({"type": "signal", "to": host_id, "data": offer("sendrecv")})
    assert "does not grant subscribe: this offer receives audio and video" in error["message"]
    ok = offer("sendonly", audio="sendonly")
    assert await camera.send({"type": "signal", "to": host_id, "data": ok}) == []


async def test_open_mode_relays_any_data_unchecked() -> None:
    ids = itertools.count(1)
    broker = MemoryBroker(resume_grace=0)
    a, b = Client(broker, ids), Client(broker, ids)
    await a.join("r", "Ann")
    joined = await b.join("r", "Bo")
    assert joined["grants"] == sorted(ALL_GRANTS)
    a.inbox.take()
    assert await b.send({"type": "signal", "to": joined["peers"][0]["id"], "data": "x"}) == []


async def test_a_flood_is_cut_with_one_error_a_second(world: Any) -> None:
    _, make = world
    clock = Clock()
    a, b = make(auth=None, rate=TokenBucket(10, 20, clock)), make(auth=None)
    await join(a, "r", None)
    await join(b, "r", None)
    a.inbox.take()
    answers = []
    for i in range(10_000):
        answers += await a.send({"type": "broadcast", "data": i})
    # The burst passed (the join took one token), then one error; the rest
    # was dropped without a word.
    assert [m["code"] for m in answers] == ["rate-limited"]
    assert [m["data"] for m in b.inbox.take()] == list(range(19))
    clock.now += 1.0  # ten more tokens
    assert await a.send({"type": "broadcast", "data": "later"}) == []
    assert b.inbox.take()[0]["data"] == "later"
    # A flood that lasts: one error a second, however many messages.
    answers = []
    for i in range(3000):
        clock.now += 0.001
        answers += await a.send({"type": "broadcast", "data": i})
    assert [m["code"] for m in answers] == ["rate-limited"] * 3
    # The tokens left, then 10 a second (give or take one to rounding).
    assert 9 + 29 <= len(b.inbox.take()) <= 9 + 30


async def test_join_attempts_are_limited_per_address(world: Any) -> None:
    _, make = world
    clock = Clock()
    limits = ClientLimits(max_connections=2, joins_per_minute=60, join_burst=3, clock=clock)
    gate = limits.join_bucket("10.0.0.1")
    clients = [make(auth=None, join_gate=gate) for _ in range(4)]
    answers = [await join(c, "r", None) for c in clients]
    assert [a["type"] for a in answers[:3]] == ["joined"] * 3
    assert answers[3]["code"] == "rate-limited"
    clock.now += 1.0
    assert (await join(clients[3], "r", None))["type"] == "joined"
    # Other addresses have buckets of their own.
    assert limits.join_bucket("10.0.0.2").take()
    assert limits.connect("10.0.0.1") and limits.connect("10.0.0.1")
    assert not limits.connect("10.0.0.1")
    limits.disconnect("10.0.0.1")
    assert limits.connect("10.0.0.1")


async def test_rooms_per_server(world: Any) -> None:
    _, make = world
    a, b, c = make(auth=None), make(auth=None), make(auth=None)
    await join(a, "one", None)
    await join(b, "two", None)
    error = await join(c, "three", None)
    assert error["code"] == "server-full"
    # Joining an existing room still works.
    assert (await join(c, "one", None))["type"] == "joined"


def test_token_bucket_refills_up_to_its_burst() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 100
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.5
    assert bucket.take() and not bucket.take()
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1)
    assert json.dumps(bucket.full()) == "false"


directions = st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"])


@settings(max_examples=150, deadline=None)
@given(
    grants=st.sets(st.sampled_from(sorted(ALL_GRANTS))),
    audio=directions,
    video=directions,
    data=st.booleans(),
    kind=st.sampled_from(["offer", "answer"]),
)
def test_relayed_descriptions_never_exceed_the_grants(
    grants: set[str], audio: str, video: str, data: bool, kind: str
) -> None:
    asyncio.run(_check_grants(grants, audio, video, data, kind))


async def _check_grants(grants: set[str], audio: str, video: str, data: bool, kind: str) -> None:
    broker = MemoryBroker(resume_grace=0)
    ids = itertools.count(1)
    auth = Authenticator(SECRET)
    host = Client(broker, ids, auth=auth, clock=lambda: NOW)
    peer = Client(broker, ids, auth=auth, clock=lambda: NOW)
    host_id = (await join(host, "team", token()))["id"]
    await join(peer, "team", token(grants=grants))
    host.inbox.take()
    description = offer(video, audio=audio, data=data)
    description["description"]["type"] = kind
    answers = await peer.send({"type": "signal", "to": host_id, "data": description})
    relayed = host.inbox.take()
    sends = {"sendrecv", "sendonly"} & {audio, video}
    receives = {"sendrecv", "recvonly"} & {audio, video}
    allowed = (
        (not sends or "publish" in grants)
        and (not receives or "subscribe" in grants)
        and (not data or kind == "answer" or "data" in grants)
    )
    if allowed:
        assert answers == [] and len(relayed) == 1
    else:
        assert [a["code"] for a in answers] == ["forbidden"] and relayed == []
