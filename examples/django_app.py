"""A Django site with its own login, and rtcroom mounted at /rtc, on one ASGI server.

    pip install '.[examples]'          # in rtcroom's checkout: Django
    uvicorn examples.django_app:app    # then open http://127.0.0.1:8000

The same rule as examples/fastapi_app.py: `/` asks for a name and a room;
`GET /login?user=NAME&room=ROOM` (or `&next=PATH`) signs NAME into a cookie
(django.core.signing) and redirects to the room's call page (or PATH); the
on-join hook takes identity and display name from it and refuses joins
without it. Django cannot mount an ASGI app, so RoomServer.mount() puts
rtcroom at /rtc in front of Django's ASGI handler and runs rtcroom's
start-up and shutdown. One file for the example; a real site keeps its
settings and URLs where Django projects keep them.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import quote

import django
from django.conf import settings

settings.configure(
    SECRET_KEY=os.environ.get("APP_SECRET") or secrets.token_urlsafe(32),
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
)
django.setup()

from django.core import signing  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402

import rtcroom  # noqa: E402

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


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(INDEX)


def login(request: HttpRequest) -> HttpResponseRedirect:
    user = request.GET["user"][:64]
    target = request.GET.get("next", "/rtc/")
    if request.GET.get("room"):
        target = f"/rtc/r/{quote(request.GET['room'])}?name={quote(user)}"  # no name asked
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        target = "/rtc/"  # never redirect off this site
    response = HttpResponseRedirect(target)
    response.set_cookie(COOKIE, signing.dumps(user, salt="login"), httponly=True, samesite="Lax")
    return response


urlpatterns = [path("", index), path("login", login)]

rtc = rtcroom.RoomServer(rtcroom.from_env())


@rtc.on_join
async def logged_in_only(request: rtcroom.JoinRequest) -> rtcroom.Admit:
    try:
        user = signing.loads(request.cookies.get(COOKIE, ""), salt="login")
    except signing.BadSignature:
        raise rtcroom.Unauthorized("log in first") from None
    return rtcroom.Admit(identity=user, name=user)


app = rtc.mount(get_asgi_application(), prefix="/rtc")
