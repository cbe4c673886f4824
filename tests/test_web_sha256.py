"""The web app's incremental SHA-256 (src/rtcroom/web/sha256.js) against hashlib, in Node."""

from __future__ import annotations

import hashlib

from node import run_module, web_module

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
    digests = run_module(SCRIPT % web_module("sha256.js"))
    for n, digest in digests.items():
        data = bytes((i * 131 + 7) & 255 for i in range(int(n)))
        assert digest == hashlib.sha256(data).hexdigest(), f"length {n}"
    assert len(digests) == 12
