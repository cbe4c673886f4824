"""A FastAPI site with its own login, and rtcroom mounted at /rtc.

    uvicorn examples.fastapi_app:app

`GET /login?user=NAME&next=PATH` signs NAME into a session cookie and
redirects to PATH; `/rtc/r/ROOM` is the call page, `/rtc/ws` the signaling
endpoint. The on-join hook takes each peer's identity and display name from
that cookie and refuses joins without one. rtcroom reads its settings from
the RTCROOM_* variables, as `rtcroom serve` does (RTCROOM_BROKER=redis://...
shares rooms between processes); APP_SECRET signs the cookies.
"""

from __future__ import annotations

import os
import secrets

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from itsdangerous import BadSignature, URLSafeSerializer

import rtcroom

COOKIE = "session"
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


@app.get("/login")
async def login(user: str, next: str = "/rtc/") -> RedirectResponse:
    if not next.startswith("/") or next.startswith("//"):
        next = "/rtc/"  # never redirect off this site
    response = RedirectResponse(next, status_code=303)
    response.set_cookie(COOKIE, signer.dumps(user[:64]), httponly=True, samesite="lax")
    return response
