"""Access tokens: minting, checking, and what a refused token reveals (nothing)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from rtcroom.auth import ALL_GRANTS, DEFAULT_GRANTS, Authenticator, AuthError, mint_token

SECRET = "s" * 40
NOW = 1_800_000_000.0


def verify(token: str | None, room: str = "team", now: float = NOW) -> object:
    return Authenticator(SECRET).verify(token, room, now)


def test_minted_token_round_trips_with_least_privilege_by_default() -> None:
    token = mint_token(SECRET, room="team", identity="user-1", name="Ada", now=NOW)
    claims = Authenticator(SECRET).verify(token, "team", NOW + 10)
    assert claims.identity == "user-1"
    assert claims.name == "Ada"
    assert claims.grants == DEFAULT_GRANTS == {"subscribe"}
    assert claims.expires == NOW + 3600


def test_room_patterns_match_whole_names_only() -> None:
    token = mint_token(SECRET, room="team-*", identity="u", grants=ALL_GRANTS, now=NOW)
    auth = Authenticator(SECRET)
    assert auth.verify(token, "team-red", NOW).grants == ALL_GRANTS
    with pytest.raises(AuthError, match="not valid for room 'other'"):
        auth.verify(token, "other", NOW)
    with pytest.raises(AuthError):
        auth.verify(token, "xteam-red", NOW)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: None, "needs an access token"),
        (lambda: mint_token(SECRET, room="team", identity="u", ttl=60, now=NOW - 120), "expired"),
        (lambda: mint_token("k" * 40, room="team", identity="u", now=NOW), "signature"),
        (lambda: mint_token(SECRET, room="elsewhere", identity="u", now=NOW), "not valid for room"),
        (lambda: "not.a.token", "malformed"),
        (
            lambda: jwt.encode({"sub": "u", "room": "team", "exp": NOW + 60}, SECRET),
            "lacks the .aud. claim",
        ),
        (
            lambda: jwt.encode({"aud": "rtcroom", "room": "team", "exp": NOW + 60}, SECRET),
            "lacks the 'sub' claim",
        ),
        (
            lambda: jwt.encode(
                {"aud": "rtcroom", "sub": "u", "room": "team", "exp": NOW + 60},
                SECRET * 2,
                algorithm="HS512",
            ),
            "unsupported",
        ),
    ],
    ids=["missing", "expired", "wrong-key", "wrong-room", "garbage", "no-aud", "no-sub", "hs512"],
)
def test_bad_tokens_are_refused_with_a_reason(make: object, reason: str) -> None:
    with pytest.raises(AuthError, match=reason) as caught:
        verify(make())  # type: ignore[operator]
    # The reason never quotes the token or the secret.
    assert SECRET not in str(caught.value)


def _unsigned(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def test_alg_none_is_refused() -> None:
    forged = _unsigned(
        {"aud": "rtcroom", "sub": "u", "room": "*", "exp": NOW + 60, "grants": list(ALL_GRANTS)}
    )
    with pytest.raises(AuthError, match="unsupported"):
        verify(forged)


def test_tampered_grants_break_the_signature() -> None:
    token = mint_token(SECRET, room="team", identity="u", now=NOW)
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["grants"] = sorted(ALL_GRANTS)
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(AuthError, match="signature"):
        verify(f"{header}.{tampered}.{signature}")


def test_unknown_grants_are_ignored_and_minting_validates() -> None:
    token = jwt.encode(
        {"aud": "rtcroom", "sub": "u", "room": "team", "exp": NOW + 60, "grants": ["fly", "data"]},
        SECRET,
    )
    assert Authenticator(SECRET).verify(token, "team", NOW).grants == {"data"}
    with pytest.raises(ValueError, match="unknown grants"):
        mint_token(SECRET, room="team", identity="u", grants=["fly"])
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint_token("short", room="team", identity="u")
    with pytest.raises(ValueError, match="room must match"):
        mint_token(SECRET, room="bad room", identity="u")
    assert "s" * 40 not in repr(Authenticator(SECRET))
