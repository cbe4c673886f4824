"""Carry out a Session's actions against a Broker.

This is all the logic between a connection and the rooms: the WebSocket
handler (server.py) and the socket-free tests use the same function.
"""

from __future__ import annotations

from .broker import Broker, Mailbox, RoomFull
from .protocol import ErrorCode
from .session import Action, Enter, Exit, Publish, Relay, Reply, Session


async def execute(
    actions: list[Action], session: Session, broker: Broker, mailbox: Mailbox
) -> None:
    """Run `actions` in order; broker answers feed back into `session`."""
    for action in actions:
        match action:
            case Reply(frame):
                mailbox.deliver(frame)
            case Relay(room, to, frame):
                if not await broker.relay(room, to, frame):
                    await execute(session.undeliverable(to), session, broker, mailbox)
            case Publish(room, sender, frame):
                await broker.publish(room, sender, frame)
            case Enter(room, peer):
                try:
                    peers = await broker.enter(room, peer, mailbox)
                except RoomFull as exc:
                    answer = session.refused(ErrorCode.ROOM_FULL, str(exc))
                else:
                    answer = session.admitted(peers)
                await execute(answer, session, broker, mailbox)
            case Exit(room, peer_id):
                await broker.exit(room, peer_id)
