"""Peer lifecycle: every state transition of a connection lives here.

The table is the single source of truth (h11 style): the session asks for a
transition by event name and gets the next state or an InvalidTransition
that names the state it was raised in.
"""

from __future__ import annotations

from enum import Enum
from typing import Final


class PeerState(Enum):
    CONNECTED = "connected"  # WebSocket open, not in a room
    JOINING = "joining"  # join sent to the broker, answer pending
    JOINED = "joined"  # member of a room
    CLOSED = "closed"  # connection ended; terminal


class InvalidTransition(Exception):
    def __init__(self, state: PeerState, event: str) -> None:
        super().__init__(f"Cannot handle {event!r} in peer state {state.value!r}")
        self.state = state
        self.event = event


TRANSITIONS: Final[dict[tuple[PeerState, str], PeerState]] = {
    (PeerState.CONNECTED, "join"): PeerState.JOINING,
    (PeerState.JOINING, "admitted"): PeerState.JOINED,
    (PeerState.JOINING, "resumed"): PeerState.JOINED,
    (PeerState.JOINING, "refused"): PeerState.CONNECTED,
    (PeerState.JOINED, "leave"): PeerState.CONNECTED,
    (PeerState.CONNECTED, "close"): PeerState.CLOSED,
    (PeerState.JOINING, "close"): PeerState.CLOSED,
    (PeerState.JOINED, "close"): PeerState.CLOSED,
    (PeerState.CLOSED, "close"): PeerState.CLOSED,
}


def transition(state: PeerState, event: str) -> PeerState:
    try:
        return TRANSITIONS[state, event]
    except KeyError:
        raise InvalidTransition(state, event) from None
