"""`rtcroom rooms`, `kick`, `mute` and `close`: the admin API (src/rtcroom/admin.py) from a terminal.

Plain HTTP with the standard library: no extra needed. The token comes from
`--token` (RTCROOM_ADMIN_TOKEN), or is minted for a minute from the server's
secret (`--auth-secret`, RTCROOM_AUTH_SECRET...).
"""

from __future__ import annotations

import datetime
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..auth import ADMIN, mint_token

PATH = "/admin/v1"
TIMEOUT = 15.0


class AdminError(Exception):
    """What went wrong, in words for the operator."""


def admin_token(token: str | None, secret: str | None, name: str) -> str:
    """The token to send: the one given, or one minted for a minute from `secret`."""
    if token:
        return token
    if not secret:
        raise AdminError(
            "give an admin token (--token or RTCROOM_ADMIN_TOKEN) or the server's secret "
            "(--auth-secret, --auth-secret-file or RTCROOM_AUTH_SECRET)"
        )
    try:
        return mint_token(secret, room="*", identity=name, name=name, ttl=60, grants=[ADMIN])
    except ValueError as exc:
        raise AdminError(str(exc)) from None


class AdminClient:
    """Calls to the admin API of the server at `url` (its public address)."""

    def __init__(self, url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AdminError(f"{url!r} is not an http:// or https:// address of an rtcroom server")
        self.base = url.rstrip("/") + PATH
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                try:
                    message = json.load(exc).get("error", "")
                except (ValueError, AttributeError):
                    message = ""
            raise AdminError(_explain(exc.code, message)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach {self.base}: {reason}") from None

    def rooms(self) -> list[dict[str, Any]]:
        rooms: list[dict[str, Any]] = self.call("GET", "/rooms")["rooms"]
        return rooms

    def room(self, room: str) -> dict[str, Any]:
        found: dict[str, Any] = self.call("GET", f"/rooms/{_quote(room)}")
        return found

    def peer_id(self, room: str, peer: str) -> str:
        """The id of `peer` in `room`: given as an id, or as a display name that one peer has."""
        peers = self.room(room)["peers"]
        if any(p["id"] == peer for p in peers):
            return peer
        named = [p["id"] for p in peers if p["name"] == peer or p.get("identity") == peer]
        if len(named) == 1:
            return str(named[0])
        listing = ", ".join(f"{p['id']} ({p['name']})" for p in peers)
        if named:
            raise AdminError(f"{len(named)} peers of room {room} are called {peer!r}: {listing}")
        raise AdminError(f"no peer {peer!r} in room {room}: {listing}")

    def kick(self, room: str, peer: str, reason: str | None) -> Any:
        body = {"reason": reason} if reason else {}
        return self.call("POST", f"/rooms/{_quote(room)}/peers/{_quote(peer)}/kick", body)

    def mute(self, room: str, peer: str, kind: str) -> Any:
        return self.call("POST", f"/rooms/{_quote(room)}/peers/{_quote(peer)}/mute", {"kind": kind})

    def close(self, room: str, reason: str | None) -> Any:
        body = {"reason": reason} if reason else {}
        return self.call("POST", f"/rooms/{_quote(room)}/close", body)


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _explain(status: int, message: str) -> str:
    if status == 401:
        return "the server refused the token (401): is it minted with this server's --auth-secret, and unexpired?"
    if status == 403 and message == "forbidden":
        return (
            "the token is not enough (403): it needs the admin grant, and --room '*' to list rooms"
        )
    return f"{message or 'the server refused'} ({status})"


def table(rooms: list[dict[str, Any]], now: datetime.datetime | None = None) -> str:
    """`rtcroom rooms` for a terminal: one line per peer, aligned."""
    if not rooms:
        return "no rooms"
    now = now or datetime.datetime.now(datetime.UTC)
    header = ("ROOM", "PEER", "NAME", "IDENTITY", "GRANTS", "CONNECTED")
    rows = [header]
    for room in rooms:
        for peer in room["peers"]:
            since = datetime.datetime.fromisoformat(peer["since"].replace("Z", "+00:00"))
            rows.append(
                (
                    room["room"],
                    peer["id"],
                    peer["name"],
                    peer.get("identity") or "-",
                    ",".join(peer["grants"]) or "-",
                    _ago(now - since),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    peers = len(rows) - 1
    lines.append(f"{len(rooms)} room{'s' * (len(rooms) != 1)}, {peers} peer{'s' * (peers != 1)}")
    return "\n".join(line.rstrip() for line in lines)


def _ago(delta: datetime.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def run(command: str, client: AdminClient, args: Any) -> int:
    """One admin command; its output on stdout, errors raised as AdminError."""
    if command == "rooms":
        rooms = client.rooms()
        print(json.dumps(rooms, indent=2) if args.json else table(rooms))
        return 0
    if command == "close":
        result = client.close(args.room, args.reason)
        n = len(result["kicked"])
        print(f"closed room {args.room}: {n} peer{'s' * (n != 1)} removed")
        return 0
    peer = client.peer_id(args.room, args.peer)
    if command == "kick":
        client.kick(args.room, peer, args.reason)
        print(f"kicked {peer} from room {args.room}")
    elif command == "mute":
        kind = "video" if args.video else "audio"
        client.mute(args.room, peer, kind)
        what = "camera" if args.video else "microphone"
        print(f"asked {peer} of room {args.room} to turn its {what} off")
    return 0


def main(command: str, args: Any, token: str | None, secret: str | None) -> int:
    try:
        client = AdminClient(args.url, admin_token(token, secret, args.as_name))
        return run(command, client, args)
    except AdminError as exc:
        print(f"rtcroom {command}: {exc}", file=sys.stderr)
        return 1
