"""How to install one of rtcroom's extras, from wherever this rtcroom came from.

rtcroom is installed from a checkout or a wheel, not from an index, so
`pip install 'rtcroom[peers]'` finds nothing. pip records where it took a
package from (PEP 610, direct_url.json); the hint names that place, and the
extra's own requirements as a second way.
"""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit


def install_hint(extra: str) -> str:
    """A pip command that adds `extra` to this installation of rtcroom."""
    try:
        distribution = metadata.distribution("rtcroom")
    except metadata.PackageNotFoundError:
        return f"pip install -e '.[{extra}]' in rtcroom's checkout"
    # Requires-Dist lines of the extra: 'aiortc>=1.9; extra == "peers"'.
    only_extra = re.compile(rf"""^([^;]+);\s*extra\s*==\s*["']{re.escape(extra)}["']\s*$""")
    packages = " ".join(
        f"'{match[1].strip()}'"
        for text in distribution.requires or ()
        if (match := only_extra.match(text)) and not match[1].startswith("rtcroom")
    )
    source = _source(distribution)
    if source is None:
        return f"pip install {packages}"
    return f"pip install {source[0]}'{source[1]}[{extra}]' (or: pip install {packages})"


def _source(distribution: metadata.Distribution) -> tuple[str, str] | None:
    """("-e " or "", the local folder or wheel) pip installed rtcroom from, if it still exists."""
    text = distribution.read_text("direct_url.json")
    if not text:
        return None
    try:
        record = json.loads(text)
        url = urlsplit(record["url"])
    except (ValueError, KeyError, TypeError):
        return None
    if url.scheme != "file":
        return None
    path = Path(unquote(url.path))
    if not path.exists():
        return None
    editable = "-e " if record.get("dir_info", {}).get("editable") else ""
    return editable, str(path)
