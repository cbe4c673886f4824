"""The admin API under /admin/v1/: what an operator sees and does (docs/operations.md).

Every request carries `Authorization: Bearer TOKEN`, a token of the server's
`--auth-secret` with the `admin` grant (`rtcroom token --grant admin --room
'*'`). A token whose room pattern is narrower than `*` acts on the rooms it
matches only, and cannot list them all. Refusals say no more than
`unauthorized` (401: no valid token) or `forbidden` (403: valid, not enough).

    GET  /admin/v1/rooms                               every room and its peers
    GET  /admin/v1/rooms/{room}                        one room (404 if empty)
    POST /admin/v1/rooms/{room}/peers/{peer}/kick      {"reason": "..."} optional
    POST /admin/v1/rooms/{room}/peers/{peer}/mute      {"kind": "audio" | "video"}
    POST /admin/v1/rooms/{room}/close                  {"reason": "..."} optional

With Redis, every action reaches the peer on whichever process holds it.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from .admission import Admission
from .auth import ADMIN, AuthError, Claims
from .broker.interface import Broker, Presence
from .logs import event
from .protocol import Mute, encode

PREFIX: Final = "/admin/v1"
KICKED_BY_ADMIN: Final = "removed by a moderator"
CLOSED_BY_ADMIN: Final = "the room was closed by a moderator"
MAX_REASON: Final = 200
MAX_BODY: Final = 4096

Handler = Callable[[Request, Claims], Awaitable[Response]]


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    reason: str | None = None
    kind: str | None = None


def _error(status: int, message: str, **headers: str) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _iso(when: float) -> str:
    moment = datetime.datetime.fromtimestamp(when, datetime.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def peer_json(presence: Presence) -> dict[str, Any]:
    peer = presence.peer
    return {
        "id": peer.id,
        "name": peer.name,
        "identity": peer.identity,
        "grants": sorted(presence.grants),
        "since": _iso(presence.since),
    }


class AdminApi:
    """The admin API's routes, for one server's tokens and broker."""

    def __init__(self, admission: Admission, broker: Broker) -> None:
        self.admission = admission
        self.auth = admission.auth
        self.broker = broker

    def routes(self) -> list[BaseRoute]:
        guard = self._guard
        return [
            Mount(
                PREFIX,
                routes=[
                    Route("/rooms", guard(self.list_rooms, everywhere=True)),
                    Route("/rooms/{room}", guard(self.show_room)),
                    Route("/rooms/{room}/peers/{peer}/kick", guard(self.kick), methods=["POST"]),
                    Route("/rooms/{room}/peers/{peer}/mute", guard(self.mute), methods=["POST"]),
                    Route("/rooms/{room}/close", guard(self.close), methods=["POST"]),
                ],
            )
        ]

    def _guard(
        self, handler: Handler, *, everywhere: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if self.auth is None:
                # Nothing could authenticate the caller: off, and saying how to turn it on.
                return _error(403, "the admin API needs the server's --auth-secret")
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token.strip():
                    raise AuthError("no bearer token")
                claims = self.auth.check(token.strip(), time.time())
            except AuthError:
                return _error(401, "unauthorized", **{"WWW-Authenticate": 'Bearer realm="rtcroom"'})
            if not self.admission.started:
                return _error(503, "not started")
            room = request.path_params.get("room")
            allowed = claims.room == "*" if everywhere else claims.allows_room(room or "")
            if ADMIN not in claims.grants or not allowed:
                return _error(403, "forbidden")
            return await handler(request, claims)

        return endpoint

    async def list_rooms(self, request: Request, claims: Claims) -> Response:
        roster = await self.broker.roster()
        rooms = [
            {"room": room, "peers": [peer_json(p) for p in peers]}
            for room, peers in sorted(roster.items())
        ]
        return JSONResponse({"rooms": rooms})

    async def show_room(self, request: Request, claims: Claims) -> Response:
        room = request.path_params["room"]
        peers = (await self.broker.roster()).get(room)
        if not peers:
            return _error(404, "no such room")
        return JSONResponse({"room": room, "peers": [peer_json(p) for p in peers]})

    async def kick(self, request: Request, claims: Claims) -> Response:
        body = await _read(request)
        if isinstance(body, Response):
            return body
        room, peer = request.path_params["room"], request.path_params["peer"]
        reason = body.reason or KICKED_BY_ADMIN
        if not await self.broker.kick(room, peer, reason):
            return _error(404, "no such peer")
        event(
            "kick",
            "%s kicked %s from room %s",
            claims.identity,
            peer,
            room,
            room=room,
            peer=peer,
            by=claims.identity,
            reason=reason,
        )
        return JSONResponse({"kicked": peer})

    async def mute(self, request: Request, claims: Claims) -> Response:
        body = await _read(request)
        if isinstance(body, Response):
            return body
        if body.kind not in ("audio", "video"):
            return _error(400, 'kind must be "audio" (the microphone) or "video" (the camera)')
        room, peer = request.path_params["room"], request.path_params["peer"]
        by = claims.name or claims.identity
        frame = encode(Mute(kind=body.kind, by=by))  # type: ignore[arg-type]
        if not await self.broker.relay(room, peer, frame):
            return _error(404, "no such peer")
        event(
            "mute",
            "%s asked %s of room %s to mute its %s",
            claims.identity,
            peer,
            room,
            body.kind,
            room=room,
            peer=peer,
            by=claims.identity,
            kind=body.kind,
        )
        return JSONResponse({"muted": peer, "kind": body.kind})

    async def close(self, request: Request, claims: Claims) -> Response:
        body = await _read(request)
        if isinstance(body, Response):
            return body
        room = request.path_params["room"]
        reason = body.reason or CLOSED_BY_ADMIN
        peers = (await self.broker.list_rooms()).get(room, [])
        kicked = [p.id for p in peers if await self.broker.kick(room, p.id, reason)]
        if not kicked:
            return _error(404, "no such room")
        event(
            "close",
            "%s closed room %s (%d peers)",
            claims.identity,
            room,
            len(kicked),
            room=room,
            by=claims.identity,
            reason=reason,
            peers=len(kicked),
        )
        return JSONResponse({"closed": room, "kicked": kicked})


async def _read(request: Request) -> _Body | Response:
    """The JSON body (optional: an empty body is {}), or the 400 that says what is wrong."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            return _error(413, f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return _Body()
    try:
        body = msgspec.json.decode(raw, type=_Body)
    except msgspec.ValidationError as exc:
        return _error(400, f"bad body: {exc}")
    except msgspec.DecodeError:
        return _error(400, "the body is not JSON")
    if body.reason is not None and not 1 <= len(body.reason) <= MAX_REASON:
        return _error(400, f"reason must be 1 to {MAX_REASON} characters")
    return body
