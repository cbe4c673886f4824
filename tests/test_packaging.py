"""What `pip install` gives: the server alone, the peers extra named when missing,
py.typed, and the lowest allowed versions of the direct dependencies passing
the unit and `rtcroom serve` tests. Each in a fresh venv.

The tests run in a private network (scripts/netns) that cannot reach PyPI:
scripts/test first builds every wheel they install into a wheelhouse
(`python tests/test_packaging.py --wheelhouse DIR`, outside that network)
and names it in RTCROOM_TEST_WHEELHOUSE; the venvs install from there alone.
Without the variable (a developer's machine) they install from the index."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import websockets
from conftest import RunningServer, wait_healthy
from doc_commands import marked, shell
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def fresh_venv(directory: Path) -> Path:
    """A venv with nothing but pip; its bin directory."""
    venv.EnvBuilder(with_pip=True).create(directory)
    return directory / "bin"


# What each test installs besides rtcroom: the test runner for the lowest versions.
TEST_TOOLS = ("pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3", "hypothesis>=6.100")
# What `pip install .` builds rtcroom with (pyproject.toml's build-system).
BUILD_BACKEND = "hatchling>=1.24"


def wheelhouse() -> list[str]:
    """pip's options to install from RTCROOM_TEST_WHEELHOUSE only, if it is set."""
    folder = os.environ.get("RTCROOM_TEST_WHEELHOUSE")
    if not folder:
        return []
    assert Path(folder, "ready").exists(), f"{folder} was not filled (see this module's docstring)"
    return ["--no-index", "--find-links", folder]


def pip_install(bin_dir: Path, *args: str) -> None:
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", *wheelhouse(), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def clean_env(bin_dir: Path) -> dict[str, str]:
    """The environment of a user of that venv (nothing of this one's Python)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return {**env, "PATH": f"{bin_dir}:{env.get('PATH', '')}", "VIRTUAL_ENV": str(bin_dir.parent)}


def wheelhouse_env() -> dict[str, str]:
    """pip's variables for RTCROOM_TEST_WHEELHOUSE alone (commands run as written)."""
    options = wheelhouse()
    return {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": options[-1]} if options else {}


def test_a_plain_install_serves_and_names_the_extra_for_python_peers(tmp_path: Path) -> None:
    """README's "Install and run" in a fresh venv, then docs/embedding.md's extras."""
    bin_dir = fresh_venv(tmp_path / "venv")
    env = {**clean_env(bin_dir), **wheelhouse_env()}
    [readme] = [block for block in marked("install") if block.doc == "README.md"]
    [extras] = [block for block in marked("install") if block.doc == "docs/embedding.md"]
    log = tmp_path / "serve.log"
    with shell(readme.text, ROOT, env, log) as process:
        server = RunningServer(process, 8080, log)  # type: ignore[arg-type]
        wait_healthy(server, timeout=300)  # pip first

        async def join() -> dict[str, object]:
            async with websockets.connect(server.ws_url) as ws:
                await ws.send(json.dumps({"type": "join", "room": "r", "name": "Ann"}))
                answer: dict[str, object] = json.loads(await asyncio.wait_for(ws.recv(), 5))
                return answer

        assert asyncio.run(join())["type"] == "joined"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)

    # The server's dependencies only: no aiortc (nor PyAV, numpy).
    for module in ("aiortc", "av", "numpy"):
        assert run(str(bin_dir / "python"), "-c", f"import {module}").returncode != 0, module
    typed = run(str(bin_dir / "python"), "-c", "import rtcroom, pathlib; print(rtcroom.__file__)")
    assert (Path(typed.stdout.strip()).parent / "py.typed").exists()

    bot = run(str(bin_dir / "rtcroom"), "bot", "play", server.url, "r", "--pattern")
    assert bot.returncode == 2
    # rtcroom is on no package index: the hint names where this one came from.
    hint = f"pip install '{ROOT}[peers]'"
    assert hint in bot.stderr, bot.stderr
    client = run(str(bin_dir / "python"), "-c", "import rtcroom.client")
    assert hint in client.stderr, client.stderr
    # And it works as written.
    pip_install(bin_dir, f"{ROOT}[peers]")
    assert run(str(bin_dir / "python"), "-c", "import rtcroom.client").returncode == 0

    # docs/embedding.md: the same from the checkout, and the examples' extra.
    plain, peers, examples = extras.lines()
    assert plain.startswith("pip install . ") and peers.startswith("pip install '.[peers]'")
    for line in (peers, examples):
        installed = subprocess.run(
            ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
    imported = run(str(bin_dir / "python"), "-c", "import rtcroom.client, fastapi, django")
    assert imported.returncode == 0, imported.stderr


def lowest_constraints() -> list[str]:
    """`name==X` for each direct dependency `name>=X` of pyproject.toml (this platform's)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for line in project["dependencies"] + project["optional-dependencies"]["peers"]:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        [lowest] = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{requirement.name}=={lowest}")
    return pins


def test_the_lowest_allowed_versions_pass_the_unit_and_serve_tests(tmp_path: Path) -> None:
    pins = lowest_constraints()
    assert "starlette==0.40" in pins and "aiortc==1.9" in pins
    constraints = tmp_path / "lowest.txt"
    constraints.write_text("\n".join(pins) + "\n")
    bin_dir = fresh_venv(tmp_path / "venv")
    pip_install(
        bin_dir,
        "-c",
        str(constraints),
        f"{ROOT}[peers]",
        *TEST_TOOLS,
    )
    freeze = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "freeze"], capture_output=True, text=True
    ).stdout.lower()
    for pin in pins:
        name, version = pin.lower().split("==")
        assert f"{name}=={version}" in freeze.replace("_", "-"), (pin, freeze)
    tests = [
        "tests/test_session.py",
        "tests/test_session_guards.py",
        "tests/test_session_hooks.py",
        "tests/test_session_sfu.py",
        "tests/test_protocol.py",
        "tests/test_connection.py",
        "tests/test_serve.py",
    ]
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(bin_dir),
        timeout=900,
    )
    print(result.stdout[-3000:])
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def fill_wheelhouse(folder: Path) -> None:
    """Build every wheel the tests above install into `folder` (from the index)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ready").unlink(missing_ok=True)
    constraints = folder / "lowest.txt"
    constraints.write_text("\n".join(lowest_constraints()) + "\n")
    for args in (
        [f"{ROOT}[peers,examples]", BUILD_BACKEND],
        ["-c", str(constraints), f"{ROOT}[peers]", *TEST_TOOLS],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(folder), *args],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            sys.exit(result.stdout + result.stderr)
    # rtcroom's own wheel is built by each test from the source.
    for wheel in folder.glob("rtcroom-*.whl"):
        wheel.unlink()
    (folder / "ready").touch()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--wheelhouse":
        sys.exit("usage: python tests/test_packaging.py --wheelhouse DIR")
    fill_wheelhouse(Path(sys.argv[2]))
