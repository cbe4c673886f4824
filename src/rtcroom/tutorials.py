"""The seeds' Socket.IO tutorials as protocol v1 peers: a sans-I/O translator.

Thousands of apps started from two tutorials (docs/protocol.md, "Socket.IO
clients"). Their event contracts:

- Flask-SocketIO: the client emits `join` {username, room}; the others in
  the room get `ready` {username}; `data` {username, room, data} reaches the
  others as `data` with the inner `data`.
- aiohttp + python-socketio: one implicit room; connecting is joining, and
  those already there get `ready` (no payload); `data` is relayed as it is.

Their clients are symmetric: on `ready` they create a connection and offer,
on an offer they answer, and they send descriptions as `{type, sdp}` and
candidates as `{type: "candidate", candidate}`.

A Translator stands between one Socket.IO connection and its Session: the
client's events become protocol v1 client frames, and the v1 frames its
Session sends become Socket.IO events. So a tutorial client gets everything
a v1 client has (limits, tokens, grants, the Redis broker) and meets v1
peers in the same room:

- its descriptions and candidates become `signal`s to each other peer,
  anything else a `broadcast`;
- who offers: v1 peers wait for the newcomer's offer, tutorial clients offer
  on `ready`. So a Socket.IO peer gets `ready` when another Socket.IO peer
  joins (the tutorials' contract), or itself when it joins a room that has
  v1 peers (it is the newcomer who must offer); a v1 newcomer offers to it,
  and it answers.

The tutorial clients hold one peer connection, made for rooms of two: their
descriptions and candidates go to their partner (the peer whose `ready`
made them offer, or whose offer or answer they last got), not to the whole
room as the tutorials' servers do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from .protocol import (
    Broadcast,
    BroadcastFrom,
    Error,
    Join,
    Joined,
    Leave,
    PeerJoined,
    PeerLeft,
    Signal,
    SignalFrom,
    decode_server,
    encode_client,
    raw,
)

SOCKET_IO = "socket.io"


@dataclass(frozen=True, slots=True)
class Emit:
    """Send Socket.IO event `event` to the client; no payload when `data` is None."""

    event: str
    data: Any = None


class Translator:
    """One Socket.IO connection's events to and from protocol v1 frames.

    `implicit_room`: the aiohttp tutorial's variant, where connecting is
    joining that room; None for the Flask variant, which emits `join`.
    """

    def __init__(
        self, implicit_room: str | None = None, name: str = "guest", token: str | None = None
    ) -> None:
        self.implicit_room = implicit_room
        # True when implicit_room was a guess (the client sent no join in time).
        self.guessed = False
        self.name = name
        # The access token from the Socket.IO `auth` payload, sent with the join.
        self.token = token
        self.id = ""
        # The other peers of the room: id -> via (None for v1 peers).
        self.peers: dict[str, str | None] = {}
        # The one peer its one connection is with (None: not known yet).
        self.partner: str | None = None

    # From the client --------------------------------------------------------

    def connected(self) -> list[str]:
        """Frames for the Session once the client is connected."""
        if self.implicit_room is None:
            return []
        return [self._join(self.implicit_room)]

    def implicit_join(self, room: str) -> list[str]:
        """The client sent no `join` in time: take it for the aiohttp variant
        and join `room`, until it proves otherwise by emitting `join`."""
        self.implicit_room = room
        self.guessed = True
        return self.connected()

    def event(self, event: str, payload: Any) -> list[str]:
        """Frames for the Session for one client event; unknown events are ignored."""
        if event == "join" and (self.implicit_room is None or self.guessed):
            # A Flask-variant client after all (it joined late): out of the
            # single room, into its own.
            leave = [encode_client(Leave())] if self.implicit_room is not None else []
            self.implicit_room = None
            self.guessed = False
            if not isinstance(payload, dict):
                return [*leave, _NO_JOIN]  # the Session answers bad-message
            self.name = str(payload.get("username") or "guest")[:64]
            return [*leave, self._join(payload.get("room"))]
        if event == "data":
            data = payload
            if self.implicit_room is None and isinstance(payload, dict) and "data" in payload:
                data = payload["data"]
            return self._relay(data)
        return []

    def _join(self, room: Any) -> str:
        # Not validated here: the Session answers a bad room as for any client.
        return encode_client(Join(room=room, name=self.name, token=self.token or None))

    def _relay(self, data: Any) -> list[str]:
        signal = _to_signal(data)
        if signal is None or not self.peers:
            return [encode_client(Broadcast(data=raw(data)))]
        to = [self.partner] if self.partner in self.peers else list(self.peers)
        payload = raw(signal)
        return [encode_client(Signal(to=peer, data=payload)) for peer in to]

    # To the client ----------------------------------------------------------

    def frame(self, frame: str) -> list[Emit]:
        """Socket.IO events for one frame that the Session sends to its client."""
        match decode_server(frame):
            case Joined(id=own, peers=peers):
                self.id = own
                self.peers = {peer.id: peer.via for peer in peers}
                v1 = [peer for peer, via in self.peers.items() if via != SOCKET_IO]
                if v1:
                    # v1 peers wait for the newcomer's offer: make it offer, to
                    # the latest of them (it holds one connection).
                    self.partner = v1[-1]
                    return [self._ready(self.name)]
            case PeerJoined(peer=peer):
                self.peers[peer.id] = peer.via
                if peer.via == SOCKET_IO:
                    self.partner = peer.id
                    return [self._ready(peer.name)]
                # A v1 newcomer offers to us.
            case PeerLeft(id=gone):
                self.peers.pop(gone, None)
                if self.partner == gone:
                    self.partner = None
            case SignalFrom(sender=sender, data=payload):
                data = _from_signal(msgspec.json.decode(payload))
                if isinstance(data, dict) and data.get("type") in ("offer", "answer"):
                    # Its answer and candidates go back to whoever it negotiates with.
                    self.partner = sender
                return [] if data is None else [Emit("data", data)]
            case BroadcastFrom(data=payload):
                return [Emit("data", msgspec.json.decode(payload))]
            case Error(code=code, message=message):
                return [Emit("rtcroom-error", {"code": str(code), "message": message})]
        return []  # ice-servers, bye: nothing in the tutorials' contract

    def _ready(self, username: str) -> Emit:
        if self.implicit_room is not None:
            return Emit("ready")
        return Emit("ready", {"username": username})


def _to_signal(data: Any) -> dict[str, Any] | None:
    """A tutorial's description or candidate as v1 signal data; None if neither."""
    if not isinstance(data, dict):
        return None
    kind = data.get("type")
    if kind in ("offer", "answer") and isinstance(data.get("sdp"), str):
        return {"description": {"type": kind, "sdp": data["sdp"]}}
    if kind == "candidate" and isinstance(data.get("candidate"), dict):
        return {"candidate": data["candidate"]}
    return None


def _from_signal(data: Any) -> Any:
    """v1 signal data in the tutorials' shape; None for what they cannot take."""
    if isinstance(data, dict):
        description = data.get("description")
        if isinstance(description, dict):
            return {"type": description.get("type"), "sdp": description.get("sdp")}
        if "candidate" in data:
            candidate = data["candidate"]
            # The end of candidates (null) would throw in their addIceCandidate.
            return None if candidate is None else {"type": "candidate", "candidate": candidate}
    return data


# A join without room or name, for a `join` event whose payload is no object.
_NO_JOIN = '{"type":"join"}'
