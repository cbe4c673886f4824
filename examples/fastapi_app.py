"""A FastAPI site with its own login, and rtcroom mounted at /rtc.

    pip install '.[examples]'          # in rtcroom's checkout: FastAPI, itsdangerous
    uvicorn examples.fastapi_app:app   # then open http://127.0.0.1:8000

`/` asks for a name and a room. `GET /login?user=NAME&room=ROOM` (or
`&next=PATH`) signs NAME into a session cookie and redirects to the room's
call page (or PATH); `/rtc/r/ROOM` is the call page, `/rtc/ws` the signaling
endpoint. The on-join hook takes each peer's identity and display name from
that cookie and refuses joins without one. rtcroom reads its settings from
the RTCROOM_* variables, as `rtcroom serve` does (RTCROOM_BROKER=redis://...
shares rooms between processes); APP_SECRET signs the cookies.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from itsdangerous import BadSignature, URLSafeSerializer

import rtcroom

COOKIE = "session"

# The site's front page: a name and a room, then the call (a real site has
# its own login there).
INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rtcroom in a web app</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto">
<h1>Log in and call</h1>
<form action="login" method="get">
<p><label>Your name <input name="user" required maxlength="64" autocomplete="name"></label></p>
<p><label>Room <input name="room" required pattern="[A-Za-z0-9_-]{1,64}" value="team"></label></p>
<p><button type="submit">Join the call</button></p>
</form>
</body></html>
"""
signer = URLSafeSerializer(os.environ.get("APP_SECRET") or secrets.token_urlsafe(32), "login")

rtc = rtcroom.RoomServer(rtcroom.from_env())


@rtc.on_join
async def logged_in_only(request: rtcroom.JoinRequest) -> rtcroom.Admit:
    try:
        user = signer.loads(request.cookies.get(COOKIE, ""))
    except BadSignature:
        raise rtcroom.Unauthorized("log in first") from None
    return rtcroom.Admit(identity=user, name=user)


app = FastAPI(lifespan=rtc.lifespan)
app.mount("/rtc", rtc)


@app.get("/")
async def index() -> HTMLResponse:
    return HTMLResponse(INDEX)


@app.get("/login")
async def login(user: str, next: str = "/rtc/", room: str = "") -> RedirectResponse:
    if room:
        next = f"/rtc/r/{quote(room)}?name={quote(user[:64])}"  # the page asks no name
    if not next.startswith("/") or next.startswith("//"):
        next = "/rtc/"  # never redirect off this site
    response = RedirectResponse(next, status_code=303)
    response.set_cookie(COOKIE, signer.dumps(user[:64]), httponly=True, samesite="lax")
    return response
