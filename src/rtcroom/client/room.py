"""A Python peer in an rtcroom room, on aiortc, speaking protocol v1.

Names follow the browser's client library (rtcroom.js) and the W3C API:
events "peerjoined", "peerleft", "track", "datachannel", "chat", "close".

aiortc cannot roll back a local offer, so a Python peer never needs to:
it offers only as the newcomer (protocol v1's rule) and otherwise only
answers. Tracks are published when joining; to change them, leave and
join again. Data channels opened later need no renegotiation (the chat
channel is in every first offer, so SCTP is always there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websockets
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from pyee.asyncio import AsyncIOEventEmitter

log = logging.getLogger("rtcroom.client")

CHAT_CHANNEL_ID = 0


class RoomError(Exception):
    """The server refused us (`code` is the protocol's error code) or cannot be reached."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChatMessage:
    sender: str
    name: str
    text: str
    time: float  # ms since the Unix epoch, the sender's clock


def signaling_url(url: str) -> str:
    """Accept the server's page URL (http://host:port) or its /ws URL."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not an rtcroom server URL: {url!r}")
    path = parts.path if parts.path.endswith("/ws") else parts.path.rstrip("/") + "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _ice_servers(servers: list[dict[str, Any]]) -> list[RTCIceServer]:
    return [
        RTCIceServer(
            urls=server["urls"],
            username=server.get("username"),
            credential=server.get("credential"),
        )
        for server in servers
    ]


class RemotePeer(AsyncIOEventEmitter):
    """Another participant and our RTCPeerConnection with it."""

    def __init__(self, room: Room, peer_id: str, name: str) -> None:
        super().__init__()
        self.room = room
        self.id = peer_id
        self.name = name
        policy = RTCIceTransportPolicy.RELAY if room.relay_only else RTCIceTransportPolicy.ALL
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=room.ice_servers, iceTransportPolicy=policy)
        )
        self.chat: RTCDataChannel = self.pc.createDataChannel(
            "chat", negotiated=True, id=CHAT_CHANNEL_ID
        )
        self._chat_queue: list[str] = []
        self._negotiation = asyncio.Lock()
        self._renegotiation: asyncio.Future[None] | None = None
        self.answering = False

        @self.chat.on("open")
        def flush() -> None:
            for text in self._chat_queue:
                self.chat.send(text)
            self._chat_queue.clear()

        @self.chat.on("message")
        def on_chat(data: str | bytes) -> None:
            self._on_chat(data)

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            room.emit("track", self, track)

        @self.pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            room.emit("datachannel", self, channel)

        @self.pc.on("connectionstatechange")
        def on_state() -> None:
            room.emit("connectionstatechange", self, self.pc.connectionState)

    def createDataChannel(self, label: str, **options: Any) -> RTCDataChannel:
        """A data channel to this peer (W3C name, as in the browser)."""
        return self.pc.createDataChannel(label, **options)

    def send_chat(self, encoded: str) -> None:
        if self.chat.readyState == "open":
            self.chat.send(encoded)
        elif self.chat.readyState == "connecting":
            self._chat_queue.append(encoded)

    def _on_chat(self, data: str | bytes) -> None:
        if not isinstance(data, str):
            return
        try:
            wire = json.loads(data)
        except ValueError:
            return
        if not isinstance(wire, dict) or wire.get("type") != "chat":
            return
        text = wire.get("text")
        if not isinstance(text, str):
            return
        stamp = wire.get("time")
        message = ChatMessage(
            sender=self.id,
            name=self.name,
            text=text[:10_000],
            time=float(stamp) if isinstance(stamp, int | float) else time.time() * 1000,
        )
        self.room.emit("chat", self, message)

    def renegotiate_soon(self) -> None:
        """Offer again once the current exchange is over (after adding tracks).

        Only safe while the other side does not offer at the same time: a
        Python peer cannot roll back (see the module docstring).
        """
        if self._renegotiation is None or self._renegotiation.done():
            self._renegotiation = asyncio.ensure_future(self._renegotiate())

    async def _renegotiate(self) -> None:
        await asyncio.sleep(0)  # let the other track events of this description run
        async with self._negotiation:
            if self.pc.signalingState == "stable" and self.pc.connectionState != "closed":
                await self.pc.setLocalDescription(await self.pc.createOffer())
                await self._send_description()

    async def offer(self) -> None:
        """Protocol v1: as the newcomer, offer (with every candidate in the SDP)."""
        async with self._negotiation:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self._send_description()

    async def handle(self, data: dict[str, Any]) -> None:
        """A `signal` from this peer: a description or a candidate."""
        async with self._negotiation:
            description = data.get("description")
            if isinstance(description, dict):
                kind = description.get("type")
                if kind == "offer" and self.pc.signalingState != "stable":
                    # We cannot roll back; by protocol v1 this does not happen
                    # (we only offer as the newcomer, before anyone offers us).
                    log.warning(
                        "ignoring an offer from %s in state %s", self.id, self.pc.signalingState
                    )
                    return
                # "track" handlers can tell an offer (they may add tracks to
                # the answer) from an answer (they must renegotiate).
                self.answering = kind == "offer"
                try:
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(sdp=str(description["sdp"]), type=str(kind))
                    )
                finally:
                    self.answering = False
                if kind == "offer":
                    await self.pc.setLocalDescription(await self.pc.createAnswer())
                    await self._send_description()
                return
            candidate = data.get("candidate")
            if isinstance(candidate, dict) and candidate.get("candidate"):
                parsed = candidate_from_sdp(candidate["candidate"].split(":", 1)[1])
                parsed.sdpMid = candidate.get("sdpMid")
                parsed.sdpMLineIndex = candidate.get("sdpMLineIndex")
                with contextlib.suppress(ValueError):
                    await self.pc.addIceCandidate(parsed)

    async def _send_description(self) -> None:
        local = self.pc.localDescription
        await self.room.send(
            {
                "type": "signal",
                "to": self.id,
                "data": {"description": {"type": local.type, "sdp": local.sdp}},
            }
        )

    async def close(self) -> None:
        if self._renegotiation is not None:
            self._renegotiation.cancel()
        await self.pc.close()


class Room(AsyncIOEventEmitter):
    """Membership of one room. Use `await Room.join(url, room, name, tracks=...)`."""

    def __init__(
        self,
        url: str,
        room: str,
        name: str,
        tracks: Sequence[MediaStreamTrack],
        relay_only: bool = False,
    ) -> None:
        super().__init__()
        self.relay_only = relay_only
        self.url = signaling_url(url)
        self.room = room
        self.name = name
        self.tracks = list(tracks)
        self.id = ""
        self.ice_servers: list[RTCIceServer] = []
        self.peers: dict[str, RemotePeer] = {}
        self._ws: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()

    @classmethod
    async def join(
        cls,
        url: str,
        room: str,
        name: str,
        *,
        tracks: Sequence[MediaStreamTrack] = (),
        timeout: float = 15.0,
        relay_only: bool = False,
        token: str | None = None,
    ) -> Room:
        """Connect, join `room` as `name`, and start calling the peers already there.

        `relay_only` sends everything through the room's TURN server
        (iceTransportPolicy "relay"), so the others never learn our addresses.
        `token` is the access token when the server requires one
        (rtcroom.auth.mint_token, `rtcroom token`).
        """
        self = cls(url, room, name, tracks, relay_only)
        try:
            self._ws = await asyncio.wait_for(websockets.connect(self.url), timeout)
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise RoomError("unreachable", f"cannot reach {self.url}: {exc}") from exc
        join: dict[str, Any] = {"type": "join", "room": room, "name": name}
        if token is not None:
            join["token"] = token
        await self.send(join)
        joined = json.loads(await asyncio.wait_for(self._ws.recv(), timeout))
        if joined.get("type") == "error":
            await self._ws.close()
            raise RoomError(joined["code"], joined["message"])
        self.id = joined["id"]
        self.ice_servers = _ice_servers(joined.get("iceServers", []))
        for info in joined["peers"]:
            peer = self._add_peer(info["id"], info["name"], newcomer=True)
            self._spawn(peer.offer())
        self._reader = asyncio.create_task(self._read())
        return self

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(json.dumps(message))

    def send_chat(self, text: str) -> ChatMessage:
        """Send a chat message to everyone, over the data channels."""
        stamp = time.time() * 1000
        encoded = json.dumps({"type": "chat", "text": text, "time": stamp})
        for peer in self.peers.values():
            peer.send_chat(encoded)
        return ChatMessage(sender=self.id, name=self.name, text=text, time=stamp)

    def peer_named(self, name: str) -> RemotePeer | None:
        return next((p for p in self.peers.values() if p.name == name), None)

    async def wait_for_peer(
        self, name: str | None = None, timeout: float | None = None
    ) -> RemotePeer:
        """The first peer (named `name`, if given) in the room, waiting if needed."""

        async def wait() -> RemotePeer:
            while True:
                found = self.peer_named(name) if name else next(iter(self.peers.values()), None)
                if found is not None:
                    return found
                arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

                def wake(peer: RemotePeer, arrived: asyncio.Future[None] = arrived) -> None:
                    if not arrived.done():
                        arrived.set_result(None)

                self.once("peerjoined", wake)
                await arrived

        return await asyncio.wait_for(wait(), timeout)

    def _add_peer(self, peer_id: str, name: str, *, newcomer: bool) -> RemotePeer:
        peer = RemotePeer(self, peer_id, name)
        kinds = set()
        for track in self.tracks:
            peer.pc.addTrack(track)
            kinds.add(track.kind)
        if newcomer:
            # Always offer audio and video sections, so the others can send theirs.
            for kind in ("audio", "video"):
                if kind not in kinds:
                    peer.pc.addTransceiver(kind, direction="recvonly")
        self.peers[peer_id] = peer
        self.emit("peerjoined", peer)
        return peer

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("rtcroom client: %r", task.exception())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                message = json.loads(frame)
                kind = message.get("type")
                if kind == "peer-joined":
                    info = message["peer"]
                    if info["id"] not in self.peers:
                        self._add_peer(info["id"], info["name"], newcomer=False)
                elif kind == "peer-left":
                    peer = self.peers.pop(message["id"], None)
                    if peer is not None:
                        self._spawn(peer.close())
                        self.emit("peerleft", peer)
                elif kind == "signal":
                    peer = self.peers.get(message["from"]) or self._add_peer(
                        message["from"], "", newcomer=False
                    )
                    self._spawn(peer.handle(message["data"]))
                elif kind == "ice-servers":
                    # Fresh TURN credentials: used by connections made from now on.
                    self.ice_servers = _ice_servers(message["iceServers"])
                elif kind == "broadcast":
                    self.emit("broadcast", message["from"], message["data"])
                elif kind == "error":
                    self.emit("error", RoomError(message["code"], message["message"]))
        except websockets.ConnectionClosed:
            pass
        finally:
            await self._shutdown()

    async def leave(self) -> None:
        """Leave the room and close every peer connection. Idempotent."""
        if self._ws is not None:
            await self.send({"type": "leave"})
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        peers = list(self.peers.values())
        self.peers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
        self.emit("close")

    async def __aenter__(self) -> Room:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
