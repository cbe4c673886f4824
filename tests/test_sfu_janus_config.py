"""`rtcroom sfu-config`: its checks, and the real Janus (Debian's) started from what it writes.

Janus runs in the test network (scripts/netns) on the veth's address: it
never gathers candidates on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
from typing import Any

import pytest
import websockets
from conftest import JANUS_ADMIN_SECRET as ADMIN_SECRET
from conftest import JANUS_SECRET as SECRET
from conftest import VETH, RunningJanus


def sfu_config(*args: str, secret: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTCROOM_SFU")}
    if secret is not None:
        env["RTCROOM_SFU_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "rtcroom", "sfu-config", *args],
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("args", "secret", "complaint"),
    [
        (["--api-ip", "8.8.8.8"], SECRET, "not a loopback or private address"),
        (["--api-ip", "0.0.0.0"], SECRET, "not a loopback or private address"),
        (["--api-ip", "janus.local"], SECRET, "not an IP address"),
        (["--api-ip", "10.0.0.2"], None, "give Janus's API secret"),
        (["--api-ip", "10.0.0.2"], "short", "at least 16 characters"),
        (
            ["--api-ip", "10.0.0.2", "--min-port", "40000", "--max-port", "20000"],
            SECRET,
            "UDP range",
        ),
        (["--api-ip", "10.0.0.2", "--admin-secret", SECRET], SECRET, "a secret of its own"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(
    args: list[str], secret: str | None, complaint: str
) -> None:
    result = sfu_config(*args, secret=secret)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert result.stdout == ""
    if secret:
        assert secret not in result.stderr


def test_printed_configuration() -> None:
    result = sfu_config(
        "--api-ip", "10.0.0.2", "--media-ip", "10.0.1.5", "--public-ip", "198.51.100.4"
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for header in ("janus.jcfg", "janus.transport.websockets.jcfg", "janus.plugin.videoroom.jcfg"):
        assert f"# ===== /etc/janus/{header} =====" in text
    assert f'api_secret = "{SECRET}"' in text
    assert 'ws_ip = "10.0.0.2"' in text
    assert 'nat_1_1_mapping = "198.51.100.4"' in text
    assert 'ice_enforce_list = "10.0.1.5"' in text
    assert "admin_ws = false" in text and "admin_secret" not in text
    assert "string_ids = true" in text


async def test_janus_runs_as_configured(janus: RunningJanus) -> None:
    port, admin_port, folder = janus.port, janus.admin_port, janus.folder
    # The files hold secrets: their owner's only.
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    async with websockets.connect(f"ws://{VETH}:{port}", subprotocols=["janus-protocol"]) as ws:
        transaction = iter(range(1000))

        async def call(request: dict[str, Any], secret: str | None = SECRET) -> dict[str, Any]:
            request = {**request, "transaction": str(next(transaction))}
            if secret is not None:
                request["apisecret"] = secret
            await ws.send(json.dumps(request))
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return answer

        info = await call({"janus": "info"}, secret=None)
        # Only what rtcroom uses is loaded; Janus says the address its SDP carries.
        assert list(info["plugins"]) == ["janus.plugin.videoroom"]
        assert list(info["transports"]) == ["janus.transport.websockets"]
        assert info["local-ip"] == VETH and info["server-name"] == "rtcroom-sfu"
        # Nothing without the secret, or with a wrong one.
        for secret in (None, "not-the-secret-at-all"):
            refused = await call({"janus": "create"}, secret=secret)
            assert refused["janus"] == "error" and refused["error"]["code"] == 403
        session = (await call({"janus": "create"}))["data"]["id"]
        other = await call(
            {"janus": "attach", "session_id": session, "plugin": "janus.plugin.echotest"}
        )
        assert other["janus"] == "error" and other["error"]["code"] == 460  # no such plugin
        handle = (
            await call(
                {"janus": "attach", "session_id": session, "plugin": "janus.plugin.videoroom"}
            )
        )["data"]["id"]
        body = {"request": "create", "room": "standup"}
        created = await call(
            {"janus": "message", "session_id": session, "handle_id": handle, "body": body}
        )
        # Room ids are strings, as rtcroom's room names are.
        assert created["plugindata"]["data"] == {
            "videoroom": "created",
            "room": "standup",
            "permanent": False,
        }
        await call({"janus": "destroy", "session_id": session})
    # The API listens on the configured address only; the admin API on loopback
    # only, and with its own secret.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with pytest.raises(OSError):
        socket.create_connection((VETH, admin_port), timeout=1).close()
    admin_url = f"ws://127.0.0.1:{admin_port}"
    async with websockets.connect(admin_url, subprotocols=["janus-admin-protocol"]) as admin:
        for secret, expected in ((SECRET, "error"), (ADMIN_SECRET, "success")):
            request = {"janus": "list_sessions", "transaction": "a", "admin_secret": secret}
            await admin.send(json.dumps(request))
            assert json.loads(await asyncio.wait_for(admin.recv(), 5))["janus"] == expected
