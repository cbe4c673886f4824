"""The package's imports flow one way: no module imports, however indirectly, itself.

Every `import` and `from ... import` of rtcroom's own modules counts, at
module level or inside a function (a lazy import is still a dependency),
but those under `if TYPE_CHECKING:` (types only, never run). A package's
__init__ that imports a submodule which imports the package back is a
cycle too (it works only while the import stays at the bottom).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import rtcroom

ROOT = Path(rtcroom.__file__).parent


def module_name(path: Path) -> str:
    parts = ["rtcroom", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def imports(path: Path, modules: set[str]) -> set[str]:
    """The rtcroom modules `path` imports."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module.
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(path) for path in files}
    return {module_name(path): imports(path, modules) for path in files}


def graph_in_a_fresh_process() -> dict[str, set[str]]:
    """graph(), computed by another interpreter: CPython 3.11.7's ast.parse can
    fail with "AST constructor recursion depth mismatch" late in a long test
    run (python/cpython#106905), never in a fresh process."""
    script = "import json, test_imports; print(json.dumps({k: sorted(v) for k, v in test_imports.graph().items()}))"
    output = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {module: set(targets) for module, targets in json.loads(output).items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_the_walk_finds_a_cycle_when_there_is_one() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_walk_sees_relative_and_lazy_imports() -> None:
    edges = graph_in_a_fresh_process()
    assert "rtcroom.connection" in edges["rtcroom.endpoints.websocket"]  # from ..connection
    assert "rtcroom.serve" in edges["rtcroom.cli"]  # inside serve()
    assert "rtcroom.broker.redis" in edges["rtcroom.app"]  # only with --broker


def test_no_import_cycles() -> None:
    edges = graph_in_a_fresh_process()
    assert cycle(edges) is None, " -> ".join(cycle(edges) or [])
