"""No import circle in aqakit: a static graph of every module's imports (function-level ones too).

An edge A -> B means module A names B in an ``import`` or ``from ... import`` anywhere in its
source (``from pkg import name`` imports ``pkg.name`` when that is a module, else ``pkg``). The
import of a parent package is not an edge, implicit or written out (``import aqakit`` for its
``__version__``): Python has always loaded a module's parent packages before the module itself, so
a package's ``__init__`` re-exporting its submodules is not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aqakit

PACKAGE_ROOT = Path(aqakit.__file__).parent


def module_names() -> dict[str, Path]:
    """Every module of aqakit by dotted name."""
    modules = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The aqakit modules ``name`` (at ``path``) imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = {f"{base}.{alias.name}" for alias in node.names} & set(modules)
            found.update(submodules if len(submodules) == len(node.names) else {base, *submodules})
    ancestors = {".".join(name.split(".")[:depth]) for depth in range(1, name.count(".") + 1)}
    return {module for module in found if module in modules and module != name and module not in ancestors}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (the modules in order, the first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_video_backbones_form_no_circle():
    modules = module_names()
    video = {name: imported_modules(name, path, modules) for name, path in modules.items() if name.startswith("aqakit.video")}
    graph = {name: {target for target in targets if target in video} for name, targets in video.items()}
    assert "aqakit.video.backbone" in graph["aqakit.video.swin"]  # the graph sees real imports
    assert find_cycle(graph) is None, "import circle: " + " -> ".join(find_cycle(graph) or [])


def test_the_checker_finds_a_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_module_of_aqakit_imports_a_module_that_imports_it_back():
    modules = module_names()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
