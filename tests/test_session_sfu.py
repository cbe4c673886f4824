"""The sans-I/O core's rules for SFU rooms: when a room switches, who is turned away,
and which SFU messages the grants allow. No sockets, no Janus: the actions say it all.
"""

from __future__ import annotations

import json
from typing import Any

from test_session_guards import NOW, SECRET, offer, token

from rtcroom.auth import Authenticator
from rtcroom.broker.interface import LeaveReason
from rtcroom.protocol import ErrorCode, PeerInfo, PublishOffer
from rtcroom.session import Exit, Publish, Reply, Session, SfuOpen, ToSfu
from rtcroom.state import PeerState


def session(sfu_from: int | None = 3, **options: Any) -> Session:
    return Session(peer_id_factory=lambda: "me", sfu_from=sfu_from, max_mesh_peers=4, **options)


def join(s: Session, sfu: bool = True, **fields: Any) -> None:
    [enter] = s.receive(
        json.dumps({"type": "join", "room": "r", "name": "Ann", "sfu": sfu, **fields})
    )
    assert type(enter).__name__ == "Enter"


def peers(*capable: bool) -> list[PeerInfo]:
    return [PeerInfo(id=f"p{i}", name=f"P{i}", sfu=c) for i, c in enumerate(capable)]


def frames(actions: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(a.frame) for a in actions if isinstance(a, Reply | Publish)]


def test_the_join_that_reaches_sfu_from_switches_the_room() -> None:
    s = session()
    join(s)
    assert s.admitted(peers(True, True)) == [SfuOpen(room="r")]
    assert s.state is PeerState.JOINING  # nothing said until the SFU has the room
    actions = s.sfu_opened()
    joined, mode, announced = frames(actions)
    assert joined["type"] == "joined" and joined["mode"] == "sfu"
    assert [p["id"] for p in joined["peers"]] == ["p0", "p1"]
    assert announced == {"type": "peer-joined", "peer": {"id": "me", "name": "Ann", "sfu": True}}
    # Everyone already there is told to connect to the SFU, before they meet the newcomer.
    assert mode == {"type": "mode", "mode": "sfu"}
    assert s.state is PeerState.JOINED


def test_smaller_rooms_stay_a_mesh() -> None:
    s = session()
    join(s)
    [reply, _] = s.admitted(peers(True))
    assert json.loads(reply.frame)["mode"] == "mesh"


def test_a_member_that_cannot_use_the_sfu_keeps_the_room_a_mesh() -> None:
    s = session()
    join(s)
    [reply, publish] = s.admitted(peers(True, False))
    assert json.loads(reply.frame)["mode"] == "mesh"
    assert "mode" not in publish.frame


def test_a_mesh_that_cannot_switch_is_bounded() -> None:
    s = session()
    join(s)
    actions = s.admitted(peers(True, False, True, True))
    assert actions[0] == Exit(room="r", peer_id="me", reason=LeaveReason.REFUSED)
    [error] = frames(actions)
    assert error["code"] == ErrorCode.ROOM_FULL and "can use the SFU" in error["message"]
    assert s.state is PeerState.CONNECTED


def test_a_client_that_cannot_use_the_sfu_is_turned_away_from_an_sfu_room() -> None:
    s = session()
    join(s, sfu=False)
    actions = s.admitted(peers(True), sfu_running=True)
    assert actions[0] == Exit(room="r", peer_id="me", reason=LeaveReason.REFUSED)
    [error] = frames(actions)
    assert error["code"] == ErrorCode.UNSUPPORTED and "SFU" in error["message"]
    assert s.state is PeerState.CONNECTED
    # The connection stays usable: another room, say.
    join(s, sfu=False)


def test_an_sfu_room_below_sfu_from_stays_one() -> None:
    s = session()
    join(s)
    assert s.admitted(peers(True), sfu_running=True) == [SfuOpen(room="r")]
    joined, _ = frames(s.sfu_opened())  # no `mode`: the room was switched already
    assert joined["mode"] == "sfu"


def test_no_sfu_node_means_the_join_is_refused_and_undone() -> None:
    s = session(sfu_from=1)
    join(s)
    assert s.admitted([]) == [SfuOpen(room="r")]
    actions = s.refused(ErrorCode.UNAVAILABLE, "the SFU is unavailable")
    assert actions[0] == Exit(room="r", peer_id="me", reason=LeaveReason.REFUSED)
    assert frames(actions)[0]["code"] == ErrorCode.UNAVAILABLE
    assert s.state is PeerState.CONNECTED


def test_a_server_without_sfu_ignores_the_capability() -> None:
    s = session(sfu_from=None)
    join(s)
    [reply, publish] = s.admitted(peers(True, True, True))
    assert json.loads(reply.frame)["mode"] == "mesh"
    assert json.loads(publish.frame)["peer"] == {"id": "me", "name": "Ann"}
    [refusal] = frames(s.receive('{"type": "subscribe"}'))
    assert refusal["code"] == ErrorCode.UNSUPPORTED


def joined_with(grants: list[str]) -> Session:
    s = session(sfu_from=1, auth=Authenticator(SECRET), clock=lambda: NOW)
    join(s, token=token(room="r", grants=grants))
    s.admitted([])
    s.sfu_opened()
    return s


def sdp(video: str, data: bool = False) -> str:
    return str(offer(video, audio="inactive", data=data)["description"]["sdp"])


def refusal(s: Session, message: dict[str, Any]) -> str | None:
    actions = s.receive(json.dumps(message))
    if len(actions) == 1 and isinstance(actions[0], ToSfu):
        return None
    [error] = frames(actions)
    assert error["code"] == ErrorCode.FORBIDDEN, error
    return str(error["message"])


def test_sfu_messages_carry_the_grants_and_go_to_the_sfu() -> None:
    s = joined_with(["publish", "subscribe", "data"])
    [action] = s.receive(json.dumps({"type": "publish", "sdp": sdp("sendonly", data=True)}))
    assert isinstance(action, ToSfu)
    assert action.room == "r" and action.peer_id == "me" and action.name == "Ann"
    assert action.grants == {"publish", "subscribe", "data"}
    assert isinstance(action.message, PublishOffer)


def test_what_the_grants_do_not_allow_never_reaches_the_sfu() -> None:
    viewer = joined_with(["subscribe"])
    assert "does not grant publish" in str(
        refusal(viewer, {"type": "publish", "sdp": sdp("sendonly")})
    )
    assert "does not grant publish" in str(
        refusal(viewer, {"type": "answer", "sdp": sdp("sendrecv")})
    )
    assert refusal(viewer, {"type": "answer", "sdp": sdp("recvonly")}) is None
    assert refusal(viewer, {"type": "subscribe"}) is None
    assert refusal(viewer, {"type": "layer", "mid": "1", "substream": 0}) is None
    speaker = joined_with(["publish"])
    assert refusal(speaker, {"type": "publish", "sdp": sdp("sendonly")}) is None
    assert "does not grant data" in str(
        refusal(speaker, {"type": "publish", "sdp": sdp("sendonly", data=True)})
    )
    assert "does not grant subscribe" in str(refusal(speaker, {"type": "subscribe"}))
    assert "does not grant subscribe" in str(
        refusal(speaker, {"type": "layer", "mid": "1", "substream": 2})
    )
    candidate = {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}
    assert "does not grant subscribe" in str(
        refusal(speaker, {"type": "trickle", "pc": "subscribe", "candidate": candidate})
    )
    assert refusal(speaker, {"type": "trickle", "pc": "publish", "candidate": None}) is None
    # An offer that publishes nothing is no publish at all.
    assert "must send" in str(refusal(speaker, {"type": "publish", "sdp": sdp("recvonly")}))


def test_sfu_messages_are_validated_and_need_a_room() -> None:
    s = session()
    [not_joined] = frames(s.receive('{"type": "subscribe"}'))
    assert not_joined["code"] == ErrorCode.NOT_JOINED
    s = joined_with(["subscribe"])
    [bad] = frames(s.receive('{"type": "layer", "mid": "1", "substream": 3}'))
    assert bad["code"] == ErrorCode.BAD_MESSAGE
    [bad] = frames(s.receive('{"type": "trickle", "pc": "other", "candidate": null}'))
    assert bad["code"] == ErrorCode.BAD_MESSAGE
