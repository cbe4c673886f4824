"""The Session's side of the application's hooks (sans-I/O): CheckJoin, Moderate, leave reasons."""

from __future__ import annotations

import json

from rtcroom.broker.interface import LeaveReason
from rtcroom.protocol import ErrorCode, PeerInfo
from rtcroom.session import CheckJoin, Enter, Exit, Moderate, Publish, Relay, Resume, Session
from rtcroom.state import PeerState

JOIN = '{"type":"join","room":"r","name":"Ann"}'


def test_without_a_join_hook_a_join_goes_straight_to_the_broker() -> None:
    [enter] = Session().receive(JOIN)
    assert isinstance(enter, Enter)


def test_a_join_hook_sees_the_join_and_may_change_name_identity_and_grants() -> None:
    session = Session(peer_id_factory=lambda: "me", check_join=True)
    [check] = session.receive(JOIN)
    assert isinstance(check, CheckJoin)
    assert (check.room, check.name, check.identity, check.resume) == ("r", "Ann", None, False)
    assert session.state is PeerState.JOINING
    [enter] = session.join_checked("Ann B.", "user-1", frozenset({"subscribe"}))
    assert isinstance(enter, Enter)
    assert enter.peer == PeerInfo("me", "Ann B.", identity="user-1")
    reply, _ = session.admitted([])
    joined = json.loads(reply.frame)  # type: ignore[union-attr]
    assert joined["grants"] == ["subscribe"] and joined["name"] == "Ann B."
    # The grants it set hold: no data grant, no broadcast.
    [refused] = session.receive('{"type":"broadcast","data":1}')
    assert json.loads(refused.frame)["code"] == "forbidden"  # type: ignore[union-attr]


def test_a_join_hook_that_changes_nothing_keeps_the_join() -> None:
    session = Session(peer_id_factory=lambda: "me", check_join=True)
    session.receive(JOIN)
    [enter] = session.join_checked(None, None, None)
    assert isinstance(enter, Enter) and enter.peer == PeerInfo("me", "Ann")


def test_a_refusal_by_the_hook_is_the_applications_words_and_the_client_may_try_again() -> None:
    session = Session(check_join=True)
    session.receive(JOIN)
    [reply] = session.refused(ErrorCode.UNAUTHORIZED, "log in first", app=True)
    assert json.loads(reply.frame) == {  # type: ignore[union-attr]
        "type": "error",
        "code": "unauthorized",
        "message": "log in first",
        "app": True,
    }
    assert session.state is PeerState.CONNECTED
    assert isinstance(session.receive(JOIN)[0], CheckJoin)


def test_a_resume_is_checked_too_and_goes_on_as_a_resume() -> None:
    session = Session(check_join=True)
    [check] = session.receive('{"type":"join","room":"r","name":"Ann","resume":"k"}')
    assert isinstance(check, CheckJoin) and check.resume
    [resume] = session.join_checked(None, None, None)
    assert resume == Resume(room="r", key="k")


def moderated_session() -> Session:
    session = Session(peer_id_factory=lambda: "me", moderated=frozenset({"broadcast", "signal"}))
    session.receive(JOIN)
    session.admitted([PeerInfo("bo", "Bo")])
    return session


def test_a_moderated_broadcast_waits_for_the_hook_then_goes_out() -> None:
    session = moderated_session()
    [moderate] = session.receive('{"type":"broadcast","data":{"text":"hi"}}')
    assert isinstance(moderate, Moderate)
    assert moderate.to is None and json.loads(moderate.data) == {"text": "hi"}
    assert isinstance(moderate.then, Publish)
    assert session.moderated_message(moderate, None) == [moderate.then]
    [reply] = session.moderated_message(moderate, (ErrorCode.FORBIDDEN, "not here", True))
    assert json.loads(reply.frame)["message"] == "not here"  # type: ignore[union-attr]


def test_a_moderated_signal_names_its_recipient() -> None:
    session = moderated_session()
    [moderate] = session.receive('{"type":"signal","to":"bo","data":{"candidate":null}}')
    assert isinstance(moderate, Moderate) and moderate.to == "bo"
    assert isinstance(moderate.then, Relay) and moderate.then.to == "bo"


def test_a_message_whose_sender_left_meanwhile_is_dropped() -> None:
    session = moderated_session()
    [moderate] = session.receive('{"type":"broadcast","data":1}')
    session.receive('{"type":"leave"}')
    assert session.moderated_message(moderate, None) == []


def test_each_departure_says_why() -> None:
    def joined() -> Session:
        session = Session(peer_id_factory=lambda: "me")
        session.receive(JOIN)
        session.admitted([])
        return session

    assert joined().receive('{"type":"leave"}')[0] == Exit("r", "me", LeaveReason.LEFT)
    assert joined().close(resumable=False)[0] == Exit("r", "me", LeaveReason.CLOSED)
    # A kicked peer leaves at once, even from an end that could have resumed.
    assert joined().close(resumable=True, kicked=True)[0] == Exit("r", "me", LeaveReason.KICKED)
    assert not isinstance(joined().close(resumable=True)[0], Exit)  # suspended instead
