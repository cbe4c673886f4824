"""The shell commands of README.md and docs/*.md, found and run as a reader would.

Every fenced block names its language. Each shell block (sh, bash, shell,
console) is marked on the line before it, in an HTML comment the rendered
page does not show:

    <!-- test: NAME -->           run by a test that calls marked("NAME")
    <!-- not tested: REASON -->   and why it cannot run here (a real domain...)

tests/test_docs.py holds that every shell block is one or the other, and
runs most of them; a few run where their subject is tested already
(test_packaging.py: the install commands, in fresh virtual environments).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
MARK = re.compile(r"^\s*<!-- (test|not tested): (.+?) -->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a doc: where it is, its language, its text and its mark."""

    doc: str
    line: int
    language: str
    text: str
    mark: str = ""  # "test", "not tested" or ""
    note: str = ""  # the test's name (and a comment), or why not tested

    @property
    def name(self) -> str:
        """The name a test calls it by (`<!-- test: NAME (comment) -->`)."""
        return self.note.split()[0] if self.mark == "test" else ""

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"

    def lines(self) -> list[str]:
        """Its commands, one per line (continuations joined, comments and blanks dropped)."""
        commands, current = [], ""
        for line in self.text.splitlines():
            current += line.rstrip("\\") + (" " if line.endswith("\\") else "")
            if not line.endswith("\\"):
                if current.strip() and not current.lstrip().startswith("#"):
                    commands.append(current.strip())
                current = ""
        return commands

    def with_(self, substitutions: Mapping[str, str]) -> str:
        """Its text with what only this machine has instead (an address, a folder).

        Each replaced text must be in the block: a doc that changes it fails
        here, not silently.
        """
        text = self.text
        for old, new in substitutions.items():
            assert old in text, f"{self}: {old!r} is no longer in the block:\n{text}"
            text = text.replace(old, new)
        return text


def blocks() -> list[Block]:
    """Every fenced block of README.md and docs/*.md, in order."""
    found = []
    for path in DOCS:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            opening = FENCE.match(lines[i])
            if opening is None:
                i += 1
                continue
            indent, language = opening.group(1), opening.group(2)
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            body = [line[len(indent) :] for line in lines[i + 1 : end]]
            before = lines[i - 1] if i else ""
            mark = MARK.match(before)
            found.append(
                Block(
                    doc=str(path.relative_to(ROOT)),
                    line=i + 1,
                    language=language,
                    text="\n".join(body) + "\n",
                    mark=mark.group(1) if mark else "",
                    note=mark.group(2) if mark else "",
                )
            )
            i = end + 1
    return found


def marked(name: str) -> list[Block]:
    """The blocks marked `<!-- test: NAME -->`, in the docs' order."""
    found = [block for block in blocks() if block.name == name]
    assert found, f"no block of README.md or docs/ is marked '<!-- test: {name} -->'"
    return found


def reader_environment(**variables: str) -> dict[str, str]:
    """A reader's shell: this venv's commands on PATH, none of the tests' RTCROOM_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTCROOM_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.update(variables)
    return env


@contextmanager
def shell(
    script: str, cwd: Path, env: Mapping[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `script` in bash (stopping at the first failure) as a process group of its own,
    output in `log`; on exit, end the group (what it started in the background too)."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        end_group(process)


def end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group, then SIGKILL after 15 s. Idempotent."""
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                process.poll()
                return
            process.poll()
            time.sleep(0.05)


def run(script: str, cwd: Path, env: Mapping[str, str], timeout: float = 300) -> str:
    """Run `script` in bash to its end; its output, which must end with status 0."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}:\n{script}\n{result.stdout}{result.stderr}"
    )
    return result.stdout


if __name__ == "__main__":
    # `python tests/doc_commands.py`: every shell block and what becomes of it.
    for block in blocks():
        if block.language in SHELL:
            first = block.lines()[0] if block.lines() else ""
            print(f"{block!s:24} {block.mark or 'UNMARKED':10} {block.note[:60]:60} {first[:60]}")
