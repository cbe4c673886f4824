"""Just enough SDP (RFC 8866) to tell what a description asks to send and receive.

Grants are enforced on what a peer signals (see docs/security.md): a peer
without `publish` may not describe audio or video that it sends, one
without `subscribe` may not describe audio or video that it receives, and
one without `data` may not offer a data channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec

_DIRECTIONS = frozenset({"sendrecv", "sendonly", "recvonly", "inactive"})


@dataclass(slots=True)
class MediaIntent:
    """The kinds of media a description sends and receives, when active."""

    sends: set[str] = field(default_factory=set)
    receives: set[str] = field(default_factory=set)
    data: bool = False


def media_intent(sdp: str) -> MediaIntent:
    """Which media sections of `sdp` are active, and in which direction.

    A section's direction is its own a=sendrecv/sendonly/recvonly/inactive,
    else the session-level one, else sendrecv (RFC 8866 section 6.7). A
    section with port 0 is rejected (RFC 8843 section 7) unless it is
    bundle-only, in which case it rides on the bundle's transport.
    """
    intent = MediaIntent()
    session_direction = "sendrecv"
    sections: list[tuple[str, bool, str | None, bool]] = []
    kind: str | None = None
    port_zero = False
    direction: str | None = None
    bundle_only = False

    def close_section() -> None:
        if kind is not None:
            sections.append((kind, port_zero, direction, bundle_only))

    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            close_section()
            parts = line[2:].split()
            kind = parts[0] if parts else ""
            port_zero = len(parts) > 1 and parts[1].split("/")[0] == "0"
            direction = None
            bundle_only = False
        elif line.startswith("a="):
            attribute = line[2:]
            if attribute in _DIRECTIONS:
                if kind is None:
                    session_direction = attribute
                else:
                    direction = attribute
            elif attribute == "bundle-only" and kind is not None:
                bundle_only = True
    close_section()

    for section_kind, zero, section_direction, only in sections:
        if zero and not only:
            continue
        if section_kind == "application":
            intent.data = True
            continue
        if section_kind not in ("audio", "video"):
            continue
        actual = section_direction or session_direction
        if actual in ("sendrecv", "sendonly"):
            intent.sends.add(section_kind)
        if actual in ("sendrecv", "recvonly"):
            intent.receives.add(section_kind)
    return intent


class _Description(msgspec.Struct):
    type: str
    sdp: str = ""


class SignalData(msgspec.Struct, forbid_unknown_fields=True):
    """The conventional shape of a signal's data (docs/protocol.md)."""

    description: _Description | None = None
    candidate: object = None
    # Labels of the streams a description carries ({stream id: label}).
    streams: dict[str, str] | None = None


_signal_decoder = msgspec.json.Decoder(SignalData)


def decode_signal_data(data: bytes) -> SignalData | None:
    """`data` as a description or candidate, or None if it has another shape."""
    try:
        value = _signal_decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return value
