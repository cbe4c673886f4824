"""A Python peer in an rtcroom room, on aiortc, speaking protocol v1.

Names follow the browser's client library (rtcroom.js) and the W3C API:
events "peerjoined", "peerleft", "track", "datachannel", "chat", "close",
"reconnecting" (attempt), "reconnected" (resumed), "message" (data from the
server's application, RoomServer.send and .broadcast).

Like the browser's, a Room outlives its server connection: when it drops,
the peer connections go on and the Room reconnects (jittered exponential
backoff) and resumes its place with the key from `joined`; if the server no
longer knows it (a restart, the grace period over), it joins anew and calls
everyone again. It ends for good on leave() or a refusal (a token gone bad).
When the other side restarts ICE (its network or ours changed), the peer
takes that offer on a new connection: aiortc has no ICE restart. When a
connection it offered fails, it offers a new one.

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
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

import av
import msgspec
import websockets
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from pyee.asyncio import AsyncIOEventEmitter

from ..protocol import (
    CONNECTION_ERRORS,
    FILE_LABEL,
    HELD_SIGNALS,
    ICE_RESTART_AFTER,
    REACTIONS,
    TRANSIENT_ERRORS,
    AppData,
    Broadcast,
    BroadcastFrom,
    Bye,
    ClientMessage,
    Error,
    IceServer,
    IceServers,
    Join,
    Joined,
    Leave,
    Mode,
    Mute,
    PeerJoined,
    PeerLeft,
    Published,
    React,
    ReactionFrom,
    SetState,
    Signal,
    SignalFrom,
    StateOf,
    Status,
    Stream,
    Subscription,
    Talking,
    decode_server,
    encode_client,
    raw,
    reconnect_delay,
)
from .sfu import SfuConnection

# The server's application removed this peer (docs/protocol.md): do not reconnect.
CLOSE_KICKED = 4003

log = logging.getLogger("rtcroom.client")

CHAT_CHANNEL_ID = 0
# Seconds after refusing a file before we close its channel ourselves.
REFUSED_CLOSE = 10.0

# Errors after which rejoining later may succeed (docs/protocol.md).
RETRIED = TRANSIENT_ERRORS | CONNECTION_ERRORS

# An access token, or a function that mints a fresh one for each connection.
Token: TypeAlias = str | Callable[[], str] | None


def _own_state(tracks: Sequence[MediaStreamTrack]) -> Status:
    """A program's state by default: a bot, sending what `tracks` hold."""
    kinds = {track.kind for track in tracks}
    return Status(
        mic="on" if "audio" in kinds else "none",
        camera="on" if "video" in kinds else "none",
        kind="bot",
    )


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


def _ice_servers(servers: list[IceServer]) -> list[RTCIceServer]:
    return [
        RTCIceServer(urls=server.urls, username=server.username, credential=server.credential)
        for server in servers
    ]


# An SDP's ICE username fragment: a new one means an ICE restart.
_ICE_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.M)


class _EncoderReady(MediaStreamTrack):
    """One connection's copy of a shared track, its video frames already in
    the encoders' format (I420).

    The copies of a MediaRelay hand the same frame to every connection, and
    aiortc's encoders convert frames in threads: two converting one frame at
    once crash PyAV. Converted here, on the event loop, one copy at a time.
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source

    async def recv(self) -> Any:
        frame = await self._source.recv()
        if isinstance(frame, av.VideoFrame) and frame.format.name != "yuv420p":
            return frame.reformat(format="yuv420p")
        return frame

    def stop(self) -> None:
        super().stop()
        self._source.stop()


class RemotePeer(AsyncIOEventEmitter):
    """Another participant and our RTCPeerConnection with it."""

    def __init__(self, room: Room, peer_id: str, name: str, *, offerer: bool = False) -> None:
        super().__init__()
        self.room = room
        self.id = peer_id
        self.name = name
        # We joined after this peer and made the first offer (protocol v1).
        self.offerer = offerer
        # What it says of itself: muted, camera off, a recorder... (event "state").
        self.state = Status()
        self._chat_queue: list[str] = []
        self._negotiation = asyncio.Lock()
        self._renegotiation: asyncio.Future[None] | None = None
        self.answering = False
        self._closing = False
        self._connect()

    def _connect(self) -> None:
        """A new RTCPeerConnection with this peer: our tracks, the chat channel."""
        room = self.room
        policy = RTCIceTransportPolicy.RELAY if room.relay_only else RTCIceTransportPolicy.ALL
        self.pc = pc = RTCPeerConnection(
            RTCConfiguration(iceServers=room.ice_servers, iceTransportPolicy=policy)
        )
        self.chat: RTCDataChannel = pc.createDataChannel(
            "chat", negotiated=True, id=CHAT_CHANNEL_ID
        )
        kinds = set()
        for track in room.tracks if room.mode == "mesh" else ():
            # Each connection reads its own copy: aiortc stops a sender's
            # track when its connection closes, and readers of one track
            # share its frames.
            pc.addTrack(_EncoderReady(room._relay.subscribe(track, buffered=False)))
            kinds.add(track.kind)
        if self.offerer and room.mode == "mesh":
            # Always offer audio and video sections, so the others can send theirs.
            for kind in ("audio", "video"):
                if kind not in kinds:
                    pc.addTransceiver(kind, direction="recvonly")

        @self.chat.on("open")
        def flush() -> None:
            for text in self._chat_queue:
                self.chat.send(text)
            self._chat_queue.clear()

        @self.chat.on("message")
        def on_chat(data: str | bytes) -> None:
            self._on_chat(data)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            room.emit("track", self, track)

        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label == FILE_LABEL and not room.takes_files:
                # Said at once, in words, rather than a sender left waiting
                # for an answer that never comes (docs/protocol.md).
                reason = f"{room.name or 'this peer'} does not take files"
                channel.send(json.dumps({"type": "cancel", "reason": reason}))
                # The sender closes the channel once it reads this; closing it
                # here at once could overtake the message (an SCTP stream reset
                # is not ordered with the data), so only if the sender does not.
                later = asyncio.get_running_loop().call_later(REFUSED_CLOSE, channel.close)
                channel.on("close", later.cancel)
                return
            room.emit("datachannel", self, channel)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            room.emit("connectionstatechange", self, pc.connectionState)
            # aiortc closes a connection whose consent expired (no answer to
            # its checks for about 30 s), often without a "failed" first.
            if pc.connectionState in ("failed", "closed") and self._lost(pc):
                room._spawn(self._restart(pc))

    def _lost(self, pc: RTCPeerConnection) -> bool:
        """Whether `pc` ended by itself while it is still our connection with
        this peer, and we made its first offer (so we offer the next one)."""
        return (
            self.offerer
            and self.pc is pc
            and not self._closing
            and not self.room._leaving
            and self.room.peers.get(self.id) is self
        )

    async def _restart(self, failed: RTCPeerConnection) -> None:
        """Our connection failed and we made its first offer: a new
        connection, offered afresh, is aiortc's ICE restart. The other side
        takes it as one (see `handle`)."""
        await asyncio.sleep(ICE_RESTART_AFTER)
        async with self._negotiation:
            if not self._lost(failed):
                return  # replaced meanwhile (the other side restarted), or gone
            log.info("connection with %s failed: a new connection", self.id)
            self._replace_connection()
            await self.pc.setLocalDescription(await self.pc.createOffer())
            await self._send_description()

    def _replace_connection(self) -> None:
        """A new connection in place of ours (aiortc's ICE restart); the old one closes."""
        old = self.pc
        self._connect()
        self.room._spawn(old.close())

    def _restarts_ice(self, sdp: str) -> bool:
        """Whether this offer restarts ICE (new credentials), which aiortc cannot do."""
        current = self.pc.remoteDescription
        if current is None:
            return False
        before, after = _ICE_UFRAG.search(current.sdp), _ICE_UFRAG.search(sdp)
        return bool(before and after and before.group(1) != after.group(1))

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
                if kind == "offer" and self._restarts_ice(str(description["sdp"])):
                    # The other side restarts ICE (its network changed, or
                    # ours): aiortc has no ICE restart, so a new connection
                    # takes the offer, with fresh candidates, tracks and chat.
                    log.info("ICE restart from %s: a new connection", self.id)
                    self._replace_connection()
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
        data = {"description": {"type": local.type, "sdp": local.sdp}}
        await self.room.send(Signal(to=self.id, data=raw(data)))

    async def close(self) -> None:
        self._closing = True
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
        token: Token = None,
        timeout: float = 15.0,
        reconnect: bool = True,
        state: Status | None = None,
    ) -> None:
        super().__init__()
        self.relay_only = relay_only
        self.url = signaling_url(url)
        self.room = room
        self.name = name
        self.tracks = list(tracks)
        self._relay = MediaRelay()
        self.token = token
        self.timeout = timeout
        self.reconnect = reconnect
        # What the others see of us (set_state); sent with every join, so a
        # resume after a change made offline brings it.
        self.state = state or _own_state(self.tracks)
        self.id = ""
        self.resume_key = ""
        self.grants: frozenset[str] = frozenset()
        # "mesh": a peer connection with every other peer; "sfu": two with the SFU.
        self.mode = "mesh"
        self.sfu = SfuConnection(self)
        self.ice_servers: list[RTCIceServer] = []
        self.peers: dict[str, RemotePeer] = {}
        # True while the server connection is down and being re-established.
        self.reconnecting = False
        # Removed by the server's application or a moderator (close code
        # 4003): closed for good, told why.
        self.kicked = False
        self.kicked_reason = ""
        self._held: list[Signal] = []
        # The server said `bye`: it is restarting (see _come_back).
        self._restarting = False
        # Whether files sent to us are taken (receive_files): else refused.
        self.takes_files = False
        self._leaving = False
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
        token: Token = None,
        reconnect: bool = True,
        state: Status | None = None,
    ) -> Room:
        """Connect, join `room` as `name`, and start calling the peers already there.

        `relay_only` sends everything through the room's TURN server
        (iceTransportPolicy "relay"), so the others never learn our addresses.
        `token` is the access token when the server requires one
        (rtcroom.auth.mint_token, `rtcroom token`), or a function that
        returns a fresh one, called on every (re)connection: a short-lived
        token then outlives nothing. With `reconnect` (the
        default) a dropped server connection is re-established and our place
        resumed; without, the Room closes with it. `state` is how the others
        see us (docs/protocol.md, "Participant state"): by default a bot, its
        microphone and camera on or absent as `tracks` say.
        """
        self = cls(url, room, name, tracks, relay_only, token, timeout, reconnect, state)
        self._on_joined(await self._connect())
        self._reader = asyncio.create_task(self._read())
        return self

    async def _connect(self, resume: str = "") -> Joined:
        """Open a connection and join (resuming with `resume`); `joined`, or RoomError."""
        try:
            self._ws = await asyncio.wait_for(websockets.connect(self.url), self.timeout)
        except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
            raise RoomError("unreachable", f"cannot reach {self.url}: {exc}") from exc
        token = self.token() if callable(self.token) else self.token
        join = Join(
            room=self.room,
            name=self.name,
            token=token,
            resume=resume or None,
            sfu=True,
            state=self.state,
        )
        try:
            await self._ws.send(encode_client(join))
            answer = decode_server(await asyncio.wait_for(self._ws.recv(), self.timeout))
        except (websockets.ConnectionClosed, TimeoutError) as exc:
            await self._ws.close()
            raise RoomError("closed", f"the connection to {self.url} ended: {exc}") from exc
        except msgspec.ValidationError as exc:
            await self._ws.close()
            raise RoomError("closed", f"{self.url} answered the join with {exc}") from exc
        if isinstance(answer, Error):
            await self._ws.close()
            raise RoomError(answer.code, answer.message)
        if not isinstance(answer, Joined):
            await self._ws.close()
            raise RoomError("closed", f"{self.url} answered the join with {type(answer).__name__}")
        return answer

    def _take(self, joined: Joined) -> None:
        """Who we are in the room, from `joined`: id, resume key, ICE servers."""
        self.id = joined.id
        self.resume_key = joined.resume
        self.grants = frozenset(joined.grants)
        self.mode = joined.mode
        self.ice_servers = _ice_servers(joined.ice_servers)

    def _on_joined(self, joined: Joined) -> None:
        """In the room as someone new: call everyone already there, or publish to the SFU."""
        self._take(joined)
        for info in joined.peers:
            peer = self._add_peer(info.id, info.name, newcomer=True, state=info.state)
            if self.mode == "mesh":
                self._spawn(peer.offer())
        if self.mode == "sfu":
            self._spawn(self.sfu.start())

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def send(self, message: ClientMessage) -> None:
        """Send a protocol message (rtcroom.protocol) to the server."""
        if self.reconnecting:
            # Kept for the peer if we resume; dropped if we come back as someone new.
            if isinstance(message, Signal) and len(self._held) < HELD_SIGNALS:
                self._held.append(message)
        elif self._ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._ws.send(encode_client(message))

    async def publish(self, track: MediaStreamTrack) -> None:
        """In an SFU room, send one more track to everyone (a bot's mirror, say).

        In a mesh, tracks are given when joining (see the module docstring).
        """
        if self.mode != "sfu":
            raise RuntimeError("publish() is for SFU rooms: in a mesh, give tracks to join()")
        await self.sfu.publish(track)

    async def set_state(self, **changes: Any) -> Status:
        """Change what the others see of us: `await room.set_state(mic="off", hand=True)`.

        Fields are those of rtcroom.protocol.Status (mic, camera, screen,
        hand, quality, kind); the others get event "state". Returns the new state.
        """
        # Checked as the server checks it, so a mistake fails here, in words
        # (TypeError for an unknown field, msgspec.ValidationError for a value).
        state = msgspec.structs.replace(self.state, **changes)
        self.state = msgspec.convert(msgspec.to_builtins(state), Status)
        await self.send(SetState(state=self.state))
        return self.state

    async def react(self, emoji: str) -> None:
        """Show everyone a reaction, one of rtcroom.protocol.REACTIONS."""
        if emoji not in REACTIONS:
            raise ValueError(f"{emoji!r} is not one of the reactions {' '.join(REACTIONS)}")
        await self.send(React(emoji=emoji))  # type: ignore[arg-type]

    async def broadcast(self, data: Any) -> None:
        """Send `data` (anything JSON) to every other peer, through the server."""
        await self.send(Broadcast(data=raw(data)))

    def send_chat(self, text: str) -> ChatMessage:
        """Send a chat message to everyone: over the data channels, or the server in SFU mode."""
        stamp = time.time() * 1000
        wire = {"type": "chat", "text": text, "time": stamp}
        if self.mode == "sfu":
            self._spawn(self.broadcast(wire))
        else:
            encoded = json.dumps(wire)
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

    def _add_peer(
        self, peer_id: str, name: str, *, newcomer: bool, state: Status | None = None
    ) -> RemotePeer:
        peer = RemotePeer(self, peer_id, name, offerer=newcomer)
        peer.state = state or Status()
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
        try:
            while True:
                assert self._ws is not None
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for frame in self._ws:
                        try:
                            message = decode_server(frame)
                        except msgspec.ValidationError:
                            # A message type newer than this client: not ours to handle.
                            log.debug("rtcroom client: ignoring %.80r", frame)
                            continue
                        self._dispatch(message)
                if self._ws.close_code == CLOSE_KICKED:
                    # Removed by the server's application: never come back on our own.
                    self.kicked = True
                    break
                if self._leaving or not self.reconnect or not await self._come_back():
                    break
        finally:
            await self._shutdown()

    def _error(self, error: RoomError) -> None:
        # Errors are recoverable: a program that does not listen to them keeps
        # going (pyee raises an "error" nobody hears).
        if self.listeners("error"):
            self.emit("error", error)
        else:
            log.warning("rtcroom client: %s", error)

    def _dispatch(self, message: object) -> None:
        match message:
            case PeerJoined(peer=info):
                if info.id not in self.peers:
                    self._add_peer(info.id, info.name, newcomer=False, state=info.state)
            case PeerLeft(id=peer_id):
                self._drop_peer(peer_id)
            case SignalFrom(sender=sender, data=data):
                peer = self.peers.get(sender) or self._add_peer(sender, "", newcomer=False)
                signal = msgspec.json.decode(data)
                if isinstance(signal, dict):
                    self._spawn(peer.handle(signal))
            case IceServers(ice_servers=servers):
                # Fresh TURN credentials: used by connections made from now on.
                self.ice_servers = _ice_servers(servers)
            case BroadcastFrom(sender=sender, data=data):
                value = msgspec.json.decode(data)
                chatter = self.peers.get(sender)
                if chatter is not None and isinstance(value, dict) and value.get("type") == "chat":
                    # Chat through the server, as SFU rooms send it.
                    chatter._on_chat(msgspec.json.encode(value).decode())
                self.emit("broadcast", sender, value)
            case Error(code=code, message=text):
                if code == "kicked":
                    self.kicked_reason = text
                self._error(RoomError(code, text))
            case AppData(data=data):
                self.emit("message", msgspec.json.decode(data))
            case Bye():
                # The server restarts and closes the connection next: we come
                # back soon (reconnect_delay's restart backoff).
                self._restarting = True
            case Mute(kind=kind, by=by):
                # An operator asks us to stop sending this kind of media.
                self.emit("mute", kind, by)
            case Mode(mode=mode):
                # The room is served by the SFU from now on (or by another SFU node).
                self.mode = mode
                if mode == "sfu":
                    self._spawn(self.sfu.start())
            case Published(sdp=sdp):
                self._spawn(self.sfu.published(sdp))
            case Subscription():
                self._spawn(self.sfu.subscription(message))
            case StateOf(peer=peer_id, state=state):
                other = self.peers.get(peer_id)
                if other is not None:
                    other.state = state
                    self.emit("state", other, state)
            case ReactionFrom(peer=peer_id, emoji=emoji):
                other = self.peers.get(peer_id)
                if other is not None:
                    self.emit("reaction", other, emoji)
            case Talking(peer=peer_id, talking=talking):
                speaker = self.peers.get(peer_id)
                if speaker is not None:
                    self.emit("talking", speaker, talking)

    def _sfu_track(self, stream: Stream, track: MediaStreamTrack) -> None:
        """A track from the SFU: `stream.peer`'s, as if it came from its own connection."""
        peer = self.peers.get(stream.peer) or self._add_peer(stream.peer, "", newcomer=False)
        if peer.pc.remoteDescription is not None and peer.pc.connectionState != "closed":
            # Called in the mesh before the room switched: the SFU carries it now.
            self._spawn(peer.pc.close())
        self.emit("track", peer, track)

    def _drop_peer(self, peer_id: str) -> None:
        peer = self.peers.pop(peer_id, None)
        if peer is not None:
            self._spawn(peer.close())
            self.emit("peerleft", peer)

    async def _come_back(self) -> bool:
        """Reconnect until back in the room (True) or refused for good, or leaving (False).

        The peer connections go on meanwhile: media and data do not pass
        through the server.
        """
        self.reconnecting = True
        attempt = 0
        while not self._leaving:
            attempt += 1
            self.emit("reconnecting", attempt)
            await asyncio.sleep(reconnect_delay(attempt, random.random(), self._restarting))
            try:
                joined = await self._connect(self.resume_key)
            except RoomError as exc:
                if exc.code in RETRIED:
                    continue
                log.warning("rtcroom client: cannot rejoin %s: %s", self.room, exc)
                self._error(exc)
                return False
            self.reconnecting = False
            self._restarting = False
            held, self._held = self._held, []
            resumed = joined.id == self.id
            if resumed:
                self._take(joined)
                for message in held:
                    await self.send(message)
                # The SFU kept our media going; its latest offer comes again.
            else:
                # Someone new (the server restarted, or the grace period ran
                # out): the others know us no more. Drop the old calls, call anew.
                for peer_id in list(self.peers):
                    self._drop_peer(peer_id)
                self._on_joined(joined)
            self.emit("reconnected", resumed)
            return True
        return False

    async def leave(self) -> None:
        """Leave the room and close every peer connection. Idempotent."""
        self._leaving = True
        if self._ws is not None and not self.reconnecting:
            await self.send(Leave())
            await self._ws.close()
        if self._reader is not None:
            if self.reconnecting:
                self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self._ws is not None:  # say, left while rejoining
            await self._ws.close()
        peers = list(self.peers.values())
        self.peers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
        await self.sfu.close()
        self.emit("close")

    async def __aenter__(self) -> Room:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
