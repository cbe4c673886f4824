"""Access tokens: who may join which room, and what they may do there.

A token is an HS256 JSON Web Token (RFC 7519) signed with the server's
`--auth-secret`. Its claims:

- `sub`: the identity (a user id of your application), shown to the others
- `name`: the display name (overrides the one in `join`)
- `room`: the room, or a pattern where `*` matches any run of characters
- `exp`: expiry (Unix time); `iat`: when it was minted
- `grants`: what the peer may do, from GRANTS; least privilege by default
- `aud`: "rtcroom", so tokens minted for another service with the same
  secret are refused

Checking a token is pure computation with an injected clock: sans-I/O, like
the rest of the core.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

PUBLISH: Final = "publish"  # send audio and video
SUBSCRIBE: Final = "subscribe"  # receive audio and video
DATA: Final = "data"  # broadcast through the server, open data channels
ADMIN: Final = "admin"  # reserved for moderation messages of a later protocol version
GRANTS: Final = (PUBLISH, SUBSCRIBE, DATA, ADMIN)
ALL_GRANTS: Final = frozenset(GRANTS)
# What a token grants when the minter names nothing: watch, and nothing else.
DEFAULT_GRANTS: Final = frozenset({SUBSCRIBE})

AUDIENCE: Final = "rtcroom"
ALGORITHM: Final = "HS256"
MIN_SECRET_LENGTH: Final = 32
ROOM_PATTERN: Final = re.compile(r"^[A-Za-z0-9_*-]{1,64}$")


class AuthError(Exception):
    """A token was refused. The message says why, never what the token holds."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a valid token says about its holder."""

    identity: str
    name: str | None
    room: str
    expires: float
    grants: frozenset[str]

    def allows_room(self, room: str) -> bool:
        return fnmatch.fnmatchcase(room, self.room)


def check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"the auth secret needs at least {MIN_SECRET_LENGTH} bytes "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def mint_token(
    secret: str,
    *,
    room: str,
    identity: str,
    name: str | None = None,
    ttl: float = 3600,
    grants: Iterable[str] = DEFAULT_GRANTS,
    now: float | None = None,
) -> str:
    """A token for `identity` to join `room` (or rooms matching it) for `ttl` seconds."""
    check_secret(secret)
    if not ROOM_PATTERN.match(room):
        raise ValueError("room must match [A-Za-z0-9_-]{1,64}, with * as a wildcard")
    if not identity or len(identity) > 256:
        raise ValueError("identity must be 1 to 256 characters")
    if name is not None and not 1 <= len(name) <= 64:
        raise ValueError("name must be 1 to 64 characters")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    granted = sorted(set(grants))
    unknown = set(granted) - ALL_GRANTS
    if unknown:
        raise ValueError(f"unknown grants {sorted(unknown)}: choose from {', '.join(GRANTS)}")
    issued = time.time() if now is None else now
    claims: dict[str, object] = {
        "aud": AUDIENCE,
        "sub": identity,
        "room": room,
        "iat": int(issued),
        "exp": int(issued + ttl),
        "grants": granted,
    }
    if name is not None:
        claims["name"] = name
    import jwt  # here: PyJWT loads cryptography, which most commands never need

    return jwt.encode(claims, secret, algorithm=ALGORITHM)


class Authenticator:
    """Checks the tokens of one server (one secret)."""

    def __init__(self, secret: str, *, leeway: float = 5.0) -> None:
        check_secret(secret)
        self._secret = secret
        self.leeway = leeway

    def __repr__(self) -> str:
        return "Authenticator(secret=...)"

    def verify(self, token: str | None, room: str, now: float | None = None) -> Claims:
        """The claims of `token` if it is valid for `room` now; AuthError otherwise."""
        claims = self.check(token, now)
        if not claims.allows_room(room):
            raise AuthError(f"token is not valid for room {room!r}")
        return claims

    def check(self, token: str | None, now: float | None = None) -> Claims:
        """The claims of `token` if it is valid now, for whichever rooms it names."""
        if token is None:
            raise AuthError("this server needs an access token: join with a token")
        import jwt  # loaded once (see mint_token)

        try:
            # Only HS256 is accepted: "none" and every other algorithm are
            # refused before the signature is even looked at.
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                # Time claims are checked below, against the injected clock.
                options={
                    "require": ["exp", "sub", "room"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError:
            raise AuthError("token was not minted for rtcroom") from None
        except jwt.InvalidSignatureError:
            raise AuthError("token signature is not valid") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            raise AuthError("token is malformed or signed in an unsupported way") from None
        now = time.time() if now is None else now
        expires = payload["exp"]
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise AuthError("token expiry is not a number")
        if now > expires + self.leeway:
            raise AuthError("token has expired")
        identity, pattern = payload["sub"], payload["room"]
        name = payload.get("name")
        grants = payload.get("grants", [])
        if not isinstance(identity, str) or not identity or len(identity) > 256:
            raise AuthError("token identity is not a string of 1 to 256 characters")
        if not isinstance(pattern, str) or not ROOM_PATTERN.match(pattern):
            raise AuthError("token room is not a room name or pattern")
        if name is not None and (not isinstance(name, str) or not 1 <= len(name) <= 64):
            raise AuthError("token name is not a string of 1 to 64 characters")
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            raise AuthError("token grants are not a list of strings")
        return Claims(
            identity=identity,
            name=name,
            room=pattern,
            expires=float(expires),
            # Grants this version does not know are ignored, not refused.
            grants=frozenset(grants) & ALL_GRANTS,
        )
