"""The sans-I/O signaling core: one Session per client connection.

A Session is fed client frames and the broker's answers, and returns
actions: what to send to this client (Reply), to one peer of the room
(Relay), to all the others (Publish), and which presence changes to make
(Enter, Exit). It never touches a socket, so every protocol rule is tested
without one (tests/test_session.py) and the pump in server.py only carries
out what it is told.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .protocol import (
    Broadcast,
    BroadcastFrom,
    ErrorCode,
    IceServers,
    Join,
    Joined,
    Leave,
    PeerInfo,
    PeerJoined,
    PeerLeft,
    ProtocolError,
    Signal,
    SignalFrom,
    decode_client,
    encode,
    error,
)
from .state import PeerState, transition
from .turn import IceConfig


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `frame` to this session's own client."""

    frame: str


@dataclass(frozen=True, slots=True)
class Enter:
    """Ask the broker to admit `peer` to `room`; answer with admitted() or refused()."""

    room: str
    peer: PeerInfo


@dataclass(frozen=True, slots=True)
class Exit:
    """Remove `peer_id` from `room`'s presence."""

    room: str
    peer_id: str


@dataclass(frozen=True, slots=True)
class Relay:
    """Deliver `frame` to peer `to` of `room`; if it is not there, call undeliverable()."""

    room: str
    to: str
    frame: str


@dataclass(frozen=True, slots=True)
class Publish:
    """Deliver `frame` to every member of `room` except `sender`."""

    room: str
    sender: str
    frame: str


Action = Reply | Enter | Exit | Relay | Publish


def new_peer_id() -> str:
    """A random, URL-safe, unguessable peer id."""
    return secrets.token_urlsafe(12)


class Session:
    """Protocol state of one client connection."""

    def __init__(
        self,
        *,
        max_message_size: int = 64 * 1024,
        ice: IceConfig | None = None,
        peer_id_factory: Callable[[], str] = new_peer_id,
    ) -> None:
        self.max_message_size = max_message_size
        self.ice = ice or IceConfig()
        self._new_id = peer_id_factory
        self.state = PeerState.CONNECTED
        self.room: str | None = None
        self.peer: PeerInfo | None = None

    # Input from the client -------------------------------------------------

    def receive(self, frame: str | bytes) -> list[Action]:
        """Handle one frame from the client."""
        if self.state is PeerState.CLOSED:
            return []
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

    def _join(self, message: Join) -> list[Action]:
        if self.state is not PeerState.CONNECTED:
            return [Reply(error(ErrorCode.ALREADY_JOINED, f"already in room {self.room!r}"))]
        self.state = transition(self.state, "join")
        self.room = message.room
        self.peer = PeerInfo(id=self._new_id(), name=message.name)
        return [Enter(room=message.room, peer=self.peer)]

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
        frame = encode(SignalFrom(sender=peer.id, data=message.data))
        return [Relay(room=room, to=message.to, frame=frame)]

    def _broadcast(self, message: Broadcast) -> list[Action]:
        member = self._member()
        if member is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "join a room before sending broadcast"))]
        room, peer = member
        frame = encode(BroadcastFrom(sender=peer.id, data=message.data))
        return [Publish(room=room, sender=peer.id, frame=frame)]

    def _leave(self) -> list[Action]:
        if self._member() is None:
            return [Reply(error(ErrorCode.NOT_JOINED, "not in a room"))]
        actions = self._departure()
        self.state = transition(self.state, "leave")
        return actions

    def _departure(self) -> list[Action]:
        member = self._member()
        self.room = None
        self.peer = None
        if member is None:
            return []
        room, peer = member
        return [
            Exit(room=room, peer_id=peer.id),
            Publish(room=room, sender=peer.id, frame=encode(PeerLeft(id=peer.id))),
        ]

    # Answers from the broker ---------------------------------------------

    def admitted(self, peers: Sequence[PeerInfo]) -> list[Action]:
        """The broker admitted us; `peers` were already there, in join order."""
        self.state = transition(self.state, "admitted")
        assert self.room is not None and self.peer is not None
        joined = Joined(
            id=self.peer.id,
            room=self.room,
            peers=list(peers),
            ice_servers=self.ice.servers_for(self.peer.id),
        )
        return [
            Reply(encode(joined)),
            Publish(room=self.room, sender=self.peer.id, frame=encode(PeerJoined(peer=self.peer))),
        ]

    def refused(self, code: ErrorCode, message: str) -> list[Action]:
        """The broker refused the join (for example the room is full)."""
        self.state = transition(self.state, "refused")
        self.room = None
        self.peer = None
        return [Reply(error(code, message))]

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

    def close(self) -> list[Action]:
        """The connection ended, whatever the reason. Idempotent."""
        actions = self._departure() if self.state is PeerState.JOINED else []
        self.room = None
        self.peer = None
        self.state = transition(self.state, "close")
        return actions
