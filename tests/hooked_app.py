"""A host app whose hooks record what they see, for tests/test_embedding.py.

    HOOK_LOG=events.jsonl python -m uvicorn hooked_app:app --app-dir tests --port PORT

rtcroom (settings from RTCROOM_*) is mounted at /rtc. Every hook call
appends one JSON line to HOOK_LOG, with this process's id. The join rules:
room "closed" is refused (`forbidden`); room "broken" makes the hook raise;
room "slow" makes it overrun its 1 s limit; a name "as:X" is shown as X with
identity "user-X"; the name "viewer" may only subscribe. Broadcasts holding
"badword" are refused; "explode" makes the broadcast hook raise.
/actions/... are the server-side actions, for the tests to call over HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

import rtcroom

LOG = os.environ["HOOK_LOG"]

rtc = rtcroom.RoomServer(rtcroom.from_env(), hook_timeout=1.0)


def record(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n"
    # One write per line, appended: lines of several processes never mix.
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@rtc.on_join
async def join(request: rtcroom.JoinRequest) -> rtcroom.Admit | None:
    record(
        "join",
        room=request.room,
        name=request.name,
        resume=request.resume,
        cookie=request.cookies.get("site"),
        agent=request.headers.get("user-agent"),
    )
    if request.room == "closed":
        raise rtcroom.Forbidden("this room is closed today")
    if request.room == "broken":
        raise RuntimeError("the site's database is down")
    if request.room == "slow":
        await asyncio.sleep(30)
    if request.name.startswith("as:"):
        name = request.name[3:]
        return rtcroom.Admit(name=name, identity=f"user-{name}")
    if request.name == "viewer":
        return rtcroom.Admit(grants={"subscribe"})
    return None


@rtc.on_leave
async def leave(departure: rtcroom.Departure) -> None:
    record("leave", room=departure.room, peer=departure.peer.id, reason=departure.reason)


@rtc.on_room_started
async def started(room: str) -> None:
    record("room-started", room=room)


@rtc.on_room_finished
async def finished(room: str) -> None:
    record("room-finished", room=room)


@rtc.on_broadcast
async def broadcast(message: rtcroom.Message) -> None:
    if message.data == "explode":
        raise ValueError("the moderation service is down")
    if "badword" in json.dumps(message.data):
        raise rtcroom.Forbidden("watch your language")
    record("broadcast", room=message.room, peer=message.peer.id, data=message.data)


async def send(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(await rtc.send(body["room"], body["peer"], body["data"]))


async def broadcast_action(request: Request) -> JSONResponse:
    body = await request.json()
    await rtc.broadcast(body["room"], body["data"])
    return JSONResponse(True)


async def kick(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(await rtc.kick(body["room"], body["peer"], body["reason"]))


async def rooms(request: Request) -> JSONResponse:
    listed = await rtc.rooms()
    return JSONResponse(
        {room: [{"id": p.id, "name": p.name} for p in peers] for room, peers in listed.items()}
    )


app = Starlette(
    routes=[
        Route("/actions/send", send, methods=["POST"]),
        Route("/actions/broadcast", broadcast_action, methods=["POST"]),
        Route("/actions/kick", kick, methods=["POST"]),
        Route("/actions/rooms", rooms),
        Mount("/rtc", rtc),
    ],
    lifespan=rtc.lifespan,
)
