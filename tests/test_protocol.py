"""Decoding client frames: every malformed input gets the right error code."""

from __future__ import annotations

import msgspec
import pytest

from rtcroom.protocol import (
    Broadcast,
    BroadcastFrom,
    ErrorCode,
    Join,
    Joined,
    Leave,
    PeerInfo,
    ProtocolError,
    Signal,
    SignalFrom,
    decode_client,
    decode_server,
    encode,
)


def test_join_parses_token_and_resume_and_ignores_unknown_fields() -> None:
    message = decode_client(
        '{"type":"join","room":"a-B_9","name":"Ada","token":"t","resume":"x","later":[1]}'
    )
    assert message == Join(room="a-B_9", name="Ada", token="t", resume="x")
    assert decode_client('{"type":"join","room":"r","name":"A"}') == Join(room="r", name="A")


def test_join_token_of_the_wrong_type_is_a_bad_message() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_client('{"type":"join","room":"r","name":"A","token":5}')
    assert caught.value.code is ErrorCode.BAD_MESSAGE
    assert "token" in caught.value.message


def test_signal_keeps_data_raw() -> None:
    message = decode_client('{"type":"signal","to":"p1","data":{"candidate":null}}')
    assert isinstance(message, Signal)
    assert bytes(message.data) == b'{"candidate":null}'


@pytest.mark.parametrize("data", ["1", '"text"', "[1,2]", "null", '{"a":{"b":[true]}}'])
def test_broadcast_data_is_any_json(data: str) -> None:
    message = decode_client(f'{{"type":"broadcast","data":{data}}}')
    assert isinstance(message, Broadcast)
    assert bytes(message.data) == data.encode()


def test_leave() -> None:
    assert decode_client('{"type":"leave"}') == Leave()


@pytest.mark.parametrize(
    ("frame", "code", "fragment"),
    [
        ("not json", ErrorCode.BAD_MESSAGE, "not valid JSON"),
        ("0\x00", ErrorCode.BAD_MESSAGE, "not valid JSON"),  # found by Hypothesis
        ("[]", ErrorCode.BAD_MESSAGE, "JSON object"),
        ("42", ErrorCode.BAD_MESSAGE, "JSON object"),
        ("{}", ErrorCode.BAD_MESSAGE, "type"),
        ('{"type":7}', ErrorCode.BAD_MESSAGE, "type"),
        ('{"type":"dance"}', ErrorCode.UNKNOWN_TYPE, "dance"),
        ('{"type":"join","name":"x"}', ErrorCode.BAD_MESSAGE, "room"),
        ('{"type":"join","room":"has space","name":"x"}', ErrorCode.BAD_MESSAGE, "room"),
        ('{"type":"join","room":"' + "r" * 65 + '","name":"x"}', ErrorCode.BAD_MESSAGE, "room"),
        ('{"type":"join","room":"","name":"x"}', ErrorCode.BAD_MESSAGE, "room"),
        ('{"type":"join","room":"ok","name":""}', ErrorCode.BAD_MESSAGE, "name"),
        ('{"type":"join","room":"ok","name":"' + "n" * 65 + '"}', ErrorCode.BAD_MESSAGE, "name"),
        ('{"type":"join","room":"ok","name":3}', ErrorCode.BAD_MESSAGE, "name"),
        ('{"type":"signal","data":{}}', ErrorCode.BAD_MESSAGE, "to"),
        ('{"type":"signal","to":"x"}', ErrorCode.BAD_MESSAGE, "data"),
        ('{"type":"signal","to":5,"data":{}}', ErrorCode.BAD_MESSAGE, "to"),
        ('{"type":"broadcast"}', ErrorCode.BAD_MESSAGE, "data"),
    ],
)
def test_bad_frames(frame: str, code: ErrorCode, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_client(frame)
    assert info.value.code is code
    assert fragment in info.value.message


def test_room_name_of_64_characters_is_accepted() -> None:
    assert decode_client('{"type":"join","room":"' + "r" * 64 + '","name":"' + "é" * 64 + '"}')


def test_server_messages_round_trip_with_wire_names() -> None:
    joined = Joined(
        id="a",
        room="r",
        peers=[PeerInfo("b", "Bo"), PeerInfo("c", "Cy", identity="user-7")],
        ice_servers=[],
        resume="k",
        grants=["data", "publish"],
    )
    frame = encode(joined)
    assert msgspec.json.decode(frame) == {
        "type": "joined",
        "id": "a",
        "room": "r",
        "peers": [{"id": "b", "name": "Bo"}, {"id": "c", "name": "Cy", "identity": "user-7"}],
        "iceServers": [],
        "resume": "k",
        "grants": ["data", "publish"],
        "mode": "mesh",
        "name": "",
    }
    assert decode_server(frame) == joined
    relayed = encode(SignalFrom(sender="a", data=msgspec.Raw(b'{"x":1}')))
    assert relayed == '{"type":"signal","from":"a","data":{"x":1}}'
    assert encode(BroadcastFrom(sender="a", data=msgspec.Raw(b"[]"))) == (
        '{"type":"broadcast","from":"a","data":[]}'
    )
