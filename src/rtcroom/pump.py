"""Carry out a Session's actions against a Broker.

This is all the logic between a connection and the rooms: the WebSocket
handler (server.py) and the socket-free tests use the same function.
"""

from __future__ import annotations

from .broker import Broker, Mailbox, Refused
from .protocol import error
from .session import Action, Enter, Exit, Publish, Relay, Reply, Resume, Session, Suspend


def execute_now(
    actions: list[Action], session: Session, broker: Broker, mailbox: Mailbox
) -> list[Action]:
    """Run `actions` in order up to the first that would have to wait; return the rest.

    Relaying and publishing in this process never wait: a pump calls this
    first and needs no task for most frames. Whatever is returned must go
    through execute(), before anything else of this session.
    """
    for index, action in enumerate(actions):
        if type(action) is Reply:
            mailbox.deliver(action.frame)
        elif type(action) is Relay:
            try:
                delivered = broker.relay_now(action.room, action.to, action.frame)
            except Refused as exc:
                mailbox.deliver(error(exc.code, str(exc)))
                continue
            if delivered is None:
                return actions[index:]
            if not delivered:
                rest = execute_now(session.undeliverable(action.to), session, broker, mailbox)
                if rest:
                    return rest + actions[index + 1 :]
        elif type(action) is Publish:
            try:
                if not broker.publish_now(action.room, action.sender, action.frame):
                    return actions[index:]
            except Refused as exc:
                mailbox.deliver(error(exc.code, str(exc)))
        else:
            return actions[index:]
    return []


async def execute(
    actions: list[Action], session: Session, broker: Broker, mailbox: Mailbox
) -> None:
    """Run `actions` in order; broker answers feed back into `session`."""
    for action in actions:
        match action:
            case Reply(frame):
                mailbox.deliver(frame)
            case Relay(room, to, frame):
                try:
                    delivered = await broker.relay(room, to, frame)
                except Refused as exc:
                    mailbox.deliver(error(exc.code, str(exc)))
                else:
                    if not delivered:
                        await execute(session.undeliverable(to), session, broker, mailbox)
            case Publish(room, sender, frame):
                try:
                    await broker.publish(room, sender, frame)
                except Refused as exc:
                    mailbox.deliver(error(exc.code, str(exc)))
            case Enter(room, peer, resume_key):
                try:
                    peers = await broker.enter(room, peer, mailbox, resume_key)
                except Refused as exc:
                    answer = session.refused(exc.code, str(exc))
                else:
                    answer = session.admitted(peers)
                await execute(answer, session, broker, mailbox)
            case Resume(room, key):
                try:
                    resumed = await broker.resume(room, key, mailbox)
                except Refused as exc:
                    await execute(session.refused(exc.code, str(exc)), session, broker, mailbox)
                    continue
                if resumed is None:
                    await execute(session.not_resumed(), session, broker, mailbox)
                else:
                    answer = session.resumed(resumed.peer, key, resumed.peers)
                    await execute(answer, session, broker, mailbox)
                    for frame in resumed.held:
                        mailbox.deliver(frame)
            case Suspend(room, peer_id, farewell):
                await broker.suspend(room, peer_id, farewell)
            case Exit(room, peer_id):
                await broker.exit(room, peer_id)
