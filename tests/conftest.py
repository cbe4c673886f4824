"""Shared fixtures: real `rtcroom serve` processes, headless Chromium and Firefox."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("RTCROOM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--use-fake-ui-for-media-stream",
    # Three fake cameras, to switch between: fake_device_1 is a depth camera
    # (Y16) whose frames WebRTC cannot encode; fake_device_0 and _2 are normal.
    "--use-fake-device-for-media-stream=device-count=3",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    # Host candidates as plain addresses, not mDNS names: the test network
    # has no multicast DNS. And no WebUI omnibox popup: a full Chromium loads
    # one in a renderer of its own for every new window (each Playwright
    # context is one), 100-200 ms of CPU that a user opening a link in a tab
    # does not pay.
    "--disable-features=WebRtcHideLocalIpsWithMdns,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The accessibility checks' results (tests/browser.py check_accessibility)."""
    browser = sys.modules.get("browser")
    results = getattr(browser, "AXE_RESULTS", [])
    if not results:
        return
    terminalreporter.section("axe-core (WCAG 2.1 A and AA)")
    for name, state, violations, passes in results:
        terminalreporter.line(f"{name:9} {state:40} {violations} violations, {passes} rules passed")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Terminate, then kill if it does not end within 10 s. Idempotent."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    # Where rtcroom is mounted in its host app ("" under `rtcroom serve`).
    prefix: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.prefix}/ws"

    def stop(self) -> None:
        stop_process(self.process)


def wait_healthy(server: RunningServer, timeout: float = 60.0) -> None:
    """Until /healthz answers 200; at once if the server exits.

    `rtcroom serve` is healthy in about 0.2 s on a quiet machine
    (bench/startup.py); the deadline is for a machine loaded many times over,
    and costs nothing otherwise.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"rtcroom serve exited:\n{server.log.read_text()}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"rtcroom serve not healthy after {timeout}s:\n{server.log.read_text()}")


# The ways /ws is served (`rtcroom serve --websocket`): on the transport
# itself, and through uvicorn's WebSocket protocol and the ASGI route (what
# any other ASGI server runs). Tests marked `every_websocket_path` that start
# servers run once against each; with `mounted=True`, also against rtcroom
# mounted at /rtc inside a host app (tests/mounted_app.py).
WEBSOCKET_PATHS = ["fast", "asgi"]
MOUNTED = "mounted"
MOUNTED_APP = Path(__file__).resolve().parent / "mounted_app.py"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("every_websocket_path")
    if marker and "start_server" in metafunc.fixturenames:
        extra = [MOUNTED] if marker.kwargs.get("mounted") else []
        metafunc.parametrize("websocket", WEBSOCKET_PATHS + extra)


@pytest.fixture
def websocket() -> str:
    """How the servers of a test serve /ws (see WEBSOCKET_PATHS)."""
    return "fast"


@pytest.fixture
def start_server(tmp_path: Path, websocket: str) -> Iterator[Callable[..., RunningServer]]:
    """Start `rtcroom serve` as a user does, on a free loopback port."""
    started: list[RunningServer] = []

    def start(*args: str, env: dict[str, str] | None = None, port: int = 0) -> RunningServer:
        port = port or free_port()
        log = tmp_path / f"serve-{port}.log"
        command = [sys.executable, "-m", "rtcroom", "serve"]
        prefix, variables = "", {"RTCROOM_WEBSOCKET": websocket}
        if websocket == MOUNTED:
            command, prefix, variables = [sys.executable, str(MOUNTED_APP)], "/rtc", {}
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, "--port", str(port), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, **variables, **(env or {})},
            )
        server = RunningServer(process, port, log, prefix)
        started.append(server)
        wait_healthy(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def server(start_server: Callable[..., RunningServer]) -> RunningServer:
    return start_server()


@pytest.fixture
def proxy(server: RunningServer) -> Iterator[Any]:
    """A TCP forwarder to `server` (tests/proxy.py) that a test can cut."""
    from proxy import Proxy

    forwarder = Proxy(server.port)
    yield forwarder
    forwarder.close()


FIREFOX = os.environ.get("RTCROOM_FIREFOX", "/usr/bin/firefox-esr")
# Fake camera and microphone, granted without asking, counted as capturing
# (without `permission.fake`, Firefox stays in default-address-only ICE mode
# and, in the test network without a default route, gathers no candidate);
# host candidates as plain addresses; autoplay allowed.
FIREFOX_PREFS: dict[str, str | float | bool] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.navigator.permission.fake": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.autoplay.default": 0,
}


# Module scope: Playwright's sync API keeps an event loop running while it is
# open, so it must be closed before the asyncio tests of other modules run.
# One per module, shared by both browsers (a second one in the same thread is
# refused).
@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from browser import ms
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait up to 10 s (Playwright's default is 5), scaled.
    expect.set_options(timeout=ms(10_000))
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Any) -> Iterator[object]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        raise RuntimeError(f"Chromium not found at {CHROMIUM}: run scripts/test, which installs it")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def firefox(playwright: Any) -> Iterator[object]:
    """Debian's Firefox ESR, driven over WebDriver BiDi, nothing downloaded."""
    if not Path(FIREFOX).exists():
        raise RuntimeError(f"Firefox not found at {FIREFOX}: run scripts/test, which installs it")
    browser = playwright.firefox.launch(
        channel="moz-firefox",
        executable_path=FIREFOX,
        firefox_user_prefs=FIREFOX_PREFS,
        headless=True,
    )
    yield browser
    browser.close()


@dataclass
class RunningTurn:
    process: subprocess.Popen[bytes]
    port: int
    secret: str
    log: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"


TURN_SECRET = "test-secret-for-coturn-0123456789"


def write_coturn_config(
    folder: Path,
    port: int,
    secret: str,
    *,
    allow_loopback_relay: bool = False,
    relay_ports: tuple[int, int] = (50000, 50999),
) -> Path:
    """Write what `rtcroom turn-config` prints for a coturn on 127.0.0.1:`port`.

    `allow_loopback_relay=True` is the testing-only allowance for peers that
    are all on this machine: it drops the loopback denial and adds coturn's
    allow-loopback-peers, and logs each session (verbose: what a failed relay
    test shows). Nothing else is changed (but syslog: logs go to a file).
    """
    generated = subprocess.run(
        [
            sys.executable,
            *("-m", "rtcroom", "turn-config", "--turn-url", f"turn:127.0.0.1:{port}"),
            *("--realm", "rtcroom.test", "--listening-ip", "127.0.0.1"),
            *("--min-port", str(relay_ports[0]), "--max-port", str(relay_ports[1])),
        ],
        env={**os.environ, "RTCROOM_TURN_SECRET": secret},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if allow_loopback_relay:
        generated = generated.replace("denied-peer-ip=127.0.0.0-127.255.255.255\n", "")
        generated += (
            "# TESTING ONLY: all peers are on this machine\nallow-loopback-peers\nverbose\n"
        )
    config = folder / f"turnserver-{port}.conf"
    config.write_text(generated.replace("syslog\n", ""))
    return config


@pytest.fixture
def start_turn(tmp_path: Path) -> Iterator[Callable[..., RunningTurn]]:
    """Start Debian's coturn with the configuration `rtcroom turn-config` prints
    (see write_coturn_config for the testing-only loopback allowance)."""
    if not shutil.which("turnserver"):
        raise RuntimeError("coturn (turnserver) not found: run scripts/test, which installs it")
    started: list[RunningTurn] = []

    def start(*, allow_loopback_relay: bool = False) -> RunningTurn:
        port = free_port()
        config = write_coturn_config(
            tmp_path, port, TURN_SECRET, allow_loopback_relay=allow_loopback_relay
        )
        log = tmp_path / f"turnserver-{port}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    "turnserver",
                    *("-c", str(config)),
                    *("--pidfile", str(tmp_path / f"turn-{port}.pid")),
                    "--log-file=stdout",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        turn = RunningTurn(process, port, TURN_SECRET, log)
        started.append(turn)
        deadline = time.monotonic() + 10
        while (
            b"Total General servers" not in log.read_bytes()
            and b"listener opened" not in log.read_bytes()
        ):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start:\n{log.read_text()}")
            time.sleep(0.05)
        time.sleep(0.3)
        return turn

    yield start
    for turn in started:
        stop_process(turn.process)


class RunningRedis:
    """Debian's redis-server on a loopback port, nothing persisted: stop() and
    start() again on the same port, as an outage would."""

    def __init__(self, directory: Path) -> None:
        if not shutil.which("redis-server"):
            raise RuntimeError("redis-server not found: run scripts/test, which installs it")
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RunningRedis]:
    redis = RunningRedis(tmp_path)
    redis.start()
    yield redis
    redis.stop()


# Janus (the SFU), as `rtcroom sfu-config` configures it. It runs in the test
# network (scripts/netns) on the veth's address: Janus never gathers
# candidates on loopback.
VETH = "10.77.0.1"
JANUS_SECRET = "janus-api-secret-for-the-tests"
JANUS_ADMIN_SECRET = "janus-admin-secret-of-its-own"


@dataclass
class RunningJanus:
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    folder: Path
    log: Path

    @property
    def url(self) -> str:
        return f"ws://{VETH}:{self.port}"


@pytest.fixture
def start_janus(tmp_path: Path) -> Iterator[Callable[..., RunningJanus]]:
    """Start Debian's Janus, configured by `rtcroom sfu-config --out`, on the veth's address.

    Each node gets ports of its own (`node` 0, 1, ...); `edit` changes the
    configuration folder before Janus starts.
    """
    if not shutil.which("janus"):
        raise RuntimeError("janus not found: run scripts/test, which installs it")
    started: list[RunningJanus] = []

    def start(node: int = 0, edit: Callable[[Path], None] | None = None) -> RunningJanus:
        port, admin_port = free_port(), free_port()
        folder = tmp_path / f"janus-{node}"
        env = {**os.environ, "RTCROOM_SFU_SECRET": JANUS_SECRET}
        low = 41000 + 1000 * node
        subprocess.run(
            [
                *(sys.executable, "-m", "rtcroom", "sfu-config", "--out", str(folder)),
                *("--api-ip", VETH, "--api-port", str(port), "--media-ip", VETH),
                *("--min-port", str(low), "--max-port", str(low + 999)),
                *("--admin-secret", JANUS_ADMIN_SECRET, "--admin-port", str(admin_port)),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        if edit is not None:
            edit(folder)  # a Janus configured otherwise
        log = tmp_path / f"janus-{node}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                ["janus", "-F", str(folder), "-C", str(folder / "janus.jcfg")],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        running = RunningJanus(process, port, admin_port, folder, log)
        started.append(running)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection((VETH, port), timeout=1).close()
                return running
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    stop_process(process)
                    raise RuntimeError(
                        f"Janus did not start (the tests run it in scripts/netns):\n"
                        f"{log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.1)

    yield start
    for running in started:
        stop_process(running.process)


@pytest.fixture
def janus(start_janus: Callable[..., RunningJanus]) -> RunningJanus:
    """One Janus node (see start_janus)."""
    return start_janus()
