"""Protocol v1: the wire format of /ws, typed once (see docs/protocol.md).

Every frame is one JSON object with a "type". Client messages are decoded
into msgspec structs; the payloads that the server relays (`data`) stay raw
JSON bytes, never decoded and re-encoded. Server messages are encoded once
and the resulting text is shared by every recipient.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final, Literal

import msgspec

from .tally import TALLY

PROTOCOL_VERSION: Final = 1

ROOM_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
RoomName = Annotated[str, msgspec.Meta(pattern=ROOM_PATTERN)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
PeerId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
ResumeKey = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class ErrorCode(StrEnum):
    """The `code` of an error message."""

    BAD_MESSAGE = "bad-message"
    UNKNOWN_TYPE = "unknown-type"
    NOT_JOINED = "not-joined"
    ALREADY_JOINED = "already-joined"
    UNKNOWN_PEER = "unknown-peer"
    TOO_LARGE = "too-large"
    ROOM_FULL = "room-full"
    SERVER_FULL = "server-full"
    RATE_LIMITED = "rate-limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    JOIN_TIMEOUT = "join-timeout"
    UNAVAILABLE = "unavailable"
    UNSUPPORTED = "unsupported"
    KICKED = "kicked"
    SERVER_ERROR = "server-error"


# What clients share with the server and with each other, written once here.
# The browser's client library (web/rtcroom.js) has its copies, checked
# against these by tests/test_web_constants.py.

# Errors after which joining again later may succeed: a client retries them.
TRANSIENT_ERRORS: Final = frozenset(
    {ErrorCode.UNAVAILABLE, ErrorCode.RATE_LIMITED, ErrorCode.SERVER_FULL}
)
# What a client itself reports when it cannot reach the server or the
# connection ends before an answer (never sent by the server): retried too.
CONNECTION_ERRORS: Final = frozenset({"unreachable", "closed"})
# Signals a reconnecting client keeps for its peers, sent if it resumes.
HELD_SIGNALS: Final = 500
# A file transfer's data channel: label and sub-protocol (docs/protocol.md,
# "File transfer"), one channel per file.
FILE_LABEL: Final = "file"
FILE_PROTOCOL: Final = "rtcroom-file/1"
# Reconnection backoff: BACKOFF_BASE s, doubling up to BACKOFF_CAP s, each
# times a random 0.5 to 1.5 (jitter, so that clients dropped together do
# not come back together).
BACKOFF_BASE: Final = 0.25
BACKOFF_CAP: Final = 8.0
# After `bye` (the server restarts: it, or another process, takes the client
# back in a moment) the backoff stops at RESTART_BACKOFF_CAP s for the first
# RESTART_ATTEMPTS attempts, so that the first page back does not wait alone
# for the others' longer backoff; then as above.
RESTART_BACKOFF_CAP: Final = 1.0
RESTART_ATTEMPTS: Final = 20
# A peer connection that failed, or stayed disconnected this long (seconds),
# restarts ICE; restarts at least this far apart.
ICE_RESTART_AFTER: Final = 3.0


def reconnect_delay(attempt: int, random: float, restarting: bool = False) -> float:
    """Seconds to wait before reconnection attempt `attempt` (1, 2, ...); `random` in [0, 1).

    `restarting`: the server said `bye` before the connection ended.
    """
    cap = RESTART_BACKOFF_CAP if restarting and attempt <= RESTART_ATTEMPTS else BACKOFF_CAP
    return min(cap, BACKOFF_BASE * 2.0 ** (attempt - 1)) * (0.5 + random)


class ProtocolError(Exception):
    """A client message broke a protocol rule; the connection stays usable."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Client to server ---------------------------------------------------------


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    """What everyone sees of a participant (docs/protocol.md, "Participant state").

    Set by the participant itself (`join`, then `state`); the server keeps
    the latest with the peer, across resumes, and tells the room.
    """

    # Its microphone and camera: sending, turned off by the user, or absent.
    mic: Literal["on", "off", "none"] = "on"
    camera: Literal["on", "off", "none"] = "on"
    # Sharing a screen; a raised hand.
    screen: bool = False
    hand: bool = False
    # Its connection as it measures it.
    quality: Literal["good", "poor", "lost"] = "good"
    # What it is: a person, a program that takes part (a bot), or a recorder
    # (everyone is told that the call is recorded while one is in the room).
    kind: Literal["person", "bot", "recorder"] = "person"


# The reactions a participant may send (`react`): short, and the same on every side.
REACTIONS: Final = (
    "\U0001f44d",
    "\U0001f44f",
    "\U0001f602",
    "\U0001f62e",
    "\u2764\ufe0f",
    "\U0001f389",
)
Reaction = Literal[
    "\U0001f44d", "\U0001f44f", "\U0001f602", "\U0001f62e", "\u2764\ufe0f", "\U0001f389"
]


class Join(msgspec.Struct, tag_field="type", tag="join", frozen=True, omit_defaults=True):
    """Enter a room, with an access token when the server asks for one.

    `resume` is the key of an earlier `joined`: within the grace period the
    client gets its old peer id back and the others see no change. `sfu`
    says the client can take part through the SFU (publish, subscription):
    a room switches to SFU mode only when all its members can.
    """

    room: RoomName
    name: DisplayName
    token: Token | None = None
    resume: ResumeKey | None = None
    sfu: bool = False
    # How the others first see us (muted, camera off, a recorder...); a resume keeps the old one.
    state: Status | None = None


class Signal(msgspec.Struct, tag_field="type", tag="signal", frozen=True):
    """Relay `data` (opaque to the server) to one peer of the same room."""

    to: PeerId
    data: msgspec.Raw


class Broadcast(msgspec.Struct, tag_field="type", tag="broadcast", frozen=True):
    """Relay `data` to every other peer of the room."""

    data: msgspec.Raw


class Leave(msgspec.Struct, tag_field="type", tag="leave", frozen=True):
    """Leave the room; the connection stays open and may join again."""


class SetState(msgspec.Struct, tag_field="type", tag="state", frozen=True):
    """Our participant state from now on (all of it): the room is told."""

    state: Status


class React(msgspec.Struct, tag_field="type", tag="react", frozen=True):
    """Show everyone a short reaction (one of REACTIONS)."""

    emoji: Reaction


# SFU mode (docs/protocol.md, "SFU rooms"): a client publishes on one peer
# connection with the SFU (its offer, the SFU's answer) and receives
# everyone on another (the SFU's offers, its answers).

Sdp = Annotated[str, msgspec.Meta(min_length=1)]
Mid = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
Substream = Annotated[int, msgspec.Meta(ge=0, le=2)]
PcName = Literal["publish", "subscribe"]


Label = Annotated[str, msgspec.Meta(max_length=64)]


class PublishOffer(msgspec.Struct, tag_field="type", tag="publish", frozen=True):
    """The offer of the publishing connection (first, or a renegotiation).

    `labels` names streams by the offer's mids ("screen", say): the
    subscribers get it as the Stream's label.
    """

    sdp: Sdp
    labels: Annotated[dict[Mid, Label], msgspec.Meta(max_length=16)] = {}


class Subscribe(msgspec.Struct, tag_field="type", tag="subscribe", frozen=True):
    """Receive everyone's streams: the SFU sends `subscription` offers from now on."""


class Answer(msgspec.Struct, tag_field="type", tag="answer", frozen=True):
    """The answer to the SFU's latest `subscription` offer."""

    sdp: Sdp


class Candidate(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """An RTCIceCandidateInit."""

    candidate: str
    sdp_mid: str | None = None
    sdp_m_line_index: int | None = None


class Trickle(msgspec.Struct, tag_field="type", tag="trickle", frozen=True):
    """A candidate of the `pc` connection with the SFU; null: gathering is over."""

    pc: PcName
    candidate: Candidate | None


class Layer(msgspec.Struct, tag_field="type", tag="layer", frozen=True):
    """Receive simulcast layer `substream` (0 lowest to 2 highest) on the subscription's `mid`."""

    mid: Mid
    substream: Substream


ClientMessage = (
    Join
    | Signal
    | Broadcast
    | Leave
    | SetState
    | React
    | PublishOffer
    | Subscribe
    | Answer
    | Trickle
    | Layer
)
CLIENT_TYPES: Final = frozenset(
    {
        "join",
        "signal",
        "broadcast",
        "leave",
        "state",
        "react",
        "publish",
        "subscribe",
        "answer",
        "trickle",
        "layer",
    }
)
# The messages of SFU mode, refused outside an SFU room.
SfuMessage = PublishOffer | Subscribe | Answer | Trickle | Layer


def raw(value: object) -> msgspec.Raw:
    """`value` as the JSON of a message's opaque `data`."""
    return msgspec.Raw(_encoder.encode(value))


def encode_client(message: ClientMessage) -> str:
    """Encode a client message (for clients, the Socket.IO door and tests)."""
    return _encoder.encode(message).decode()


_client_decoder: Final[msgspec.json.Decoder[ClientMessage]] = msgspec.json.Decoder(ClientMessage)
_any_decoder: Final = msgspec.json.Decoder()


def decode_client(frame: str | bytes) -> ClientMessage:
    """Parse one client frame or raise ProtocolError saying what is wrong."""
    try:
        return _client_decoder.decode(frame)
    except msgspec.ValidationError as exc:
        # Only the error path pays for a second, generic parse: it tells an
        # unknown type apart from a known one with bad fields.
        try:
            value = _any_decoder.decode(frame)
        except msgspec.DecodeError:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, "frame is not valid JSON") from None
        kind = value.get("type") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind not in CLIENT_TYPES:
            raise ProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown message type {kind!r}") from None
        raise ProtocolError(ErrorCode.BAD_MESSAGE, _explain(exc)) from None
    except msgspec.DecodeError:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "frame is not valid JSON") from None


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if text.startswith("Expected `object`, got"):
        return "message must be a JSON object"
    if "`$.room`" in text:
        return "room must match [A-Za-z0-9_-]{1,64}"
    if "`$.name`" in text:
        return "name must be a string of 1 to 64 characters"
    if "`$.emoji`" in text:
        return "emoji must be one of " + " ".join(REACTIONS)
    return text


# Server to client ---------------------------------------------------------


class PeerInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    name: str
    # The token's identity, when the server checks tokens: who this really is.
    identity: str | None = None
    # "socket.io" for a client of the Socket.IO compatibility endpoint, which
    # negotiates the tutorials' way (docs/protocol.md); absent for v1 clients.
    via: str | None = None
    # Whether it can take part through the SFU (Join.sfu).
    sfu: bool = False
    # Its participant state; absent: Status() (a person, microphone and camera on).
    state: Status | None = None


class IceServer(msgspec.Struct, frozen=True, omit_defaults=True):
    """An RTCIceServer dictionary as the browser takes it."""

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class Joined(msgspec.Struct, tag_field="type", tag="joined", rename={"ice_servers": "iceServers"}):
    id: str
    room: str
    peers: list[PeerInfo]
    ice_servers: list[IceServer]
    # Rejoin with this key after a dropped connection to keep the same id.
    resume: str = ""
    # What this peer may do: publish, subscribe, data, admin.
    grants: list[str] = msgspec.field(default_factory=list)
    # "mesh": call every peer; "sfu": publish to and subscribe from the SFU.
    mode: str = "mesh"
    # Our display name as the others see it: the token's or the server
    # application's (its on-join hook) when either set one, else the join's.
    name: str = ""


class PeerJoined(msgspec.Struct, tag_field="type", tag="peer-joined"):
    peer: PeerInfo


class PeerLeft(msgspec.Struct, tag_field="type", tag="peer-left"):
    id: str


class SignalFrom(msgspec.Struct, tag_field="type", tag="signal", rename={"sender": "from"}):
    sender: str
    data: msgspec.Raw


class BroadcastFrom(msgspec.Struct, tag_field="type", tag="broadcast", rename={"sender": "from"}):
    sender: str
    data: msgspec.Raw


class IceServers(
    msgspec.Struct, tag_field="type", tag="ice-servers", rename={"ice_servers": "iceServers"}
):
    """Fresh ICE servers (TURN credentials) before the old ones expire."""

    ice_servers: list[IceServer]


class Error(msgspec.Struct, tag_field="type", tag="error", omit_defaults=True):
    code: ErrorCode
    message: str
    # The message is the server application's (a hook's refusal, a kick),
    # written for people: a client shows it as it is.
    app: bool = False


class Bye(msgspec.Struct, tag_field="type", tag="bye"):
    """The server is going away (restart, shutdown): reconnect and resume."""

    reason: str


class Mode(msgspec.Struct, tag_field="type", tag="mode"):
    """The room is in `mode` ("sfu") from now on: (re)connect to the SFU.

    Sent when a room switches, and again when its SFU node changed (the old
    one failed): close the connections with the SFU and publish and
    subscribe anew.
    """

    mode: str


class Published(msgspec.Struct, tag_field="type", tag="published"):
    """The SFU's answer to a `publish` offer."""

    sdp: str


class Stream(msgspec.Struct, frozen=True, omit_defaults=True):
    """One media section of the subscription: whose it is."""

    mid: str
    kind: str  # "audio", "video" or "data"
    peer: str  # the publisher's peer id
    # The publisher's own mid for it (camera and screen are two video streams).
    source: str | None = None
    # What the publisher called it (PublishOffer.labels): "screen", say.
    label: str | None = None
    simulcast: bool = False


class Subscription(msgspec.Struct, tag_field="type", tag="subscription"):
    """The SFU's offer for the subscribing connection: answer with `answer`."""

    sdp: str
    streams: list[Stream]


class Talking(msgspec.Struct, tag_field="type", tag="talking"):
    """Peer `peer` started (or stopped) speaking, from the SFU's audio levels."""

    peer: str
    talking: bool


class StateOf(msgspec.Struct, tag_field="type", tag="state"):
    """Peer `peer` set its participant state to `state`."""

    peer: str
    state: Status


class ReactionFrom(msgspec.Struct, tag_field="type", tag="reaction"):
    """Peer `peer` reacted with `emoji`."""

    peer: str
    emoji: str


class AppData(msgspec.Struct, tag_field="type", tag="message"):
    """`data` from the server's application (RoomServer.send and .broadcast)."""

    data: msgspec.Raw


class Mute(msgspec.Struct, tag_field="type", tag="mute"):
    """An operator asks this peer to mute its microphone ("audio") or turn its camera
    off ("video"); `by` names who (the admin API's token)."""

    kind: Literal["audio", "video"]
    by: str


ServerMessage = (
    Joined
    | PeerJoined
    | PeerLeft
    | SignalFrom
    | BroadcastFrom
    | IceServers
    | Error
    | Bye
    | Mode
    | Published
    | Subscription
    | Talking
    | AppData
    | Mute
    | StateOf
    | ReactionFrom
)

_encoder: Final = msgspec.json.Encoder()
_server_decoder: Final[msgspec.json.Decoder[ServerMessage]] = msgspec.json.Decoder(ServerMessage)


def encode(message: ServerMessage) -> str:
    """Encode a server message into the text of one frame."""
    return _encoder.encode(message).decode()


def decode_server(frame: str | bytes) -> ServerMessage:
    """Parse a server frame (for clients and tests)."""
    return _server_decoder.decode(frame)


def error(code: ErrorCode, message: str, *, app: bool = False) -> str:
    """An error frame for a client (counted by code: rtcroom_errors_total)."""
    TALLY.errors[code] += 1
    return encode(Error(code=code, message=message, app=app))
