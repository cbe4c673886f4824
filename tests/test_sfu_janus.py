"""rtcroom's Janus client (rtcroom.sfu.janus) against Debian's Janus: refusals, and media
published by one aiortc peer and received by another through the VideoRoom."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from conftest import JANUS_SECRET, RunningJanus, free_port

from rtcroom.commands.media import PatternTrack
from rtcroom.sfu.janus import Janus, JanusError

VIDEOROOM = "janus.plugin.videoroom"


def jsep(pc: RTCPeerConnection) -> dict[str, Any]:
    description = pc.localDescription
    return {"type": description.type, "sdp": description.sdp}


async def test_refusals_are_janus_errors(janus: RunningJanus) -> None:
    with pytest.raises(JanusError) as unreachable:
        await Janus.connect(f"ws://127.0.0.1:{free_port()}", JANUS_SECRET, timeout=2)
    assert unreachable.value.code == 0 and "cannot reach Janus" in unreachable.value.reason
    wrong = await Janus.connect(janus.url, "not-the-secret-at-all")
    try:
        with pytest.raises(JanusError) as refused:
            await wrong.create_session()
        assert refused.value.code == 403
    finally:
        await wrong.close()
    client = await Janus.connect(janus.url, JANUS_SECRET)
    try:
        session = await client.create_session()
        with pytest.raises(JanusError) as no_plugin:
            await session.attach("janus.plugin.echotest")
        assert no_plugin.value.code == 460
        handle = await session.attach(VIDEOROOM)
        # A plugin's refusal: joining a room that does not exist.
        with pytest.raises(JanusError) as no_room:
            await handle.message({"request": "join", "ptype": "publisher", "room": "nowhere"})
        assert no_room.value.code == 426  # JANUS_VIDEOROOM_ERROR_NO_SUCH_ROOM
    finally:
        await client.close()
    assert client.sessions == {} and client.handles == {}


async def test_a_stream_published_once_reaches_a_subscriber(janus: RunningJanus) -> None:
    client = await Janus.connect(janus.url, JANUS_SECRET)
    no_stun = RTCConfiguration(iceServers=[])
    publisher_pc, subscriber_pc = RTCPeerConnection(no_stun), RTCPeerConnection(no_stun)
    try:
        session = await client.create_session()
        publisher = await session.attach(VIDEOROOM)
        created = await publisher.request({"request": "create", "room": "standup"})
        assert created["videoroom"] == "created"
        joined = await publisher.message(
            {"request": "join", "ptype": "publisher", "room": "standup", "display": "ann"}
        )
        assert joined.data["videoroom"] == "joined" and joined.data["publishers"] == []
        feed = joined.data["id"]
        # Publish: our offer (its candidates in it), Janus's answer.
        publisher_pc.addTrack(PatternTrack(320, 240))
        await publisher_pc.setLocalDescription(await publisher_pc.createOffer())
        configured = await publisher.message(
            {"request": "configure", "audio": False, "video": True}, jsep(publisher_pc)
        )
        assert configured.data["configured"] == "ok" and configured.jsep is not None
        await publisher_pc.setRemoteDescription(RTCSessionDescription(**configured.jsep))
        # Janus says so on the publisher's handle once its media is up; a feed
        # can be subscribed to from then on.
        while (await asyncio.wait_for(publisher.events.get(), 15)).kind != "webrtcup":
            pass
        # Subscribe on a handle of its own: Janus offers, we answer and start.
        subscriber = await session.attach(VIDEOROOM)
        attached = await subscriber.message(
            {
                "request": "join",
                "ptype": "subscriber",
                "room": "standup",
                "streams": [{"feed": feed}],
            }
        )
        assert attached.data["videoroom"] == "attached" and attached.jsep is not None
        tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
        subscriber_pc.on("track", tracks.put_nowait)
        await subscriber_pc.setRemoteDescription(RTCSessionDescription(**attached.jsep))
        await subscriber_pc.setLocalDescription(await subscriber_pc.createAnswer())
        started = await subscriber.message({"request": "start"}, jsep(subscriber_pc))
        assert started.data.get("started") == "ok"
        track = await asyncio.wait_for(tracks.get(), 10)
        assert track.kind == "video"
        # Frames of the publisher's pattern arrive, decoded, through Janus.
        sizes = set()
        for _ in range(10):
            frame = await asyncio.wait_for(track.recv(), 20)
            sizes.add((frame.width, frame.height))  # type: ignore[attr-defined]
        assert sizes == {(320, 240)}
    finally:
        await publisher_pc.close()
        await subscriber_pc.close()
        await client.close()
    assert client.closed.is_set()
