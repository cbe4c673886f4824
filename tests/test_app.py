"""The ASGI app in process (Starlette's TestClient): routes, pages and /ws through the ASGI route."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from rtcroom import ConfigError, Forbidden, Message, RoomServer
from rtcroom.app import create_app
from rtcroom.config import Config
from rtcroom.webapp import WebAssets


@pytest.fixture
def client() -> Iterator[TestClient]:
    with TestClient(create_app(Config(max_message_size=2048, max_peers_per_room=2))) as client:
        yield client


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text == "ok"


def test_pages_and_modules_are_served(client: TestClient) -> None:
    lobby = client.get("/")
    assert lobby.status_code == 200
    assert 'id="join-form"' in lobby.text
    room = client.get("/r/standup")
    assert room.status_code == 200
    assert 'id="grid"' in room.text
    for module in ("rtcroom.js", "app.js", "lobby.js", "style.css"):
        response = client.get(f"/static/{module}")
        assert response.status_code == 200, module
    assert "javascript" in client.get("/static/rtcroom.js").headers["content-type"]
    assert client.get("/static/nope.js").status_code == 404


def test_pages_come_with_their_stylesheet_inlined(client: TestClient, tmp_path: Path) -> None:
    css = client.get("/static/style.css").text
    for page in (client.get("/").text, client.get("/r/standup").text):
        assert 'rel="stylesheet"' not in page
        assert f"<style>/* /static/style.css */\n{css}</style>" in page
    # A stylesheet that would end the <style> element early is refused at start-up.
    (tmp_path / "page.html").write_text('<link rel="stylesheet" href="/static/bad.css">')
    (tmp_path / "bad.css").write_text("p::after { content: '</style>'; }")
    with pytest.raises(ValueError, match=r"bad\.css cannot be inlined"):
        WebAssets(tmp_path)


def test_two_clients_relay_through_ws(client: TestClient) -> None:
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        a.send_text('{"type":"join","room":"r","name":"Ann"}')
        joined_a = a.receive_json()
        b.send_text('{"type":"join","room":"r","name":"Bo"}')
        joined_b = b.receive_json()
        assert joined_b["peers"] == [{"id": joined_a["id"], "name": "Ann"}]
        assert a.receive_json() == {
            "type": "peer-joined",
            "peer": {"id": joined_b["id"], "name": "Bo"},
        }
        b.send_text(f'{{"type":"signal","to":"{joined_a["id"]}","data":{{"candidate":null}}}}')
        assert a.receive_json() == {
            "type": "signal",
            "from": joined_b["id"],
            "data": {"candidate": None},
        }
        # Errors keep the connection usable.
        b.send_text('{"type":"broadcast","data":"' + "x" * 4096 + '"}')
        assert b.receive_json()["code"] == "too-large"
        b.send_bytes(b'{"type":"leave"}')
        assert b.receive_json()["code"] == "bad-message"
        b.send_text('{"type":"broadcast","data":[1]}')
        assert a.receive_json() == {"type": "broadcast", "from": joined_b["id"], "data": [1]}
        # A third peer does not fit in a room of two.
        with client.websocket_connect("/ws") as c:
            c.send_text('{"type":"join","room":"r","name":"Cy"}')
            assert c.receive_json()["code"] == "room-full"
    # (b's disconnect is announced to a; checked against a real server in test_serve.py)


def test_assets_revalidate_with_etag(client: TestClient) -> None:
    first = client.get("/static/app.js")
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/static/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get("/static/../app.py").status_code == 404


def test_turn_credentials_are_renewed_while_in_a_room() -> None:
    config = Config(
        turn_urls=("turn:127.0.0.1:3478",),
        turn_secret="renewal-test-secret-0123",
        turn_ttl=120,
        turn_renew_after=0.2,
    )
    with TestClient(create_app(config)) as app, app.websocket_connect("/ws") as ws:
        ws.send_text('{"type":"join","room":"r","name":"Ann"}')
        joined = ws.receive_json()
        first = joined["iceServers"][0]
        assert first["username"].endswith(":" + joined["id"])
        renewal = ws.receive_json()  # about 0.2 s later
        assert renewal["type"] == "ice-servers"
        fresh = renewal["iceServers"][0]
        assert fresh["urls"] == ["turn:127.0.0.1:3478"]
        assert fresh["username"].endswith(":" + joined["id"])
        assert int(fresh["username"].split(":")[0]) >= int(first["username"].split(":")[0])


def test_an_unstarted_room_server_says_what_to_do(caplog: pytest.LogCaptureFixture) -> None:
    rtc = RoomServer()
    client = TestClient(rtc)  # no `with`: its lifespan never runs
    assert client.get("/healthz").status_code == 503
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json() == {
            "type": "error",
            "code": "unavailable",
            "message": "the rtcroom server is not started",
        }
    assert "rtc.lifespan" in caplog.text
    with pytest.raises(RuntimeError, match=r"lifespan=rtc\.lifespan"):
        asyncio.run(rtc.send("r", "x", 1))


def test_settings_are_checked_as_the_flags_are() -> None:
    with pytest.raises(ConfigError, match="--max-peers"):
        RoomServer(max_peers_per_room=1)
    with pytest.raises(TypeError, match="not both"):
        RoomServer(Config(), max_rooms=3)


def test_mounted_in_front_of_another_app_under_a_prefix() -> None:
    async def other(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"  # never given rtcroom's lifespan, as Django
        await PlainTextResponse("the site")(scope, receive, send)

    rtc = RoomServer()
    with TestClient(rtc.mount(other, prefix="/rtc")) as client:
        assert rtc.started
        assert client.get("/").text == "the site"
        assert client.get("/rtcx").text == "the site"
        assert client.get("/rtc/healthz").text == "ok"
        page = client.get("/rtc/r/team").text
        assert '<meta name="rtcroom-base" content="/rtc">' in page
        assert 'src="/rtc/static/app.js"' in page and '"/static/' not in page
        assert client.get("/rtc/static/rtcroom.js").status_code == 200
        assert client.get("/rtc/r", follow_redirects=False).headers["location"] == "/rtc/"
        with client.websocket_connect("/rtc/ws") as ws:
            ws.send_text('{"type":"join","room":"r","name":"Ann"}')
            assert ws.receive_json()["type"] == "joined"
    assert not rtc.admission.started  # stopped with the server: /ws refuses again


def test_a_signal_hook_sees_the_recipient_and_may_refuse() -> None:
    seen: list[Message] = []

    async def no_video_offers(message: Message) -> None:
        seen.append(message)
        if "video" in json.dumps(message.data):
            raise Forbidden("no video in this room")

    with (
        TestClient(RoomServer(on_signal=no_video_offers)) as client,
        client.websocket_connect("/ws") as a,
        client.websocket_connect("/ws") as b,
    ):
        a.send_text('{"type":"join","room":"r","name":"Ann"}')
        ja = a.receive_json()
        b.send_text('{"type":"join","room":"r","name":"Bo"}')
        jb = b.receive_json()
        a.receive_json()
        b.send_text(f'{{"type":"signal","to":"{ja["id"]}","data":{{"sdp":"m=video"}}}}')
        assert b.receive_json() == {
            "type": "error",
            "code": "forbidden",
            "message": "no video in this room",
            "app": True,
        }
        b.send_text(f'{{"type":"signal","to":"{ja["id"]}","data":{{"candidate":null}}}}')
        assert a.receive_json() == {"type": "signal", "from": jb["id"], "data": {"candidate": None}}
    assert [(m.peer.id, m.to) for m in seen] == [(jb["id"], ja["id"])] * 2
