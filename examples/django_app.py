"""A Django site with its own login, and rtcroom mounted at /rtc, on one ASGI server.

    uvicorn examples.django_app:app

The same rule as examples/fastapi_app.py: `GET /login?user=NAME&next=PATH`
signs NAME into a cookie (django.core.signing) and redirects to PATH; the
on-join hook takes identity and display name from it and refuses joins
without it. Django cannot mount an ASGI app, so RoomServer.mount() puts
rtcroom at /rtc in front of Django's ASGI handler and runs rtcroom's
start-up and shutdown. One file for the example; a real site keeps its
settings and URLs where Django projects keep them.
"""

from __future__ import annotations

import os
import secrets

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
from django.http import HttpRequest, HttpResponseRedirect  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402

import rtcroom  # noqa: E402

COOKIE = "session"


def login(request: HttpRequest) -> HttpResponseRedirect:
    user = request.GET["user"][:64]
    target = request.GET.get("next", "/rtc/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts=None):
        target = "/rtc/"  # never redirect off this site
    response = HttpResponseRedirect(target)
    response.set_cookie(COOKIE, signing.dumps(user, salt="login"), httponly=True, samesite="Lax")
    return response


urlpatterns = [path("login", login)]

rtc = rtcroom.RoomServer(rtcroom.from_env())


@rtc.on_join
async def logged_in_only(request: rtcroom.JoinRequest) -> rtcroom.Admit:
    try:
        user = signing.loads(request.cookies.get(COOKIE, ""), salt="login")
    except signing.BadSignature:
        raise rtcroom.Unauthorized("log in first") from None
    return rtcroom.Admit(identity=user, name=user)


app = rtc.mount(get_asgi_application(), prefix="/rtc")
