"""The `rtcroom` command's help: each command shows its own options, with their units."""

from __future__ import annotations

import re

from rtcroom.cli import build_parser


def help_of(*command: str) -> str:
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        subparsers = action.choices  # type: ignore[attr-defined]
        return str(subparsers[command[0]].format_help())
    raise AssertionError("no subcommands")


def test_turn_config_shows_only_what_it_uses() -> None:
    text = help_of("turn-config")
    for flag in ("--turn-url", "--turn-secret", "--turn-ttl SECONDS", "--realm", "--min-port PORT"):
        assert flag in text, flag
    for flag in ("--max-peers", "--workers", "--metrics-port", "--rate", "--auth-secret", "--sfu"):
        assert flag not in text, flag


def test_serve_flags_name_their_units() -> None:
    text = help_of("serve")
    assert re.search(r"--rate N\s+messages per second", text)
    assert re.search(r"--joins-per-minute N\s", text)
    assert re.search(r"--join-timeout SECONDS\s", text)
    assert re.search(r"--metrics-port PORT\s", text)
    assert re.search(r"--log-format \{text,json\}", text)
