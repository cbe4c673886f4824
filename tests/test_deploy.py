"""The deployment files in deploy/systemd: checked by systemd itself
(`systemd-analyze verify`), and rtcroom's unit run as systemd would run it."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from conftest import RunningServer, free_port, stop_process, wait_healthy

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "systemd"
UNITS = sorted(path.name for path in DEPLOY.glob("*.service"))
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def directives(unit: Path) -> dict[str, str]:
    """A unit's `Key=value` lines (the last of each key)."""
    found = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found[key.strip()] = value.strip()
    return found


def verify(root: Path, unit: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A filesystem root with systemd's own units, ours installed, and the
    programs our units start (empty executables: verify checks they exist)."""
    shutil.copytree(SYSTEM_UNITS, tmp_path / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    installed = tmp_path / "etc" / "systemd" / "system"
    installed.mkdir(parents=True)
    for name in UNITS:
        shutil.copy(DEPLOY / name, installed / name)
        program = Path(shlex.split(directives(DEPLOY / name)["ExecStart"])[0])
        stub = tmp_path / program.relative_to("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    return tmp_path


def test_the_units_are_what_systemd_accepts(root: Path) -> None:
    assert UNITS == ["rtcroom-coturn.service", "rtcroom-janus.service", "rtcroom.service"]
    for unit in UNITS:
        result = verify(root, unit)
        assert (result.returncode, result.stdout + result.stderr) == (0, ""), unit
    # The check sees mistakes: a wrong type and a missing program.
    broken = root / "etc" / "systemd" / "system" / "rtcroom.service"
    broken.write_text(broken.read_text().replace("Type=exec", "Type=sometimes"))
    assert "Failed to parse service type" in verify(root, "rtcroom.service").stderr
    (root / "opt" / "rtcroom" / "bin" / "rtcroom").unlink()
    result = verify(root, "rtcroom.service")
    assert result.returncode != 0 and "is not executable" in result.stderr


def test_rtcroom_unit_serves_with_its_environment_file(tmp_path: Path) -> None:
    """ExecStart with the variables of rtcroom.env, as systemd runs them."""
    unit = directives(DEPLOY / "rtcroom.service")
    assert unit["EnvironmentFile"] == "/etc/rtcroom/rtcroom.env"
    environment = {}
    for line in (DEPLOY / "rtcroom.env").read_text().splitlines():
        if line and not line.startswith("#"):
            key, value = line.split("=", 1)
            environment[key] = value
    port, metrics = free_port(), free_port()
    assert environment["RTCROOM_METRICS_PORT"] and environment["RTCROOM_PORT"] == "8080"
    # Tokens on: the secret docs/deploy.md writes (here a file of the test's).
    assert environment["RTCROOM_AUTH_SECRET_FILE"] == "/etc/rtcroom/auth-secret"
    secret = tmp_path / "auth-secret"
    secret.write_text("a-secret-of-at-least-32-bytes-for-the-unit\n")
    environment.update(
        RTCROOM_PORT=str(port),
        RTCROOM_METRICS_PORT=str(metrics),
        RTCROOM_AUTH_SECRET_FILE=str(secret),
    )
    command = shlex.split(unit["ExecStart"])
    assert command[0] == "/opt/rtcroom/bin/rtcroom"
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "rtcroom", *command[1:]],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={"PATH": os.environ["PATH"], **environment},
        )
    server = RunningServer(process, port, log)
    try:
        wait_healthy(server)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as reply:
            assert b"rtcroom_connections" in reply.read()
    finally:
        stop_process(process)
    # systemd's stop: SIGTERM, and a clean exit (Restart=on-failure leaves it stopped).
    assert process.returncode == 0
    assert '"event":"drain"' in log.read_text().replace(" ", "")
