"""The package's layers (pyproject.toml [tool.importlinter]) hold: import-linter's contracts pass,
no module imports itself back through others (no import cycle), and the root stays small.

Checked against whichever ``dinotools`` is imported (the checkout, or an installed wheel)."""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOT_MODULES_MAX = 8  # the public face: __init__, errors, interfaces, env/ext loaders, command shims


def _require(module: str):
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} must be installed under CI=true (the dev extra)")
        pytest.skip(f"{module} not installed (the dev extra)")


def test_import_linter_contracts_hold():
    _require("importlinter")
    exe = shutil.which("lint-imports")
    assert exe is not None, "lint-imports not on PATH"
    out = subprocess.run([exe, "--config", str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _cycles(graph, modules):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child) & modules))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        component.append(m)
                        if m == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycles():
    _require("grimp")
    import grimp

    graph = grimp.build_graph("dinotools")
    # A package's __init__ re-exporting its own modules is not a cycle between layers' modules.
    modules = {m for m in graph.modules if m != "dinotools"}
    for package in [m for m in modules if graph.find_children(m)]:
        modules.discard(package)
    assert _cycles(graph, modules) == []


def test_cycle_finder_finds_a_planted_cycle():
    _require("grimp")
    import grimp

    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c", "p.d"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    assert _cycles(graph, {"p.a", "p.b", "p.c", "p.d"}) == [["p.a", "p.b", "p.c"]]


def test_package_root_holds_only_the_public_face():
    import dinotools

    root = Path(dinotools.__file__).parent
    modules = sorted(p.name for p in root.glob("*.py"))
    assert len(modules) <= ROOT_MODULES_MAX, modules
