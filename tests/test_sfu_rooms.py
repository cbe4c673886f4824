"""SFU rooms end to end: `rtcroom serve --sfu` in front of Debian's Janus, with Python peers.

Janus runs in the test network (scripts/netns) from `rtcroom sfu-config`'s
output; the peers are rtcroom.client Rooms, which publish once and receive
everyone through the SFU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiortc.mediastreams import MediaStreamTrack
from conftest import JANUS_SECRET, RunningJanus, RunningServer, free_port

from rtcroom.auth import mint_token
from rtcroom.client import RemotePeer, Room, RoomError
from rtcroom.commands.media import PatternTrack
from rtcroom.sfu.janus import Janus, JanusError

SECRET = "an-auth-secret-for-the-sfu-tests-0123456789"


def sfu_server(
    start_server: Callable[..., RunningServer], janus_url: str, *args: str
) -> RunningServer:
    return start_server("--sfu", janus_url, *args, env={"RTCROOM_SFU_SECRET": JANUS_SECRET})


class Receiver:
    """Collects the tracks a Room receives, by sending peer's name."""

    def __init__(self, room: Room) -> None:
        self.tracks: dict[str, list[MediaStreamTrack]] = {}
        self.arrived = asyncio.Event()

        @room.on("track")
        def on_track(peer: RemotePeer, track: MediaStreamTrack) -> None:
            self.tracks.setdefault(peer.name, []).append(track)
            self.arrived.set()

    async def video_from(
        self,
        name: str,
        timeout: float = 30,
        skip: list[MediaStreamTrack] = (),  # type: ignore[assignment]
    ) -> MediaStreamTrack:
        """The first video track from `name` (but those in `skip`), waiting for it."""

        async def wait() -> MediaStreamTrack:
            while True:
                for track in self.tracks.get(name, []):
                    if track.kind == "video" and track not in skip:
                        return track
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(wait(), timeout)


async def frame_sizes(track: MediaStreamTrack, count: int = 5) -> set[tuple[int, int]]:
    sizes = set()
    for _ in range(count):
        frame = await asyncio.wait_for(track.recv(), 20)
        sizes.add((frame.width, frame.height))  # type: ignore[attr-defined]
    return sizes


async def participants(janus: RunningJanus, room: str) -> list[dict[str, object]]:
    """What Janus itself says is in `room`."""
    client = await Janus.connect(janus.url, JANUS_SECRET)
    try:
        session = await client.create_session()
        handle = await session.attach("janus.plugin.videoroom")
        try:
            listed = await handle.request({"request": "listparticipants", "room": room})
        except JanusError as exc:
            if exc.code == 426:  # no such room
                return []
            raise
        return list(listed.get("participants", []))
    finally:
        await client.close()


async def test_every_peer_receives_every_publisher_through_the_sfu(
    start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus.url, "--sfu-from", "1")
    sizes = {f"py{i}": (160 + 32 * i, 120 + 16 * i) for i in range(4)}
    rooms = []
    try:
        for name, (width, height) in sizes.items():
            room = await Room.join(server.url, "big", name, tracks=[PatternTrack(width, height)])
            assert room.mode == "sfu"
            rooms.append((room, Receiver(room)))
        for room, receiver in rooms:
            for name, size in sizes.items():
                if name == room.name:
                    continue
                track = await receiver.video_from(name)
                assert await frame_sizes(track) == {size}, (room.name, name)
        # On Janus's side: four participants, every one publishing.
        listed = await participants(janus, "big")
        assert sorted(p["id"] for p in listed) == sorted(room.id for room, _ in rooms)
        assert all(p["publisher"] for p in listed)
    finally:
        for room, _ in rooms:
            await room.leave()
    # Everything rtcroom opened on Janus for them is closed: the room is gone.
    client = await Janus.connect(janus.url, JANUS_SECRET)
    try:
        session = await client.create_session()
        handle = await session.attach("janus.plugin.videoroom")
        for _ in range(50):
            exists = await handle.request({"request": "exists", "room": "big"})
            if not exists["exists"]:
                break
            await asyncio.sleep(0.1)
        assert not exists["exists"]
    finally:
        await client.close()


async def test_a_subscribe_only_token_publishes_nothing(
    start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus.url, "--sfu-from", "1", "--auth-secret", SECRET)
    speaker_token = mint_token(
        SECRET, room="talk", identity="speaker", grants=["publish", "subscribe", "data"]
    )
    viewer_token = mint_token(SECRET, room="talk", identity="viewer", grants=["subscribe", "data"])
    speaker = await Room.join(
        server.url, "talk", "speaker", tracks=[PatternTrack(320, 240)], token=speaker_token
    )
    errors: list[RoomError] = []
    viewer = await Room.join(
        server.url, "talk", "viewer", tracks=[PatternTrack(200, 100)], token=viewer_token
    )
    viewer.on("error", errors.append)
    try:
        receiver = Receiver(viewer)
        track = await receiver.video_from("speaker")
        assert await frame_sizes(track) == {(320, 240)}
        # The viewer's client, holding a track, did not publish it (its
        # grants say so); a publish it sends anyway is refused.
        from rtcroom.protocol import PublishOffer

        offer = viewer.sfu.publisher
        assert offer is None
        await viewer.send(PublishOffer(sdp=(await _an_offer_that_sends_video())))
        for _ in range(50):
            if errors:
                break
            await asyncio.sleep(0.1)
        assert errors and errors[0].code == "forbidden"
        # Janus knows the viewer, and knows it publishes nothing.
        listed = {p["id"]: p for p in await participants(janus, "talk")}
        assert listed[viewer.id]["publisher"] is False
        assert listed[speaker.id]["publisher"] is True
    finally:
        await viewer.leave()
        await speaker.leave()


async def _an_offer_that_sends_video() -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver(PatternTrack(64, 64), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()


async def test_without_janus_mesh_rooms_work_and_sfu_rooms_are_unavailable(
    start_server: Callable[..., RunningServer],
) -> None:
    nowhere = f"ws://127.0.0.1:{free_port()}"
    server = sfu_server(start_server, nowhere, "--sfu-from", "3")
    assert "cannot reach the SFU" in server.log.read_text()
    first = await Room.join(server.url, "small", "a", tracks=[PatternTrack(160, 120)])
    second = await Room.join(server.url, "small", "b", tracks=[PatternTrack(192, 136)])
    try:
        assert first.mode == second.mode == "mesh"
        track = await Receiver(second).video_from("a")
        assert await frame_sizes(track) == {(160, 120)}
        with pytest.raises(RoomError) as refused:
            await Room.join(server.url, "small", "c", reconnect=False)
        assert refused.value.code == "unavailable"
    finally:
        await first.leave()
        await second.leave()


async def test_a_room_moves_to_the_other_node_when_its_janus_is_killed(
    start_server: Callable[..., RunningServer], start_janus: Callable[..., RunningJanus]
) -> None:
    nodes = [start_janus(0), start_janus(1)]
    server = start_server(
        *("--sfu", nodes[0].url, "--sfu", nodes[1].url, "--sfu-from", "1"),
        env={"RTCROOM_SFU_SECRET": JANUS_SECRET},
    )
    sizes = {f"py{i}": (160 + 32 * i, 120 + 16 * i) for i in range(3)}
    rooms = []
    try:
        for name, (width, height) in sizes.items():
            room = await Room.join(server.url, "moving", name, tracks=[PatternTrack(width, height)])
            rooms.append((room, Receiver(room)))
        for room, receiver in rooms:
            for name in sizes:
                if name != room.name:
                    await receiver.video_from(name)
        hosting = [node for node in nodes if await participants(node, "moving")]
        assert len(hosting) == 1
        before = {
            room.name: {name: list(tracks) for name, tracks in receiver.tracks.items()}
            for room, receiver in rooms
        }
        hosting[0].process.kill()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        # Everyone gets everyone's video again, on new tracks from the other
        # node, without anyone rejoining.
        for room, receiver in rooms:
            for name, size in sizes.items():
                if name == room.name:
                    continue
                old = [t for t in before[room.name].get(name, []) if t.kind == "video"]
                track = await receiver.video_from(name, skip=old, timeout=20)
                assert await frame_sizes(track) == {size}
        assert loop.time() - killed_at < 15
        other = next(node for node in nodes if node is not hosting[0])
        assert len(await participants(other, "moving")) == 3
        assert all(room.id and not room.closed for room, _ in rooms)
    finally:
        for room, _ in rooms:
            await room.leave()
