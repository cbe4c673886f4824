"""The broker's Lua scripts (the .lua files beside this one), as Redis runs them.

A script may start with `-- needs: NAME ...`: the functions of those files
(seq.lua, drop.lua) come first, each once, in the order needed.
"""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_NEEDS = re.compile(r"^-- needs: (.+)$", re.MULTILINE)


def _parts(name: str, seen: list[str]) -> None:
    text = files(__package__).joinpath(f"{name}.lua").read_text()
    needs = _NEEDS.search(text)
    for need in needs.group(1).split() if needs else ():
        if need not in seen:
            _parts(need, seen)
    if name not in seen:
        seen.append(name)


@cache
def source(name: str) -> str:
    """The text Redis runs for script `name`: its file after the files it needs."""
    seen: list[str] = []
    _parts(name, seen)
    return "\n".join(files(__package__).joinpath(f"{part}.lua").read_text() for part in seen)
