"""SFU rooms end to end: `rtcroom serve --sfu` in front of Debian's Janus, with Python peers.

Janus runs in the test network (scripts/netns) from `rtcroom sfu-config`'s
output; the peers are rtcroom.client Rooms, which publish once and receive
everyone through the SFU.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
import websockets
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from conftest import (
    JANUS_ADMIN_SECRET,
    JANUS_SECRET,
    VETH,
    RunningJanus,
    RunningRedis,
    RunningServer,
    free_port,
)
from proxy import Proxy
from test_endpoints_socketio import flask_join, tutorials  # noqa: F401 (a fixture)

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
    """Decodes every video track a Room receives, as it comes, by sending peer's name."""

    def __init__(self, room: Room) -> None:
        self.tracks: dict[str, list[MediaStreamTrack]] = {}
        # Per sender: when each recent frame was decoded (loop time), and its size.
        self.frames: dict[str, list[tuple[float, tuple[int, int]]]] = {}
        self.arrived = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

        @room.on("track")
        def on_track(peer: RemotePeer, track: MediaStreamTrack) -> None:
            self.tracks.setdefault(peer.name, []).append(track)
            if track.kind == "video":
                task = asyncio.ensure_future(self._decode(peer.name, track))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def _decode(self, name: str, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            frames = self.frames.setdefault(name, [])
            frames.append((loop.time(), (frame.width, frame.height)))  # type: ignore[attr-defined]
            del frames[:-100]
            self.arrived.set()

    async def sizes_from(
        self, name: str, *, since: float | None = None, count: int = 5, timeout: float = 30
    ) -> set[tuple[int, int]]:
        """The sizes of `count` frames from `name` decoded after `since` (default: now)."""
        after = asyncio.get_running_loop().time() if since is None else since

        async def wait() -> set[tuple[int, int]]:
            while True:
                fresh = [size for at, size in self.frames.get(name, []) if at > after]
                if len(fresh) >= count:
                    return set(fresh)
                self.arrived.clear()
                await self.arrived.wait()

        return await asyncio.wait_for(wait(), timeout)


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
                assert await receiver.sizes_from(name) == {size}, (room.name, name)
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
        assert await receiver.sizes_from("speaker") == {(320, 240)}
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
        assert await Receiver(second).sizes_from("a") == {(160, 120)}
        with pytest.raises(RoomError) as refused:
            await Room.join(server.url, "small", "c", reconnect=False)
        assert refused.value.code == "unavailable"
    finally:
        await first.leave()
        await second.leave()


def numeric_room_ids(folder: Path) -> None:
    """Debian's sample setting: VideoRoom rooms numbered, not named."""
    videoroom = folder / "janus.plugin.videoroom.jcfg"
    text = videoroom.read_text()
    assert "string_ids = true" in text
    videoroom.write_text(text.replace("string_ids = true", "string_ids = false"))


async def readyz(server: RunningServer) -> tuple[int, str]:
    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    return await asyncio.to_thread(get)


async def test_a_janus_configured_otherwise_is_named_at_start_and_in_readyz(
    start_server: Callable[..., RunningServer], start_janus: Callable[..., RunningJanus]
) -> None:
    # A Janus that rtcroom did not configure, VideoRoom with numeric ids:
    # said at start-up and in /readyz, with the setting to change.
    numbered = start_janus(0, edit=numeric_room_ids)
    server = sfu_server(start_server, numbered.url, "--sfu-from", "1")
    wanted = "set string_ids = true in janus.plugin.videoroom.jcfg (general)"
    for _ in range(100):
        if wanted in server.log.read_text():
            break
        await asyncio.sleep(0.1)
    errors = [line for line in server.log.read_text().splitlines() if " ERROR " in line]
    assert len(errors) == 1, errors
    assert f"the SFU (Janus) at {numbered.url} cannot serve rtcroom: its VideoRoom" in errors[0]
    assert wanted in errors[0]
    status, text = await readyz(server)
    assert status == 503 and wanted in text
    with pytest.raises(RoomError) as refused:
        await Room.join(server.url, "big", "a", reconnect=False)
    assert refused.value.code == "unavailable"

    # Another secret than its api_secret.
    other = start_janus(1)
    wrong = start_server("--sfu", other.url, env={"RTCROOM_SFU_SECRET": "not-" + JANUS_SECRET})
    status, text = await readyz(wrong)
    assert status == 503
    assert "refuses rtcroom's API secret" in text and "must be the api_secret" in text
    assert "refuses rtcroom's API secret" in wrong.log.read_text()

    # Configured as rtcroom writes it: ready.
    fine = sfu_server(start_server, other.url, "--sfu-from", "1")
    assert await readyz(fine) == (200, "ready")
    room = await Room.join(fine.url, "big", "a", reconnect=False)
    try:
        assert room.mode == "sfu"
    finally:
        await room.leave()


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
                    await receiver.sizes_from(name)
        hosting = [node for node in nodes if await participants(node, "moving")]
        assert len(hosting) == 1
        hosting[0].process.kill()
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        # Everyone decodes everyone's video again, through the other node,
        # without anyone rejoining (frames a second after the kill: none of
        # the dead node's are still on their way).
        for room, receiver in rooms:
            for name, size in sizes.items():
                if name != room.name:
                    assert await receiver.sizes_from(name, since=killed_at + 1) == {size}
        assert loop.time() - killed_at < 15
        other = next(node for node in nodes if node is not hosting[0])
        assert len(await participants(other, "moving")) == 3
        assert all(room.id and not room.closed for room, _ in rooms)
    finally:
        for room, _ in rooms:
            await room.leave()


async def test_one_room_on_two_processes_meets_on_one_node_and_resumes_across(
    start_server: Callable[..., RunningServer],
    start_janus: Callable[..., RunningJanus],
    redis_server: RunningRedis,
) -> None:
    nodes = [start_janus(0), start_janus(1)]
    env = {"RTCROOM_SFU_SECRET": JANUS_SECRET}
    common = ("--broker", redis_server.url, "--sfu-from", "1")
    # Each process lists the nodes in another order: only the shared
    # placement brings the room's members together.
    s1 = start_server(*common, "--sfu", nodes[0].url, "--sfu", nodes[1].url, env=env)
    s2 = start_server(*common, "--sfu", nodes[1].url, "--sfu", nodes[0].url, env=env)
    balancer = Proxy(s1.port)
    a = await Room.join(balancer.url, "shared", "a", tracks=[PatternTrack(160, 120)])
    b = await Room.join(s2.url, "shared", "b", tracks=[PatternTrack(192, 144)])
    try:
        at_a, at_b = Receiver(a), Receiver(b)
        assert await at_b.sizes_from("a") == {(160, 120)}
        assert await at_a.sizes_from("b") == {(192, 144)}
        hosting = [node for node in nodes if await participants(node, "shared")]
        assert len(hosting) == 1 and len(await participants(hosting[0], "shared")) == 2
        # A rolling restart: s1 goes, the balancer sends a's reconnection to s2,
        # where it resumes (same id) and its media comes back through s2.
        a_id = a.id
        balancer.target_port = s2.port
        s1.process.send_signal(signal.SIGTERM)
        # s1 hands a over within its drain: a second after, a is through s2.
        restarted = asyncio.get_running_loop().time()
        assert await at_b.sizes_from("a", since=restarted + 1, timeout=20) == {(160, 120)}
        assert await at_a.sizes_from("b", since=restarted + 1, timeout=20) == {(192, 144)}
        assert a.id == a_id and not a.closed
        assert await asyncio.to_thread(s1.process.wait, 10) == 0
    finally:
        await a.leave()
        await b.leave()
        balancer.close()


async def test_rtcroom_reconnects_when_its_websocket_to_janus_drops(
    start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    link = Proxy(janus.port, host=VETH)
    server = sfu_server(start_server, f"ws://{VETH}:{link.port}", "--sfu-from", "1")
    a = await Room.join(server.url, "cut", "a", tracks=[PatternTrack(160, 120)])
    b = await Room.join(server.url, "cut", "b", tracks=[PatternTrack(192, 144)])
    try:
        at_a, at_b = Receiver(a), Receiver(b)
        await at_a.sizes_from("b")
        await at_b.sizes_from("a")
        assert link.drop() == 1
        cut = asyncio.get_running_loop().time()
        assert await at_b.sizes_from("a", since=cut + 1, timeout=20) == {(160, 120)}
        assert await at_a.sizes_from("b", since=cut + 1, timeout=20) == {(192, 144)}
        assert "lost the connection to Janus" in server.log.read_text()
    finally:
        await a.leave()
        await b.leave()
        server.stop()  # before the link goes: no reconnection through it meanwhile
        link.close()


async def janus_admin(janus: RunningJanus, request: str) -> dict[str, Any]:
    """A request to Janus's admin API (its own WebSocket and secret)."""
    async with websockets.connect(
        f"ws://127.0.0.1:{janus.admin_port}",  # the admin API is on loopback only
        subprotocols=[websockets.Subprotocol("janus-admin-protocol")],
    ) as ws:
        await ws.send(
            json.dumps({"janus": request, "transaction": "t", "admin_secret": JANUS_ADMIN_SECRET})
        )
        answer: dict[str, Any] = json.loads(await ws.recv())
        return answer


async def test_no_janus_session_outlives_its_peer_after_1000_joins(
    start_server: Callable[..., RunningServer], janus: RunningJanus
) -> None:
    server = sfu_server(start_server, janus.url, "--sfu-from", "1", "--joins-per-minute", "100000")
    baseline = await janus_admin(janus, "list_sessions")
    assert baseline["janus"] == "success", baseline

    async def visit(worker: int) -> None:
        async with websockets.connect(server.ws_url) as ws:
            for _ in range(100):
                await ws.send(
                    json.dumps({"type": "join", "room": f"churn{worker}", "name": "x", "sfu": True})
                )
                joined = json.loads(await ws.recv())
                assert joined["type"] == "joined" and joined["mode"] == "sfu", joined
                # The SFU takes the peer in: a Janus session and handle for it.
                await ws.send(json.dumps({"type": "subscribe"}))
                await ws.send(json.dumps({"type": "leave"}))

    await asyncio.gather(*(visit(worker) for worker in range(10)))
    sessions: list[Any] = []
    for _ in range(100):
        sessions = (await janus_admin(janus, "list_sessions"))["sessions"]
        if len(sessions) <= len(baseline["sessions"]):
            break
        await asyncio.sleep(0.1)
    assert len(sessions) == len(baseline["sessions"]), sessions
    for room in (f"churn{worker}" for worker in range(10)):
        assert await participants(janus, room) == []


async def test_clients_that_cannot_use_the_sfu_keep_a_mesh_or_are_told_why(
    start_server: Callable[..., RunningServer],
    janus: RunningJanus,
    tutorials: Any,  # noqa: F811 (the fixture)
) -> None:
    server = sfu_server(start_server, janus.url, "--sfu-from", "2")
    # A tutorial's Socket.IO client in the room: it stays a mesh as it grows.
    a = await Room.join(server.url, "mixed", "a", tracks=[PatternTrack(160, 120)])
    tutorial = await tutorials().connect(server)
    await flask_join(tutorial, "mixed", "tutorial")
    assert (await tutorial.next())[0] == "ready"
    c = await Room.join(server.url, "mixed", "c")
    try:
        assert a.mode == c.mode == "mesh"
        assert await Receiver(c).sizes_from("a") == {(160, 120)}
    finally:
        await c.leave()
        await a.leave()
        await tutorial.close()
    # A room the SFU serves already turns such a client away, and says why.
    b = await Room.join(server.url, "large", "b")
    d = await Room.join(server.url, "large", "d")
    late = await tutorials().connect(server)
    try:
        assert b.mode == d.mode == "sfu"
        await flask_join(late, "large", "late")
        event, data = await late.next()
        assert (event, data["code"]) == ("rtcroom-error", "unsupported")
        assert "SFU" in data["message"]
    finally:
        await b.leave()
        await d.leave()
        await late.close()


async def command(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rtcroom",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def printed(process: asyncio.subprocess.Process, text: str, timeout: float = 30) -> None:
    assert process.stdout is not None

    async def wait() -> None:
        while line := await process.stdout.readline():  # type: ignore[union-attr]
            if text in line.decode():
                return
        raise AssertionError(f"{text!r} never printed")

    await asyncio.wait_for(wait(), timeout)


async def interrupt(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
        await asyncio.wait_for(process.communicate(), 30)


async def test_the_recorder_and_the_echo_bot_in_an_sfu_room(
    start_server: Callable[..., RunningServer], janus: RunningJanus, tmp_path: Path
) -> None:
    server = sfu_server(start_server, janus.url, "--sfu-from", "1")
    sizes = {"ann": (176, 144), "bo": (208, 160)}
    rooms = [
        await Room.join(server.url, "studio", name, tracks=[PatternTrack(*size)])
        for name, size in sizes.items()
    ]
    receiver = Receiver(rooms[0])
    recorder = await command("record", server.url, "studio", "--out", str(tmp_path))
    echo = await command("bot", "echo", server.url, "studio")
    try:
        await printed(recorder, "Recording")
        # The echo bot publishes what it receives through the SFU: ann gets
        # her own pattern back (and bo's) from it.
        assert (176, 144) in await receiver.sizes_from("echo", count=20)
        await asyncio.sleep(4)
    finally:
        await interrupt(echo)
        await interrupt(recorder)
        for room in rooms:
            await room.leave()
    # The recorder got everyone through its one subscription: a playable file each.
    for name, (width, height) in sizes.items():
        [path] = tmp_path.glob(f"{name}-*.mp4")
        with av.open(str(path)) as container:
            frames = [frame for frame in container.decode(container.streams.video[0])]
        assert len(frames) >= 40, (name, len(frames))
        assert (frames[-1].width, frames[-1].height) == (width, height)
