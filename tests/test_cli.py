"""The `rtcroom` command: each command's help shows its own options with their units, and
mistakes and absent services are said in one line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import RunningServer, free_port

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


# What a user sees when `rtcroom serve` cannot start: one line that names the
# thing and what to do, never a traceback or the whole usage.


def rtcroom(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtcroom", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_a_bad_flag_value_is_one_line() -> None:
    result = rtcroom("serve", "--port", "abc")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "rtcroom serve: argument --port: invalid int value: 'abc' "
        "(rtcroom serve --help lists the options)"
    ]


def test_an_unreachable_broker_is_one_line_and_exit_1() -> None:
    port, nowhere = free_port(), free_port()
    result = rtcroom("serve", "--port", str(port), "--broker", f"redis://127.0.0.1:{nowhere}/0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [error] = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert f"cannot reach the broker (Redis) at redis://127.0.0.1:{nowhere}/0" in error
    assert "Connection refused" in error and "start Redis there or correct --broker" in error
    assert len(result.stderr.splitlines()) <= 4, result.stderr


def test_a_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = rtcroom("serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"rtcroom serve: cannot listen on 127.0.0.1:{port}: another program listens there: "
        "stop it, or choose another --port"
    ]


def test_an_unreadable_secret_file_is_one_line(tmp_path: Path) -> None:
    result = rtcroom("serve", "--auth-secret-file", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"rtcroom: --auth-secret-file: cannot read {tmp_path / 'absent'}: No such file or directory"
    ]


def test_a_plain_stop_is_not_called_a_restart(start_server: Callable[..., RunningServer]) -> None:
    server = start_server()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(30) == 0
    log = server.log.read_text()
    assert f"ready on http://127.0.0.1:{server.port}" in log
    assert "SIGTERM received: draining 0 connections" in log
    assert "uvicorn.error" not in log and " uvicorn INFO " in log


# Command-line peers on a server that requires tokens (the README's token flow).

SECRET = "a-long-enough-secret-for-the-cli-tests"


def peers_in(server: RunningServer, room: str) -> list[dict[str, object]]:
    """The room's peers, through the admin API (`rtcroom rooms --json`)."""
    listing = rtcroom("rooms", server.url, "--json", env={"RTCROOM_AUTH_SECRET": SECRET})
    assert listing.returncode == 0, listing.stderr
    return [p for r in json.loads(listing.stdout) if r["room"] == room for p in r["peers"]]


def wait_for_peer(
    server: RunningServer, room: str, name: str, bot: subprocess.Popen[str]
) -> dict[str, object]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert bot.poll() is None, bot.communicate()[0]
        for peer in peers_in(server, room):
            if peer["name"] == name:
                return peer
        time.sleep(0.2)
    raise AssertionError(f"{name} never joined {room}")


def test_peers_mint_their_token_from_the_secret_or_take_one(
    start_server: Callable[..., RunningServer],
) -> None:
    server = start_server(env={"RTCROOM_AUTH_SECRET": SECRET})
    without = {k: v for k, v in os.environ.items() if not k.startswith("RTCROOM_")}

    def bot(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "rtcroom", "bot", "play", server.url, "standup", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**without, **env},
        )

    refused = bot("--pattern", env={})
    output, _ = refused.communicate(timeout=60)
    assert refused.returncode == 1
    assert "this server needs an access token" in output

    # The secret in the environment, as the README's `export` sets it.
    minted = bot("--pattern", env={"RTCROOM_AUTH_SECRET": SECRET})
    try:
        peer = wait_for_peer(server, "standup", "player", minted)
        assert peer["identity"] == "player"
        assert sorted(peer["grants"]) == ["data", "publish", "subscribe"]  # type: ignore[arg-type]
    finally:
        minted.terminate()
        minted.communicate(timeout=30)

    token = rtcroom(
        "token", "--room", "standup", "--identity", "cam-1", "--name", "Camera",
        "--grant", "publish", env={"RTCROOM_AUTH_SECRET": SECRET},
    ).stdout.strip()  # fmt: skip
    for args, env in (
        (("--token", token), {}),
        ((), {"RTCROOM_TOKEN": token}),
    ):
        given = bot("--pattern", "--name", "ignored", *args, env=env)
        try:
            peer = wait_for_peer(server, "standup", "Camera", given)
            assert peer["identity"] == "cam-1" and peer["grants"] == ["publish"]
        finally:
            given.terminate()
            given.communicate(timeout=30)


def test_play_refuses_a_file_without_media(server: RunningServer, tmp_path: Path) -> None:
    # FFmpeg reads subtitles, but there is nothing in them to play.
    notes = tmp_path / "notes.srt"
    notes.write_text("1\n00:00:00,000 --> 00:00:02,000\nHello\n\n")
    result = rtcroom("bot", "play", server.url, "standup", str(notes))
    assert result.returncode == 2
    assert result.stderr == f"rtcroom bot play: {notes} has no audio or video to play\n"
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    result = rtcroom("bot", "play", server.url, "standup", str(text))
    assert result.returncode == 2
    assert result.stderr.startswith(f"rtcroom bot play: cannot read {text}: ")
