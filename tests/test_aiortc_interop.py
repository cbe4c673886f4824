"""An independent aiortc peer that speaks protocol v1 calls a browser page.

The peer below is written from docs/protocol.md alone (not with rtcroom's
own code): it shows that another client implementation interoperates.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from browser import close, open_call, peer_id, wait_frames_advancing
from conftest import RunningServer
from playwright.sync_api import Browser

pytestmark = pytest.mark.browser


class AiortcPeer:
    """Joins a room, calls or answers every peer, counts the video frames it gets."""

    def __init__(self, ws_url: str, room: str) -> None:
        self.ws_url = ws_url
        self.room = room
        self.id = ""
        self.frames: dict[str, int] = {}
        self.joined = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True)

    def start(self) -> None:
        self.thread.start()
        assert self.joined.wait(15), f"aiortc peer did not join: {self.error!r}"

    def close(self) -> None:
        self.stop.set()
        self.thread.join(15)
        if self.error:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # surfaced by close()
            self.error = exc
            self.joined.set()

    async def _run(self) -> None:
        pcs: dict[str, RTCPeerConnection] = {}
        tasks: set[asyncio.Task[None]] = set()
        async with websockets.connect(self.ws_url) as ws:

            async def send(to: str, data: dict[str, Any]) -> None:
                await ws.send(json.dumps({"type": "signal", "to": to, "data": data}))

            def connection(remote: str) -> RTCPeerConnection:
                pc = RTCPeerConnection()
                pcs[remote] = pc
                pc.addTrack(VideoStreamTrack())

                @pc.on("track")
                def on_track(track: Any) -> None:
                    if track.kind == "video":
                        task = asyncio.ensure_future(self._count(remote, track))
                        tasks.add(task)

                return pc

            await ws.send(json.dumps({"type": "join", "room": self.room, "name": "aiortc"}))
            joined = json.loads(await ws.recv())
            assert joined["type"] == "joined", joined
            self.id = joined["id"]
            # Protocol v1: the newcomer offers to every peer already there.
            for peer in joined["peers"]:
                pc = connection(peer["id"])
                await pc.setLocalDescription(await pc.createOffer())
                desc = pc.localDescription
                await send(peer["id"], {"description": {"type": desc.type, "sdp": desc.sdp}})
            self.joined.set()
            while not self.stop.is_set():
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except TimeoutError:
                    continue
                if message["type"] != "signal":
                    continue
                remote, data = message["from"], message["data"]
                pc = pcs.get(remote) or connection(remote)
                if "description" in data:
                    desc = data["description"]
                    await pc.setRemoteDescription(RTCSessionDescription(desc["sdp"], desc["type"]))
                    if desc["type"] == "offer":
                        await pc.setLocalDescription(await pc.createAnswer())
                        local = pc.localDescription
                        await send(remote, {"description": {"type": local.type, "sdp": local.sdp}})
                elif data.get("candidate") and data["candidate"].get("candidate"):
                    init = data["candidate"]
                    candidate = candidate_from_sdp(init["candidate"].split(":", 1)[1])
                    candidate.sdpMid = init.get("sdpMid")
                    candidate.sdpMLineIndex = init.get("sdpMLineIndex")
                    await pc.addIceCandidate(candidate)
            for task in tasks:
                task.cancel()
            for pc in pcs.values():
                await pc.close()

    async def _count(self, remote: str, track: Any) -> None:
        while True:
            await track.recv()
            self.frames[remote] = self.frames.get(remote, 0) + 1


@pytest.mark.parametrize("aiortc_first", [False, True], ids=["browser-first", "aiortc-first"])
def test_aiortc_peer_and_browser_see_each_other(
    chromium: Browser, server: RunningServer, aiortc_first: bool
) -> None:
    peer = AiortcPeer(server.ws_url, "mixed")
    if aiortc_first:
        peer.start()
    page = open_call(chromium, server.url, "mixed", "browser")
    if not aiortc_first:
        peer.start()
    try:
        wait_frames_advancing(page, {peer.id})
        browser_id = peer_id(page)
        for _ in range(100):
            if peer.frames.get(browser_id, 0) >= 30:
                break
            page.wait_for_timeout(200)
        assert peer.frames.get(browser_id, 0) >= 30, peer.frames
    finally:
        close(page)
        peer.close()
