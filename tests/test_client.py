"""rtcroom.client: Python peers in rooms, through a real `rtcroom serve`."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiortc import RTCDataChannel
from conftest import RunningServer, RunningTurn
from proxy import Proxy
from test_browser_resume import NEW_ADDRESS, VETH, set_address
from test_sfu_browser import Counter

from rtcroom.auth import ALL_GRANTS, mint_token
from rtcroom.client import (
    REACTIONS,
    ChatMessage,
    RemotePeer,
    Room,
    RoomError,
    Status,
    receive_files,
    send_file,
)
from rtcroom.commands.media import PatternTrack


async def test_two_python_peers_exchange_data_channel_messages(server: RunningServer) -> None:
    ann = await Room.join(server.url, "py", "Ann")
    bo = await Room.join(server.url, "py", "Bo")
    got_by_ann: asyncio.Queue[str] = asyncio.Queue()
    got_by_bo: asyncio.Queue[str] = asyncio.Queue()

    @ann.on("datachannel")
    def on_channel(peer: RemotePeer, channel: RTCDataChannel) -> None:
        assert peer.name == "Bo"

        @channel.on("message")
        def echo(message: str) -> None:
            got_by_ann.put_nowait(message)
            channel.send(f"ack {message}")

    peer = await bo.wait_for_peer("Ann", timeout=10)
    channel = peer.createDataChannel("game")
    channel.on("message", got_by_bo.put_nowait)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), 15)
    for i in range(20):
        channel.send(f"move {i}")
    for i in range(20):
        assert await asyncio.wait_for(got_by_ann.get(), 10) == f"move {i}"
        assert await asyncio.wait_for(got_by_bo.get(), 10) == f"ack move {i}"

    # Chat between Python peers, on the chat channel the web app uses.
    chats: asyncio.Queue[ChatMessage] = asyncio.Queue()
    ann.on("chat", lambda peer, message: chats.put_nowait(message))
    bo.send_chat("hello Ann")
    message = await asyncio.wait_for(chats.get(), 10)
    assert (message.name, message.text) == ("Bo", "hello Ann")

    left = asyncio.Event()
    ann.on("peerleft", lambda peer: left.set())
    await bo.leave()
    await asyncio.wait_for(left.wait(), 10)
    assert ann.peers == {}
    await ann.leave()
    await ann.leave()  # idempotent


async def test_file_between_python_peers(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    ann = await Room.join(server.url, "pyfiles", "Ann")
    receive_files(ann, tmp_path / "in")
    bo = await Room.join(server.url, "pyfiles", "Bo")
    peer = await bo.wait_for_peer("Ann", timeout=10)
    transfer = await asyncio.wait_for(send_file(peer, source), 60)
    assert transfer.state == "done"
    saved = tmp_path / "in" / "data.bin"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == transfer.sha256
    assert transfer.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    await bo.leave()
    await ann.leave()


async def test_python_peers_set_and_read_participant_state(server: RunningServer) -> None:
    # A program is a bot by default, sending what its tracks hold.
    bot = await Room.join(server.url, "py-state", "Bot", tracks=[PatternTrack()])
    assert bot.state == Status(mic="none", camera="on", kind="bot")
    recorder = await Room.join(
        server.url, "py-state", "Rec", state=Status(mic="none", camera="none", kind="recorder")
    )
    seen = recorder.peer_named("Bot")
    assert seen is not None and seen.state == Status(mic="none", camera="on", kind="bot")
    other = await bot.wait_for_peer("Rec", timeout=10)
    assert other.state.kind == "recorder"

    changes: asyncio.Queue[tuple[str, Status]] = asyncio.Queue()
    recorder.on("state", lambda peer, state: changes.put_nowait((peer.name, state)))
    reactions: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    recorder.on("reaction", lambda peer, emoji: reactions.put_nowait((peer.name, emoji)))
    assert await bot.set_state(camera="off", hand=True) == Status(
        mic="none", camera="off", hand=True, kind="bot"
    )
    name, state = await asyncio.wait_for(changes.get(), 10)
    assert (name, state.camera, state.hand) == ("Bot", "off", True)
    assert seen.state == state
    await bot.react(REACTIONS[0])
    assert await asyncio.wait_for(reactions.get(), 10) == ("Bot", REACTIONS[0])
    # Mistakes fail in words, before anything is sent.
    with pytest.raises(ValueError, match="reactions"):
        await bot.react("hello")
    with pytest.raises(TypeError):
        await bot.set_state(volume=3)
    with pytest.raises(msgspec.ValidationError, match="mic"):
        await bot.set_state(mic="loud")
    assert bot.state.mic == "none"
    await bot.leave()
    await recorder.leave()


async def test_errors_are_raised_as_room_errors(server: RunningServer) -> None:
    with pytest.raises(RoomError) as info:
        await Room.join(server.url, "bad room", "x")
    assert info.value.code == "bad-message"
    with pytest.raises(RoomError) as info:
        await Room.join("http://127.0.0.1:9", "r", "x", timeout=3)
    assert info.value.code == "unreachable"


async def test_relay_only_python_peers_exchange_data_through_coturn(
    start_server: Callable[..., RunningServer], start_turn: Callable[..., RunningTurn]
) -> None:
    # Every peer is on this machine: coturn gets the testing-only loopback allowance.
    turn = start_turn(allow_loopback_relay=True)
    server = start_server("--turn-url", turn.url, env={"RTCROOM_TURN_SECRET": turn.secret})
    ann = await Room.join(server.url, "private", "Ann", relay_only=True)
    received: asyncio.Queue[Any] = asyncio.Queue()

    @ann.on("datachannel")
    def on_channel(peer: RemotePeer, channel: RTCDataChannel) -> None:
        channel.on("message", received.put_nowait)

    bo = await Room.join(server.url, "private", "Bo", relay_only=True)
    assert bo.ice_servers[0].username.endswith(":" + bo.id)
    peer = await bo.wait_for_peer("Ann", timeout=10)
    channel = peer.createDataChannel("secret")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await asyncio.wait_for(opened.wait(), 30)
    for i in range(10):
        channel.send(f"message {i}")
    assert [await asyncio.wait_for(received.get(), 10) for _ in range(10)] == [
        f"message {i}" for i in range(10)
    ]
    # Relay only: the only candidates gathered are coturn's relayed addresses.
    gatherer = peer.pc.sctp.transport.transport.iceGatherer
    types = {candidate.type for candidate in gatherer.getLocalCandidates()}
    assert types == {"relay"}
    await bo.leave()
    await ann.leave()


async def chat_arrives(sender: Room, receiver: Room, text: str) -> None:
    """`text` sent by `sender` reaches `receiver` over their peer-to-peer chat channel."""
    got: asyncio.Queue[ChatMessage] = asyncio.Queue()

    def on_chat(peer: RemotePeer, message: ChatMessage) -> None:
        got.put_nowait(message)

    receiver.on("chat", on_chat)
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            # Until the channel is open a message may be queued or dropped: resend.
            sender.send_chat(text)
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(got.get(), 0.5)
                if message.text == text:
                    assert message.name == sender.name
                    return
            assert asyncio.get_running_loop().time() < deadline, f"{text!r} never arrived"
    finally:
        receiver.remove_listener("chat", on_chat)


async def test_a_python_peer_resumes_after_its_connection_drops(server: RunningServer) -> None:
    proxy = Proxy(server.port)
    try:
        ann = await Room.join(proxy.url, "comeback", "Ann")
        bo = await Room.join(server.url, "comeback", "Bo")
        await chat_arrives(bo, ann, "before")
        events: list[object] = []
        ann.on("reconnecting", lambda attempt: events.append(("reconnecting", attempt)))
        back = asyncio.Event()
        ann.on("reconnected", lambda resumed: (events.append(("reconnected", resumed)), back.set()))
        bo.on("peerleft", lambda peer: events.append(("bo saw peerleft", peer.name)))
        ann_id = ann.id

        assert proxy.drop() >= 1  # the network fails, no closing handshake
        await asyncio.wait_for(back.wait(), 15)
        assert events[0] == ("reconnecting", 1)
        assert events[-1] == ("reconnected", True)
        assert ann.id == ann_id and not ann.closed
        # Nobody noticed, and the call goes on both ways.
        await chat_arrives(ann, bo, "after, from Ann")
        await chat_arrives(bo, ann, "after, from Bo")
        assert ("bo saw peerleft", "Ann") not in events
        await ann.leave()
        await bo.leave()
    finally:
        proxy.close()


async def test_python_peers_call_again_after_the_server_restarts(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server()
    ann = await Room.join(server.url, "restart", "Ann")
    bo = await Room.join(server.url, "restart", "Bo")
    await chat_arrives(ann, bo, "first life")
    old_ids = {ann.id, bo.id}
    resumed: list[bool] = []
    ann.on("reconnected", resumed.append)
    bo.on("reconnected", resumed.append)

    server.stop()  # rooms and resume keys are gone with it
    start_server(port=server.port)
    deadline = asyncio.get_running_loop().time() + 30
    while len(resumed) < 2:
        assert asyncio.get_running_loop().time() < deadline, "the peers did not come back"
        await asyncio.sleep(0.1)
    assert resumed == [False, False]  # new ids: they joined anew
    assert old_ids.isdisjoint({ann.id, bo.id})
    await bo.wait_for_peer("Ann", timeout=15)
    await ann.wait_for_peer("Bo", timeout=15)
    await chat_arrives(ann, bo, "second life")
    await chat_arrives(bo, ann, "second life, back")
    await ann.leave()
    await bo.leave()


async def test_a_refused_rejoin_closes_the_room(
    start_server: Callable[..., RunningServer],
) -> None:
    secret = "client-test-secret-0123456789abcdef"
    server = start_server("--auth-secret", secret)
    token = mint_token(secret, room="gate", identity="a", ttl=60, grants=ALL_GRANTS)
    ann = await Room.join(server.url, "gate", "Ann", token=token)
    errors: list[RoomError] = []
    ann.on("error", errors.append)
    server.stop()
    start_server("--auth-secret", "another-secret-0123456789abcdefgh", port=server.port)
    await asyncio.wait_for(ann.wait_closed(), 30)
    assert [error.code for error in errors] == ["unauthorized"]


async def test_a_peer_leaving_does_not_stop_the_video_the_others_get(server: RunningServer) -> None:
    """Each connection sends its own copy of a track: aiortc ends a sender's
    track when its connection closes, which would freeze everyone else."""
    bo = await Room.join(server.url, "shared-track", "Bo")
    cy = await Room.join(server.url, "shared-track", "Cy")
    bo_frames, cy_frames = Counter(bo).frames, Counter(cy).frames
    camera = PatternTrack(160, 120)
    ann = await Room.join(server.url, "shared-track", "Ann", tracks=[camera])
    deadline = asyncio.get_running_loop().time() + 20
    while min(bo_frames.get("Ann", 0), cy_frames.get("Ann", 0)) < 20:
        assert asyncio.get_running_loop().time() < deadline, (bo_frames, cy_frames)
        await asyncio.sleep(0.1)
    await cy.leave()
    await asyncio.sleep(1)  # Ann's connection with Cy is closed by now
    before = bo_frames["Ann"]
    await asyncio.sleep(1.5)
    assert camera.readyState == "live"
    assert bo_frames["Ann"] > before + 15, "Bo's video from Ann stopped when Cy left"
    await ann.leave()
    await bo.leave()


async def test_two_python_peers_come_back_after_a_network_change(server: RunningServer) -> None:
    """The address both use goes away and another comes: the connection
    fails (aiortc: no consent for about 30 s) and the peer that offered it
    offers a new one, which the other takes: video flows again both ways."""
    if os.environ.get("RTCROOM_NETNS") != "1":
        raise RuntimeError("this test changes the test network's address: run it in scripts/netns")
    ann = await Room.join(server.url, "py-roam2", "Ann", tracks=[PatternTrack(160, 120)])
    bo = await Room.join(server.url, "py-roam2", "Bo", tracks=[PatternTrack(160, 120)])
    ann_frames, bo_frames = Counter(ann).frames, Counter(bo).frames
    loop = asyncio.get_running_loop()

    async def both_advance(by: int, within: float) -> None:
        start = (ann_frames.get("Bo", 0), bo_frames.get("Ann", 0))
        deadline = loop.time() + within
        while ann_frames.get("Bo", 0) < start[0] + by or bo_frames.get("Ann", 0) < start[1] + by:
            assert loop.time() < deadline, (ann_frames, bo_frames)
            await asyncio.sleep(0.25)

    await both_advance(20, 20)
    ids = (ann.id, bo.id)
    set_address(VETH, NEW_ADDRESS)
    try:
        await asyncio.sleep(2)
        await both_advance(20, 75)
        assert (ann.id, bo.id) == ids
        (peer,) = ann.peers.values()
        assert peer.pc.connectionState == "connected"
    finally:
        set_address(NEW_ADDRESS, VETH)
    await ann.leave()
    await bo.leave()
