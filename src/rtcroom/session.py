"""The sans-I/O signaling core: one Session per client connection.

A Session is fed client frames and the broker's answers, and returns
actions: what to send to this client (Reply), to one peer of the room
(Relay), to all the others (Publish), and which presence changes to make
(Enter, Exit). It never touches a socket, so every protocol rule is tested
without one (tests/test_session.py) and the pump in server.py only carries
out what it is told.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from .auth import ALL_GRANTS, DATA, PUBLISH, SUBSCRIBE, Authenticator, AuthError, Claims
from .broker.interface import LeaveReason
from .limits import TokenBucket
from .protocol import (
    Answer,
    Broadcast,
    BroadcastFrom,
    ErrorCode,
    IceServers,
    Join,
    Joined,
    Layer,
    Leave,
    Mode,
    PeerInfo,
    PeerJoined,
    PeerLeft,
    ProtocolError,
    PublishOffer,
    React,
    ReactionFrom,
    SetState,
    SfuMessage,
    Signal,
    SignalFrom,
    StateOf,
    Status,
    Subscribe,
    Trickle,
    decode_client,
    encode,
    error,
)
from .sdp import decode_signal_data, media_intent
from .state import PeerState, transition
from .tally import TALLY
from .turn import IceConfig


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `frame` to this session's own client."""

    frame: str


@dataclass(frozen=True, slots=True)
class CheckJoin:
    """Ask the host application's on-join hook (hooks.py) about this join.

    Answer with join_checked() (its changes), or refused() (its refusal).
    """

    room: str
    name: str
    identity: str | None
    grants: frozenset[str]
    claims: Claims | None
    resume: bool


@dataclass(frozen=True, slots=True)
class Moderate:
    """Ask the application's hook about a broadcast or signal (`to` set) before `then`.

    `peer` sends `data` (raw JSON); if the hook refuses, the client gets the
    refusal instead (moderated()).
    """

    room: str
    peer: PeerInfo
    data: bytes
    to: str | None
    then: Relay | Publish


@dataclass(frozen=True, slots=True)
class Enter:
    """Ask the broker to admit `peer` to `room`; answer with admitted() or refused().

    `resume_key` lets a later connection take this peer's place (Resume).
    """

    room: str
    peer: PeerInfo
    resume_key: str
    grants: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Resume:
    """Ask the broker for the peer that `key` resumes in `room`.

    Answer with resumed() if it is there (suspended or still connected), else
    with not_resumed().
    """

    room: str
    key: str


@dataclass(frozen=True, slots=True)
class Suspend:
    """The connection dropped: keep `peer_id` in `room` for the grace period.

    Frames for it are held; if no connection resumes it in time, the broker
    removes it and publishes `farewell` (its peer-left) to the room.
    """

    room: str
    peer_id: str
    farewell: str


@dataclass(frozen=True, slots=True)
class Exit:
    """Remove `peer_id` from `room`'s presence, for `reason` (the on-leave hook's)."""

    room: str
    peer_id: str
    reason: LeaveReason = LeaveReason.LEFT


@dataclass(frozen=True, slots=True)
class Relay:
    """Deliver `frame` to peer `to` of `room`; if it is not there, call undeliverable()."""

    room: str
    to: str
    frame: str


@dataclass(frozen=True, slots=True)
class Update:
    """Keep `peer` (its new state) as `room`'s member from now on: newcomers and resumes see it."""

    room: str
    peer: PeerInfo


@dataclass(frozen=True, slots=True)
class Publish:
    """Deliver `frame` to every member of `room` except `sender`."""

    room: str
    sender: str
    frame: str


@dataclass(frozen=True, slots=True)
class SfuOpen:
    """Serve `room` through the SFU (place it on a node); answer with sfu_opened().

    Refused (Unavailable) when no SFU node can take it.
    """

    room: str


@dataclass(frozen=True, slots=True)
class ToSfu:
    """Carry out an SFU-mode message of peer `peer_id` (publish, subscribe...).

    Refused with the error for the client when the SFU cannot.
    """

    room: str
    peer_id: str
    name: str
    grants: frozenset[str]
    message: SfuMessage


Action = (
    Reply
    | CheckJoin
    | Enter
    | Resume
    | Suspend
    | Exit
    | Relay
    | Publish
    | Update
    | Moderate
    | SfuOpen
    | ToSfu
)


# A peer with all of these may signal anything: its descriptions are not inspected.
MEDIA_AND_DATA = frozenset({PUBLISH, SUBSCRIBE, DATA})


def new_peer_id() -> str:
    """A random, URL-safe, unguessable peer id."""
    return secrets.token_urlsafe(12)


def new_resume_key() -> str:
    return secrets.token_urlsafe(24)


class Session:
    """Protocol state of one client connection."""

    def __init__(
        self,
        *,
        max_message_size: int = 64 * 1024,
        ice: IceConfig | None = None,
        peer_id_factory: Callable[[], str] = new_peer_id,
        rate: TokenBucket | None = None,
        join_gate: TokenBucket | None = None,
        auth: Authenticator | None = None,
        resumable: bool = True,
        clock: Callable[[], float] = time.time,
        via: str | None = None,
        sfu_from: int | None = None,
        max_mesh_peers: int | None = None,
        check_join: bool = False,
        moderated: frozenset[str] = frozenset(),
    ) -> None:
        """
        `rate` bounds this connection's messages; `join_gate` its join
        attempts (shared by every connection of one client address); `auth`
        checks access tokens (None: open mode, every peer may do everything);
        `resumable` keeps a dropped peer for a later connection to resume;
        `via` marks the peers of a compatibility endpoint (PeerInfo.via);
        `sfu_from` (None: the server has no SFU) is the room size from which
        a room is served by the SFU, when every member can take part that
        way (Join.sfu); `max_mesh_peers` bounds a room that stays a mesh.
        `check_join`: every join goes through the on-join hook (CheckJoin);
        `moderated`: the messages ("broadcast", "signal") that go through a
        hook before they are relayed (Moderate).
        """
        self.max_message_size = max_message_size
        self.ice = ice or IceConfig()
        self._new_id = peer_id_factory
        self.rate = rate
        self.join_gate = join_gate
        self.auth = auth
        self.resumable = resumable
        self.clock = clock
        self.via = via
        self.sfu_from = sfu_from
        self.max_mesh_peers = max_mesh_peers
        self.check_join = check_join
        # Read on every relayed frame: plain booleans.
        self.moderate_broadcast = "broadcast" in moderated
        self.moderate_signal = "signal" in moderated
        self.sfu_capable = False
        # The participant state the join asked for.
        self._status: Status | None = None
        # The join's resume key, while the on-join hook decides.
        self._resume: str | None = None
        # The answer to the join, held while the room is placed on the SFU.
        self._held_join: tuple[list[PeerInfo], bool] | None = None
        self.state = PeerState.CONNECTED
        self.room: str | None = None
        self.peer: PeerInfo | None = None
        self.grants: frozenset[str] = frozenset()
        self.resume_key = ""
        # When we last said that messages are dropped for exceeding `rate`.
        self._limited_at = -math.inf
        # The last join refused (room, code, message), until the server logs it.
        self.refusal: tuple[str, ErrorCode, str] | None = None

    # Input from the client -------------------------------------------------

    def receive(self, frame: str | bytes) -> list[Action]:
        """Handle one frame from the client."""
        if self.state is PeerState.CLOSED:
            return []
        # The rate is checked before anything else: a flood costs no parsing.
        # At most one error a second, so a flood does not turn into a flood back.
        if self.rate is not None and not self.rate.take():
            TALLY.refusals["rate"] += 1
            now = self.rate.clock()
            if now - self._limited_at < 1.0:
                return []
            self._limited_at = now
            return [
                Reply(
                    error(
                        ErrorCode.RATE_LIMITED,
                        f"more than {self.rate.rate:g} messages per second: "
                        "messages are dropped until the rate falls",
                    )
                )
            ]
        # Size is checked before parsing: an oversized frame costs no decode
        # and is never relayed. len(str) <= its UTF-8 length <= 4 * len(str).
        size = len(frame)
        if isinstance(frame, str) and size * 4 > self.max_message_size:
            size = len(frame.encode())
        if size > self.max_message_size:
            return [
                Reply(
                    error(
                        ErrorCode.TOO_LARGE,
                        f"message of {size} bytes exceeds the limit of "
                        f"{self.max_message_size} bytes",
                    )
                )
            ]
        try:
            message = decode_client(frame)
        except ProtocolError as exc:
            return [Reply(error(exc.code, exc.message))]
        match message:
            case Join():
                return self._join(message)
            case Signal():
                return self._signal(message)
            case Broadcast():
                return self._broadcast(message)
            case Leave():
                return self._leave()
            case SetState():
                return self._set_state(message.state)
            case React():
                return self._react(message)
            case _:
                return self._sfu(message)

    def _join(self, message: Join) -> list[Action]:
        if self.state is not PeerState.CONNECTED:
            return [Reply(error(ErrorCode.ALREADY_JOINED, f"already in room {self.room!r}"))]
        if self.join_gate is not None and not self.join_gate.take():
            TALLY.refusals["joins"] += 1
            return self._refuse_join(
                message.room,
                ErrorCode.RATE_LIMITED,
                "too many join attempts from your address: wait a minute",
            )
        name, identity, grants, claims = message.name, None, ALL_GRANTS, None
        if self.auth is not None:
            try:
                claims = self.auth.verify(message.token, message.room, self.clock())
            except AuthError as exc:
                return self._refuse_join(message.room, ErrorCode.UNAUTHORIZED, str(exc))
            name = claims.name or name
            identity = claims.identity
            grants = claims.grants
        self.state = transition(self.state, "join")
        self.room = message.room
        self.grants = grants
        self.sfu_capable = message.sfu and self.sfu_from is not None
        self._status = message.state
        resume = message.resume if self.resumable else None
        if self.check_join:
            # Every join, resumes too: a resume that fails joins afresh.
            self._resume = resume
            self.peer = self._info("", name, identity)
            return [CheckJoin(message.room, name, identity, grants, claims, resume is not None)]
        return self._admit(name, identity, resume)

    def join_checked(
        self, name: str | None, identity: str | None, grants: frozenset[str] | None
    ) -> list[Action]:
        """The on-join hook let the join through, changing what is not None."""
        assert self.room is not None and self.peer is not None
        if grants is not None:
            self.grants = grants
        name = name if name is not None else self.peer.name
        identity = identity if identity is not None else self.peer.identity
        resume, self._resume = self._resume, None
        return self._admit(name, identity, resume)

    def _admit(self, name: str, identity: str | None, resume: str | None) -> list[Action]:
        assert self.room is not None
        if resume is not None:
            self.peer = self._info("", name, identity)
            return [Resume(room=self.room, key=resume)]
        return self._enter(name, identity)

    def _info(self, peer_id: str, name: str, identity: str | None) -> PeerInfo:
        return PeerInfo(
            id=peer_id,
            name=name,
            identity=identity,
            via=self.via,
            sfu=self.sfu_capable,
            state=self._status,
        )

    def _enter(self, name: str, identity: str | None) -> list[Action]:
        assert self.room is not None
        self.peer = self._info(self._new_id(), name, identity)
        self.resume_key = new_resume_key()
        return [
            Enter(room=self.room, peer=self.peer, resume_key=self.resume_key, grants=self.grants)
        ]

    def _member(self) -> tuple[str, PeerInfo] | None:
        if self.state is PeerState.JOINED and self.room is not None and self.peer is not None:
            return self.room, self.peer
        return None

    def _signal(self, message: Signal) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before sending signal"))]
        room, peer = member
        if message.to == peer.id:
            return self.undeliverable(message.to)
        if not self.grants >= MEDIA_AND_DATA:
            refusal = self._check_grants(message.data)
            if refusal is not None:
                return [Reply(error(ErrorCode.FORBIDDEN, refusal))]
        frame = encode(SignalFrom(sender=peer.id, data=message.data))
        relay = Relay(room=room, to=message.to, frame=frame)
        if self.moderate_signal:
            return [Moderate(room, peer, bytes(message.data), message.to, relay)]
        return [relay]

    def _check_grants(self, data: bytes) -> str | None:
        """Why a signal of a peer with limited grants is refused, or None."""
        signal = decode_signal_data(data)
        if signal is None:
            return (
                "with your grants, signal data must be a description or a candidate "
                "(docs/protocol.md)"
            )
        description = signal.description
        if description is None:
            return None
        intent = media_intent(description.sdp)
        if intent.sends and PUBLISH not in self.grants:
            kinds = " and ".join(sorted(intent.sends))
            return f"your token does not grant publish: this {description.type} sends {kinds}"
        if intent.receives and SUBSCRIBE not in self.grants:
            kinds = " and ".join(sorted(intent.receives))
            return f"your token does not grant subscribe: this {description.type} receives {kinds}"
        if intent.data and description.type == "offer" and DATA not in self.grants:
            return "your token does not grant data: this offer opens a data channel"
        return None

    def _broadcast(self, message: Broadcast) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before sending broadcast"))]
        if DATA not in self.grants:
            return [Reply(error(ErrorCode.FORBIDDEN, "your token does not grant data"))]
        room, peer = member
        frame = encode(BroadcastFrom(sender=peer.id, data=message.data))
        publish = Publish(room=room, sender=peer.id, frame=frame)
        if self.moderate_broadcast:
            return [Moderate(room, peer, bytes(message.data), None, publish)]
        return [publish]

    def _set_state(self, state: Status) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before sending state"))]
        room, peer = member
        if (peer.state or Status()) == state:
            return []
        self.peer = msgspec.structs.replace(peer, state=state)
        frame = encode(StateOf(peer=peer.id, state=state))
        return [Update(room, self.peer), Publish(room=room, sender=peer.id, frame=frame)]

    def _react(self, message: React) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before sending react"))]
        room, peer = member
        frame = encode(ReactionFrom(peer=peer.id, emoji=message.emoji))
        return [Publish(room=room, sender=peer.id, frame=frame)]

    def moderated_message(
        self, action: Moderate, refusal: tuple[ErrorCode, str, bool] | None
    ) -> list[Action]:
        """The hook's answer about `action`: relay it, or tell the client why not.

        `refusal`: the code, the message, and whether it is the application's.
        """
        if refusal is not None:
            code, message, app = refusal
            return [Reply(error(code, message, app=app))]
        if self._member() is None:
            return []  # left meanwhile
        return [action.then]

    def _sfu(self, message: SfuMessage) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before using the SFU"))]
        if self.sfu_from is None:
            return [Reply(error(ErrorCode.UNSUPPORTED, "this server has no SFU (docs/sfu.md)"))]
        refusal = self._check_sfu_grants(message)
        if refusal is not None:
            return [Reply(error(ErrorCode.FORBIDDEN, refusal))]
        room, peer = member
        return [
            ToSfu(room=room, peer_id=peer.id, name=peer.name, grants=self.grants, message=message)
        ]

    def _check_sfu_grants(self, message: SfuMessage) -> str | None:
        """Why an SFU message is refused with this peer's grants, or None.

        Media passes through the server in SFU mode, so the rules hold for
        everyone: what is not granted is never published or forwarded.
        """
        grants = self.grants
        match message:
            case PublishOffer(sdp=sdp):
                intent = media_intent(sdp)
                if intent.sends and PUBLISH not in grants:
                    kinds = " and ".join(sorted(intent.sends))
                    return f"your token does not grant publish: this offer sends {kinds}"
                if intent.data and DATA not in grants:
                    return "your token does not grant data: this offer opens a data channel"
                if not intent.sends and not intent.data:
                    return "a publish offer must send audio or video, or open a data channel"
            case Subscribe() | Layer():
                if SUBSCRIBE not in grants:
                    return "your token does not grant subscribe"
            case Answer(sdp=sdp):
                if SUBSCRIBE not in grants:
                    return "your token does not grant subscribe"
                intent = media_intent(sdp)
                if intent.sends and PUBLISH not in grants:
                    kinds = " and ".join(sorted(intent.sends))
                    return f"your token does not grant publish: this answer sends {kinds}"
            case Trickle(pc=pc):
                if pc == "subscribe" and SUBSCRIBE not in grants:
                    return "your token does not grant subscribe"
                if pc == "publish" and not grants & {PUBLISH, DATA}:
                    return "your token does not grant publish"
        return None

    def _leave(self) -> list[Action]:
        if self._member() is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "not in a room"))]
        actions = self._departure()
        self.state = transition(self.state, "leave")
        return actions

    def _departure(
        self, suspend: bool = False, reason: LeaveReason = LeaveReason.LEFT
    ) -> list[Action]:
        member = self._member()
        self.room = None
        self.peer = None
        self.grants = frozenset()
        if member is None:
            return []
        room, peer = member
        farewell = encode(PeerLeft(id=peer.id))
        if suspend:
            return [Suspend(room=room, peer_id=peer.id, farewell=farewell)]
        return [
            Exit(room=room, peer_id=peer.id, reason=reason),
            Publish(room=room, sender=peer.id, frame=farewell),
        ]

    # Answers from the broker ---------------------------------------------

    def admitted(self, peers: Sequence[PeerInfo], sfu_running: bool = False) -> list[Action]:
        """The broker admitted us; `peers` were already there, in join order.

        `sfu_running`: the room is served by the SFU already. Whether it is
        from now on is decided here: once it holds `sfu_from` peers who can
        all take part through the SFU, it switches (and stays switched
        while anyone is in it).
        """
        assert self.room is not None and self.peer is not None
        size = len(peers) + 1
        if self.sfu_from is not None:
            if sfu_running and not self.sfu_capable:
                return self._turned_away(
                    ErrorCode.UNSUPPORTED,
                    "this room is served by the SFU, which your client cannot use "
                    "(docs/protocol.md, SFU rooms)",
                )
            switch = (
                not sfu_running
                and size >= self.sfu_from
                and self.sfu_capable
                and all(peer.sfu for peer in peers)
            )
            if sfu_running or switch:
                self._held_join = (list(peers), switch)
                return [SfuOpen(room=self.room)]
            if self.max_mesh_peers is not None and size > self.max_mesh_peers:
                return self._turned_away(
                    ErrorCode.ROOM_FULL,
                    f"room {self.room!r} is full: {self.max_mesh_peers} peers call each other "
                    "directly, and not all of them can use the SFU",
                )
        self.state = transition(self.state, "admitted")
        return [
            Reply(self._joined(peers)),
            Publish(room=self.room, sender=self.peer.id, frame=encode(PeerJoined(peer=self.peer))),
        ]

    def sfu_opened(self) -> list[Action]:
        """The SFU serves our room: in it, in SFU mode (and the others told, if we switched it)."""
        assert self.room is not None and self.peer is not None and self._held_join is not None
        peers, switch = self._held_join
        self._held_join = None
        self.state = transition(self.state, "admitted")
        actions: list[Action] = [Reply(self._joined(peers, "sfu"))]
        if switch:
            # Before the newcomer: the others meet it in SFU mode already.
            actions.append(Publish(room=self.room, sender=self.peer.id, frame=encode(Mode("sfu"))))
        frame = encode(PeerJoined(peer=self.peer))
        actions.append(Publish(room=self.room, sender=self.peer.id, frame=frame))
        return actions

    def _turned_away(self, code: ErrorCode, message: str) -> list[Action]:
        """Admitted by the broker, but not into this room: out again, and why."""
        assert self.room is not None and self.peer is not None
        exit_ = Exit(room=self.room, peer_id=self.peer.id, reason=LeaveReason.REFUSED)
        return [exit_, *self._refuse(code, message)]

    def _joined(self, peers: Sequence[PeerInfo], mode: str = "mesh") -> str:
        assert self.room is not None and self.peer is not None
        joined = Joined(
            id=self.peer.id,
            room=self.room,
            peers=list(peers),
            ice_servers=self.ice.servers_for(self.peer.id),
            resume=self.resume_key if self.resumable else "",
            grants=sorted(self.grants),
            mode=mode,
            name=self.peer.name,
        )
        return encode(joined)

    def resumed(
        self, peer: PeerInfo, key: str, peers: Sequence[PeerInfo], sfu_running: bool = False
    ) -> list[Action]:
        """The broker handed us `peer` back; the others saw nothing change."""
        self.state = transition(self.state, "resumed")
        self.peer = peer
        self.resume_key = key
        self.sfu_capable = peer.sfu
        actions: list[Action] = [Reply(self._joined(peers, "sfu" if sfu_running else "mesh"))]
        if self._status is not None:
            # Changed while the connection was down: the room hears it now.
            actions += self._set_state(self._status)
        return actions

    def not_resumed(self) -> list[Action]:
        """Nothing to resume (the grace period ended, another room): join afresh."""
        assert self.peer is not None
        return self._enter(self.peer.name, self.peer.identity)

    def refused(self, code: ErrorCode, message: str, *, app: bool = False) -> list[Action]:
        """The broker refused the join (for example the room is full), or the SFU did,
        or the on-join hook (`app`: its message is for people)."""
        if self._held_join is not None:
            # Admitted by the broker, but no SFU node could take the room.
            self._held_join = None
            assert self.room is not None and self.peer is not None
            exit_ = Exit(room=self.room, peer_id=self.peer.id, reason=LeaveReason.REFUSED)
            return [exit_, *self._refuse(code, message)]
        self._resume = None
        return self._refuse(code, message, app)

    def _refuse(self, code: ErrorCode, message: str, app: bool = False) -> list[Action]:
        assert self.room is not None
        self.state = transition(self.state, "refused")
        room, self.room = self.room, None
        self.peer = None
        self.grants = frozenset()
        return self._refuse_join(room, code, message, app)

    def _refuse_join(
        self, room: str, code: ErrorCode, message: str, app: bool = False
    ) -> list[Action]:
        """The error for a refused join, noted in `refusal` for the server's log."""
        self.refusal = (room, code, message)
        return [Reply(error(code, message, app=app))]

    def renew_ice(self, now: float | None = None) -> list[Action]:
        """Fresh ICE servers for our client, if it is in a room (see IceConfig.renewal_period)."""
        member = self._member()
        if member is None:
            return []
        servers = self.ice.servers_for(member[1].id, now)
        return [Reply(encode(IceServers(ice_servers=servers)))]

    def undeliverable(self, to: str) -> list[Action]:
        """A Relay found no peer `to` in our room."""
        return [Reply(error(ErrorCode.UNKNOWN_PEER, f"no peer {to!r} in your room"))]

    # End -----------------------------------------------------------------

    def close(self, *, resumable: bool = True, kicked: bool = False) -> list[Action]:
        """The connection ended, whatever the reason. Idempotent.

        A joined peer is suspended for a later connection to resume, unless
        resuming is off or the end is final (`resumable=False`: the client
        was too slow, say; `kicked`: the application removed it); otherwise
        it leaves at once.
        """
        actions: list[Action] = []
        if self.state is PeerState.JOINED:
            reason = LeaveReason.KICKED if kicked else LeaveReason.CLOSED
            suspend = resumable and self.resumable and not kicked
            actions = self._departure(suspend=suspend, reason=reason)
        self.room = None
        self.peer = None
        self.state = transition(self.state, "close")
        return actions

    def evicted(self) -> list[Action]:
        """Another connection resumed our peer: end without a departure."""
        self.room = None
        self.peer = None
        self.state = transition(self.state, "close")
        return []
