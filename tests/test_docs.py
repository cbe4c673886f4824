"""The commands of README.md and docs/, run as written (tests/doc_commands.py finds them).

Each test runs the blocks marked `<!-- test: NAME -->` with bash, in a
temporary folder and a reader's environment (this venv's commands on PATH),
with what the text before them sets up, and checks what they promise.
Addresses and folders that only exist elsewhere (a public address, /etc)
are replaced by the test network's and a temporary root's, and each
replaced text must still be in the block.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from conftest import VETH, stop_process
from doc_commands import (
    ROOT,
    SHELL,
    blocks,
    end_group,
    marked,
    reader_environment,
    run,
    shell,
)

from rtcroom.auth import mint_token


def test_every_shell_block_is_run_or_says_why() -> None:
    found = blocks()
    assert len(found) > 30
    unnamed = [str(b) for b in found if not b.language]
    assert not unnamed, f"fenced blocks without a language: {unnamed}"
    unmarked = [str(b) for b in found if b.language in SHELL and not b.mark]
    assert not unmarked, (
        "shell blocks neither run by a test (<!-- test: NAME -->) nor saying why not "
        f"(<!-- not tested: REASON -->): {unmarked}"
    )
    # Each name is run by some test (marked("NAME") in tests/).
    sources = "\n".join(path.read_text() for path in (ROOT / "tests").glob("test_*.py"))
    called = set(re.findall(r'marked\("([a-z][\w-]*)"\)', sources))
    names = {b.name for b in found if b.mark == "test"}
    assert names == called, f"marked but run by no test: {names - called}"
    # The proof that a break is seen: a block's text is what the test runs.
    [install] = [b for b in marked("install") if b.doc == "README.md"]
    assert install.lines() == ["pip install . && rtcroom serve"]


def port_is_free(port: int) -> None:
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"something listens on {port} already"


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> str:
    """GET `url` until it answers 200 (its body), while `process` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return str(reply.read().decode())
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s:\n{log.read_text()}")


def wait_for_text(log: Path, text: str, process: subprocess.Popen[Any], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text()
        if text in content:
            return content
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} in:\n{log.read_text()}")


# README and docs/sfu.md: Janus configured by `rtcroom sfu-config`, by hand.


def test_sfu_by_hand(tmp_path: Path) -> None:
    texts = {block.text: block for block in marked("sfu-by-hand")}
    assert len(texts) == 1, "README.md and docs/sfu.md show the same commands"
    [block] = texts.values()
    port_is_free(8080)
    # Janus gathers no candidates on loopback: the test network's address.
    script = block.with_({"192.0.2.10": VETH})
    log = tmp_path / "sfu.log"
    with shell(script, tmp_path, reader_environment(), log) as process:
        assert wait_for("http://127.0.0.1:8080/healthz", process, log) == "ok"
        # Janus reached and found fit (its settings are checked at connect).
        assert wait_for("http://127.0.0.1:8080/readyz", process, log) == "ready"
        assert "cannot" not in log.read_text(), log.read_text()
        config = (tmp_path / "janus-config" / "janus.jcfg").read_text()
        assert f'interface = "{VETH}"' in config or VETH in config


# README: one test, quickly, once scripts/test has run.


def test_one_test_quickly(tmp_path: Path) -> None:
    [block] = marked("one-test")
    venv = Path(sys.executable).parent.parent
    text = block.text if venv == ROOT / ".venv" else block.with_({".venv/": f"{venv}/"})
    started = time.monotonic()
    output = run(text, ROOT, reader_environment(), timeout=120)
    assert re.search(r"^1 passed", output, re.M), output
    assert len(re.findall(r"\b1 passed\b", output)) == 2, output
    assert time.monotonic() - started < 60


# docs/benchmarks.md: the benchmarks run for minutes; their flags are checked.


def test_benchmark_commands_take_their_flags() -> None:
    for block in marked("bench-flags"):
        [line] = block.lines()
        script = re.search(r"bench/(\w+\.py)", line)
        assert script, block
        usage = subprocess.run(
            [sys.executable, str(ROOT / "bench" / script.group(1)), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert usage.returncode == 0, f"{block}: {usage.stderr}"
        for flag in re.findall(r"(?<![\w-])(--[\w-]+)", line):
            assert flag in usage.stdout, f"{block}: {script.group(1)} has no {flag}"


# docs/operations.md


def test_operations_metrics(tmp_path: Path) -> None:
    [block] = marked("metrics")
    port_is_free(8080)
    log = tmp_path / "metrics.log"
    script = block.text + "wait\n"
    with shell(script, tmp_path, reader_environment(), log) as process:
        wait_for_text(log, "# HELP rtcroom_connections", process)
    assert "rtcroom_broker_up 1.0" in log.read_text()


def start_serve(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = tmp_path / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["rtcroom", "serve", *args],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for("http://127.0.0.1:8080/healthz", process, log)
    return process


def test_operations_admin_api_and_commands(tmp_path: Path) -> None:
    api, commands = marked("admin")
    port_is_free(8080)
    secret = tmp_path / "etc" / "rtcroom" / "auth-secret"
    secret.parent.mkdir(parents=True)
    secret.write_text("an-operator's-secret-of-enough-length\n")
    env = reader_environment(RTCROOM_AUTH_SECRET_FILE=str(secret))
    paths = {"/etc/rtcroom/auth-secret": str(secret)}
    server = start_serve(tmp_path, env=env)
    peers: list[subprocess.Popen[bytes]] = []
    try:
        # Ann, and Bob who may only watch: command-line peers with their tokens.
        for identity, name, grants, command in (
            ("ann", "Ann", ("publish", "subscribe", "data"), ("bot", "play")),
            ("bob", "Bob", ("subscribe",), ("receive",)),
        ):
            token = run(
                f"rtcroom token --room team --identity {identity} --name {name} "
                + " ".join(f"--grant {g}" for g in grants),
                tmp_path,
                env,
            ).strip()
            extra = ("--pattern",) if command == ("bot", "play") else ()
            with (tmp_path / f"{identity}.log").open("wb") as output:
                peers.append(
                    subprocess.Popen(
                        ["rtcroom", *command, "http://127.0.0.1:8080", "team", *extra],
                        env={**env, "RTCROOM_TOKEN": token},
                        cwd=tmp_path,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 60
        while True:
            listing = json.loads(run(api.with_(paths), tmp_path, env))
            if sum(len(room["peers"]) for room in listing["rooms"]) == 2:
                break
            assert time.monotonic() < deadline, listing
            time.sleep(0.2)
        cli = run(commands.with_(paths), tmp_path, env)
        # Kicked and the room closed: both peers are told and end.
        for peer in peers:
            peer.wait(30)
    finally:
        for peer in peers:
            stop_process(peer)  # type: ignore[arg-type]
        end_group(server)
    [room] = listing["rooms"]
    assert room["room"] == "team"
    assert sorted(p["name"] for p in room["peers"]) == ["Ann", "Bob"]
    table = cli.splitlines()
    assert table[0].split() == ["ROOM", "PEER", "NAME", "IDENTITY", "GRANTS", "CONNECTED"]
    assert "1 room, 2 peers" in table
    assert re.search(r"^team\s+\S+\s+Ann\s+ann\s+data,publish,subscribe\s+\d+s$", cli, re.M)
    assert re.search(r"^team\s+\S+\s+Bob\s+bob\s+subscribe\s+\d+s$", cli, re.M)
    assert re.search(r"^asked \S+ of room team to turn its microphone off$", cli, re.M)
    assert re.search(r"^kicked \S+ from room team$", cli, re.M)
    assert "closed room team: 1 peer removed" in cli
    assert "spam" in (tmp_path / "bob.log").read_text()
    assert "meeting over" in (tmp_path / "ann.log").read_text()


# docs/deploy.md, then docs/sfu.md's systemd part: a server set up by the book.

# What a temporary root cannot do is recorded instead: installing Debian's
# packages (scripts/test installed them), and systemd's commands (the test
# starts the enabled units itself, as their files say). useradd is real,
# once per user.
SHIMS = {
    "apt-get": 'echo "apt-get $*" >> "$CALLS"',
    "systemctl": 'echo "systemctl $*" >> "$CALLS"',
    "journalctl": 'echo "journalctl $*" >> "$CALLS"',
    "useradd": 'id -u "${@: -1}" >/dev/null 2>&1 || /usr/sbin/useradd "$@"',
}


def self_signed(folder: Path, name: str) -> None:
    """What certbot leaves in /etc/letsencrypt/live/NAME: a certificate and its key."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True)
    (folder / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # The deploy hook deploy.md asks for: coturn's user reads the key.
    (folder / "privkey.pem").chmod(0o644)


def unit_command(root: Path, unit: Path) -> tuple[list[str], dict[str, str]]:
    """The command a unit runs, as its user, with its EnvironmentFile; paths moved into root."""
    settings: dict[str, str] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()

    def moved(text: str) -> str:
        if str(root) in text:  # written by the doc's commands, moved already
            return text
        return text.replace("/etc/", f"{root}/etc/").replace("/opt/", f"{root}/opt/")

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    if "EnvironmentFile" in settings:
        for line in Path(moved(settings["EnvironmentFile"])).read_text().splitlines():
            if line and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = moved(value)
    user = ["/usr/sbin/runuser", "-u", settings["User"], "--"] if "User" in settings else []
    return [*user, *shlex.split(moved(settings["ExecStart"]))], env


TURN_CHECK = """
import asyncio, sys
from aioice import turn

async def allocate(host, username, password):
    transport, _ = await turn.create_turn_endpoint(
        asyncio.DatagramProtocol, (host, 3478), username, password, lifetime=60
    )
    print("relayed", *transport.get_extra_info("sockname"))
    transport.close()

asyncio.run(asyncio.wait_for(allocate(*sys.argv[1:]), 20))
"""


def test_deploy_md_followed_in_a_temporary_root(tmp_path: Path) -> None:
    blocks_ = marked("deploy")
    assert blocks_[0].doc == "docs/deploy.md" and blocks_[-1].doc == "docs/sfu.md"
    for port in (8080, 8188, 3478):
        port_is_free(port)
    # A root the services' own users can walk into (pytest's tmp_path is root's alone).
    root = Path(tempfile.mkdtemp(prefix="rtcroom-root-", dir="/tmp"))
    root.chmod(0o755)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        shims = root / "shims"
        shims.mkdir()
        for name, body in SHIMS.items():
            (shims / name).write_text(f"#!/bin/bash\n{body}\n")
            (shims / name).chmod(0o755)
        (root / "etc" / "systemd" / "system").mkdir(parents=True)
        self_signed(root / "etc" / "letsencrypt" / "live" / "call.example.org", "call.example.org")
        calls = root / "calls"
        # A root shell of a stock Debian: its own python3 (the services' users
        # could not run a Python in root's home, such as pyenv's).
        env = reader_environment(CALLS=str(calls))
        env["PATH"] = f"{shims}:/usr/sbin:/usr/bin:/sbin:/bin"
        # rtcroom is on no index: pip takes the wheels scripts/test gathered.
        wheels = os.environ.get("RTCROOM_TEST_WHEELHOUSE")
        if wheels:
            env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=wheels)
        script = "\n".join(block.text for block in blocks_)
        for old in ("/etc/", "/opt/", "203.0.113.10"):
            assert old in script
        script = (
            script.replace("/etc/", f"{root}/etc/")
            .replace("/opt/", f"{root}/opt/")
            .replace("203.0.113.10", VETH)  # the host's address: the test network's
        )
        output = run(script, ROOT, env, timeout=900)

        # What systemd was asked to do.
        asked = calls.read_text().splitlines()
        assert "systemctl enable --now rtcroom-coturn rtcroom" in asked
        assert "systemctl enable --now rtcroom-janus" in asked
        # Section 6's check credential: "<expiry>:check <password>".
        [check] = [line for line in output.splitlines() if ":check " in line]
        username, password = check.split()

        # The units started as systemd would: Janus and coturn first (Before=rtcroom.service).
        units = root / "etc" / "systemd" / "system"
        logs = {}
        for name in ("rtcroom-janus", "rtcroom-coturn", "rtcroom"):
            command, variables = unit_command(root, units / f"{name}.service")
            logs[name] = tmp_path / f"{name}.log"
            with logs[name].open("wb") as log:
                processes.append(
                    subprocess.Popen(command, env=variables, stdout=log, stderr=subprocess.STDOUT)
                )
            if name == "rtcroom-janus":
                wait_for_port(8188, processes[-1], logs[name])
        rtcroom = processes[-1]
        assert wait_for("http://127.0.0.1:8080/healthz", rtcroom, logs["rtcroom"]) == "ok"
        # Janus reached with the secret of the file, and fit for rtcroom.
        assert wait_for("http://127.0.0.1:8080/readyz", rtcroom, logs["rtcroom"]) == "ready"
        log = logs["rtcroom"].read_text()
        assert "access tokens required to join" in log, log

        # Tokens are on: a join without one is refused, one minted from the file joins.
        secret = (root / "etc" / "rtcroom" / "auth-secret").read_text().strip()
        refused = join_over_websocket(None)
        assert refused["type"] == "error" and refused["code"] == "unauthorized", refused
        joined = join_over_websocket(mint_token(secret, room="r", identity="ann", name="Ann"))
        assert joined["type"] == "joined", joined
        turn = [s for s in joined["iceServers"] if s.get("username")]
        assert turn and turn[0]["urls"][0] == "turn:call.example.org:3478?transport=udp"

        # coturn (as its user, with the file turn-config wrote) accepts the credentials
        # of the secret they share: the check credential, and a peer's.
        for user, credential in (
            (username, password),
            (turn[0]["username"], turn[0]["credential"]),
        ):
            allocated = subprocess.run(
                [sys.executable, "-c", TURN_CHECK, VETH, user, credential],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert allocated.returncode == 0, allocated.stderr + logs["rtcroom-coturn"].read_text()
            assert allocated.stdout.startswith(f"relayed {VETH} ")
    finally:
        for process in reversed(processes):
            stop_process(process)
        shutil.rmtree(root, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}:\n{log.read_text()}")


def join_over_websocket(token: str | None) -> dict[str, Any]:
    import asyncio

    import websockets

    async def join() -> dict[str, Any]:
        async with websockets.connect("ws://127.0.0.1:8080/ws") as ws:
            message: dict[str, Any] = {"type": "join", "room": "r", "name": "Ann"}
            if token:
                message["token"] = token
            await ws.send(json.dumps(message))
            answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
            return answer

    return asyncio.run(join())


def test_operations_webhooks(tmp_path: Path) -> None:
    [block] = marked("webhooks")
    port_is_free(8080)
    etc = tmp_path / "etc" / "rtcroom"
    etc.mkdir(parents=True)
    (etc / "auth-secret").write_text("an-operator's-secret-of-enough-length\n")
    log = tmp_path / "webhooks.log"
    script = block.with_({"/etc/rtcroom/": f"{etc}/"})
    with shell(script, tmp_path, reader_environment(), log) as process:
        wait_for("http://127.0.0.1:8080/healthz", process, log)
        assert (etc / "webhook-secret").read_text().startswith("whsec_")
        assert "access tokens required" in log.read_text()


# Figures quoted outside docs/benchmarks.md are the ones its generated tables hold.


def test_readme_figures_are_the_benchmarks_tables() -> None:
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text()
    readme = " ".join((ROOT / "README.md").read_text().split())

    def target(goal: str) -> str:
        [row] = re.findall(
            rf"^\| {re.escape(goal)} \| [^|]+ \| ([\d.]+ ?(?:x|KB))", benchmarks, re.M
        )
        return row

    socketio = target("relay throughput / Node's socket.io")
    seeds = target("relay throughput / the seeds' python-socketio")
    memory = target("memory per idle joined connection (10,000)")
    assert f"relayed {socketio} what Node's socket.io server does" in readme, socketio
    assert f"and {seeds} the tutorials' python-socketio" in readme, seeds
    assert f"at {memory} per idle connection" in readme, memory
    assert f"{memory} per idle client" in readme, memory
    # Prose after the generated section names no figure of a run it did not see.
    prose = benchmarks.split("<!-- signaling suite: end -->")[1].split("<!-- sfu suite")[0]
    assert not re.search(r"\d+(\.\d+)? µs", prose), "figures in the prose: put them in the tables"
