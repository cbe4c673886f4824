"""The web app's modules in Node, for what needs no browser (tests/test_web_*.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parent.parent / "src" / "rtcroom" / "web"


def web_module(name: str) -> str:
    """The import specifier of src/rtcroom/web/`name`, quoted for a script."""
    return json.dumps((WEB / name).as_uri())


def run_module(script: str) -> Any:
    """Run `script` as an ES module in Node; the JSON it prints."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: scripts/test installs it (nodejs)")
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)
