"""The web app's incremental SHA-256 (src/rtcroom/web/sha256.js) against hashlib, in Node."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

SHA256_JS = Path(__file__).resolve().parent.parent / "src" / "rtcroom" / "web" / "sha256.js"

# Lengths around the block (64) and padding (56) boundaries, and one large
# input; each is fed in uneven pieces so that partial blocks carry over.
SCRIPT = """
import { Sha256 } from %s;
const out = {};
for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 1000, 300007]) {
  const data = new Uint8Array(n).map((_, i) => (i * 131 + 7) & 255);
  const hash = new Sha256();
  for (let at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
    hash.update(data.subarray(at, at + step));
  }
  out[n] = hash.hex();
}
console.log(JSON.stringify(out));
"""


def test_incremental_sha256_matches_hashlib() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing: scripts/test installs it (nodejs)")
    script = SCRIPT % json.dumps(SHA256_JS.as_uri())
    result = subprocess.run(
        [node, "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    digests = json.loads(result.stdout)
    for n, digest in digests.items():
        data = bytes((i * 131 + 7) & 255 for i in range(int(n)))
        assert digest == hashlib.sha256(data).hexdigest(), f"length {n}"
    assert len(digests) == 12
