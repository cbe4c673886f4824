"""The client library's start bitrate in the descriptions it sends
(withStartBitrate in src/rtcroom/web/rtcroom.js), in Node, on Chromium's SDP."""

from __future__ import annotations

import json
from typing import Any

from node import run_module, web_module

# A Chromium offer, shortened: audio, video with two video sections (camera
# and screen) whose formats have an fmtp line or not, and the data channel.
OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2 3",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
        "a=mid:0",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 98 123 124",
        "a=mid:1",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=rtpmap:98 VP9/90000",
        "a=fmtp:98 profile-id=0;x-google-start-bitrate=800",
        "a=rtpmap:123 red/90000",
        "a=rtpmap:124 ulpfec/90000",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=mid:2",
        "a=rtpmap:96 VP8/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=mid:3",
        "a=sctp-port:5000",
        "",
    ]
)

SCRIPT = """
import { RoomClient, withStartBitrate } from %s;
const offer = %s;
const once = withStartBitrate(offer, 1500);
const refused = [];
for (const startBitrate of [-1, "1500", NaN, Infinity]) {
  try {
    new RoomClient({room: "r", name: "n", url: "ws://127.0.0.1:9/ws", startBitrate});
  } catch (err) {
    refused.push(`${err.name}: ${err.message}`);
  }
}
console.log(JSON.stringify({once, twice: withStartBitrate(once, 900), refused}));
"""


def start_bitrate(offer: str) -> dict[str, Any]:
    result: dict[str, Any] = run_module(SCRIPT % (web_module("rtcroom.js"), json.dumps(offer)))
    return result


def test_each_video_format_asks_for_the_start_bitrate() -> None:
    munged = start_bitrate(OFFER)["once"]
    added = munged.split("\r\n")
    # VP8 had no format parameters: a line of its own, right after its rtpmap,
    # in both video sections.
    assert added.count("a=fmtp:96 x-google-start-bitrate=1500") == 2
    for at, line in enumerate(added):
        if line == "a=fmtp:96 x-google-start-bitrate=1500":
            assert added[at - 1] == "a=rtpmap:96 VP8/90000"
    # H264's parameters gain it; VP9 keeps the value it had.
    assert (
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;"
        "profile-level-id=42001f;x-google-start-bitrate=1500"
    ) in added
    assert "a=fmtp:98 profile-id=0;x-google-start-bitrate=800" in added
    # Nothing else changed: not retransmission, redundancy or FEC, not audio,
    # not the data channel; the lines keep their order and CRLF endings.
    removed = [line for line in added if "x-google-start-bitrate=1500" not in line]
    original = [line for line in OFFER.split("\r\n") if not line.startswith("a=fmtp:102")]
    assert removed == original
    assert munged.endswith("\r\n")


def test_a_description_that_asks_already_is_left_alone() -> None:
    result = start_bitrate(OFFER)
    assert result["twice"] == result["once"]


def test_a_start_bitrate_that_is_not_kbps_is_refused() -> None:
    assert start_bitrate(OFFER)["refused"] == [
        "TypeError: startBitrate is a number of kbps, 0 or more: not number -1",
        "TypeError: startBitrate is a number of kbps, 0 or more: not string 1500",
        "TypeError: startBitrate is a number of kbps, 0 or more: not number NaN",
        "TypeError: startBitrate is a number of kbps, 0 or more: not number Infinity",
    ]
