"""Reading media directions from SDP, as grant checks do."""

from __future__ import annotations

from rtcroom.sdp import decode_signal_data, media_intent

HEADER = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n"


def section(kind: str, direction: str | None, port: int = 9, extra: str = "") -> str:
    proto = "UDP/DTLS/SCTP webrtc-datachannel" if kind == "application" else "UDP/TLS/RTP/SAVPF 96"
    text = f"m={kind} {port} {proto}\r\nc=IN IP4 0.0.0.0\r\n"
    if direction:
        text += f"a={direction}\r\n"
    return text + extra


def test_directions_per_kind() -> None:
    intent = media_intent(HEADER + section("audio", "sendonly") + section("video", "recvonly"))
    assert intent.sends == {"audio"}
    assert intent.receives == {"video"}
    assert not intent.data


def test_default_is_sendrecv_and_session_level_applies() -> None:
    assert media_intent(HEADER + section("video", None)).sends == {"video"}
    inactive = media_intent(HEADER + "a=inactive\r\n" + section("video", None))
    assert inactive.sends == inactive.receives == set()


def test_rejected_sections_do_not_count_unless_bundle_only() -> None:
    rejected = media_intent(HEADER + section("video", "sendrecv", port=0))
    assert rejected.sends == set()
    bundled = media_intent(HEADER + section("video", "sendrecv", port=0, extra="a=bundle-only\r\n"))
    assert bundled.sends == {"video"}


def test_data_channels() -> None:
    assert media_intent(HEADER + section("application", None)).data
    assert not media_intent(HEADER + section("application", None, port=0)).data


def test_signal_data_shapes() -> None:
    described = decode_signal_data(b'{"description":{"type":"offer","sdp":"v=0"},"streams":{}}')
    assert described is not None and described.description is not None
    assert described.description.type == "offer"
    assert decode_signal_data(b'{"candidate":null}') is not None
    # Anything else is not the convention: a peer with limited grants may not send it.
    assert decode_signal_data(b'{"sdp":"v=0"}') is None
    assert decode_signal_data(b"[1]") is None
