"""TURN credentials and the coturn configuration, without a network."""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac

import pytest

from rtcroom.config import Config, ConfigError, add_serve_arguments, from_args
from rtcroom.turn import IceConfig, coturn_config, mint


def test_mint_follows_the_turn_rest_api_scheme() -> None:
    username, credential = mint("secret-of-16-chars", "peer1", ttl=3600, now=1_700_000_000)
    assert username == "1700003600:peer1"
    expected = hmac.new(b"secret-of-16-chars", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


def test_ice_config_without_secret_hands_urls_as_they_are() -> None:
    ice = IceConfig(stun_urls=["stun:s:3478"], turn_urls=["turn:t:3478"], other_urls=["stun:o"])
    servers = ice.servers_for("p")
    assert [s.urls for s in servers] == ["stun:o", "stun:s:3478", ["turn:t:3478"]]
    assert servers[-1].username is None
    assert ice.renewal_period is None


def parse(*argv: str, env: dict[str, str] | None = None) -> Config:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    return from_args(parser.parse_args(argv), env or {})


def test_secret_from_flag_environment_or_file(tmp_path: object) -> None:
    secret = "x" * 24
    assert parse("--turn-url", "turn:t", "--turn-secret", secret).turn_secret == secret
    config = parse(env={"RTCROOM_TURN_URLS": "turn:a turns:b", "RTCROOM_TURN_SECRET": secret})
    assert config.turn_urls == ("turn:a", "turns:b")
    assert config.turn_secret == secret
    path = tmp_path / "secret"  # type: ignore[operator]
    path.write_text(secret + "\n")
    assert parse("--turn-url", "turn:t", "--turn-secret-file", str(path)).turn_secret == secret
    # The secret never shows in the configuration's repr (logs, tracebacks).
    assert secret not in repr(config)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--turn-url", "stun:x"], "--turn-url"),
        (["--stun", "turn:x"], "--stun"),
        (["--turn-url", "turn:x", "--turn-secret", "short"], "16 characters"),
        (["--turn-secret", "y" * 20], "needs at least one --turn-url"),
        (["--turn-url", "turn:x", "--turn-ttl", "5"], "--turn-ttl"),
        (["--turn-url", "turn:x", "--turn-secret-file", "/nonexistent/secret"], "cannot read"),
    ],
)
def test_bad_turn_settings_are_refused(argv: list[str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse(*argv)


def test_coturn_config_is_hardened_and_commented() -> None:
    text = coturn_config(
        secret="z" * 20,
        realm="call.example.org",
        listening_ip="203.0.113.5",
        relay_ip="203.0.113.5",
    )
    settings = [line for line in text.splitlines() if line and not line.startswith("#")]
    for required in (
        "use-auth-secret",
        f"static-auth-secret={'z' * 20}",
        "realm=call.example.org",
        "no-multicast-peers",
        "denied-peer-ip=127.0.0.0-127.255.255.255",
        "denied-peer-ip=10.0.0.0-10.255.255.255",
        "denied-peer-ip=169.254.0.0-169.254.255.255",
        "denied-peer-ip=::1",
        "min-port=49160",
        "max-port=49200",
    ):
        assert required in settings, required
    assert any(line.startswith("total-quota=") for line in settings)
    assert any(line.startswith("user-quota=") for line in settings)
    # Every setting has a comment line right above it.
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[index - 1].startswith("#"), line
