"""The shape of the package: arrows run one way (import-linter contracts) and no private name crosses a module.

* :func:`test_import_contracts_are_kept` runs the contracts of ``[tool.importlinter]`` in ``pyproject.toml``
  (layers, independence of the stage families, no import cycles), so a test run without ``.ci/run`` checks them.
* :func:`test_no_private_name_crosses_a_module` walks every module of the package with :mod:`ast` and fails on a
  private name (one leading underscore, not a dunder) of a torchdataguard module used in another module:
  ``from .x import _y``, ``import torchdataguard.x._y``, ``x._y`` on a module bound by an import, and ``obj._y``
  where ``_y`` is defined in no class or scope of the module that reads it (another module's object).
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "torchdataguard"
NAME = "torchdataguard"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def absolute(module: str, path: Path, node: ast.ImportFrom) -> Optional[str]:
    """The absolute module name an ``ImportFrom`` reads from (None for a module outside the package)."""
    if node.level == 0:
        name = node.module or ""
        return name if name == NAME or name.startswith(NAME + ".") else None
    base = module.split(".")
    if not is_package(path):
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def defined_names(tree: ast.AST) -> Set[str]:
    """Every name a module defines for itself: functions, classes, assignments, attributes it sets, parameters."""
    names: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "getattr") \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            names.add(str(node.args[1].value))
        elif isinstance(node, ast.keyword) and node.arg:
            names.add(node.arg)  # e.g. a dataclass(...) or namedtuple field set by keyword
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            names.add(node.value)  # __slots__ entries, namedtuple fields
    return names


def package_private_names() -> Dict[str, Set[str]]:
    """Private names each module of the package defines (its functions, classes, attributes, assignments)."""
    out: Dict[str, Set[str]] = {}
    for module, path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out[module] = {name for name in defined_names(tree) if is_private(name)}
    return out


def private_uses(module: str, path: Path, others: Optional[Dict[str, Set[str]]] = None) -> List[str]:
    """Private names of other torchdataguard modules that the module at ``path`` uses.

    ``others`` maps each module to the private names it defines; an attribute ``obj._y`` on an object of unknown
    type counts when ``_y`` is defined by another module of the package and not by this one (so another
    project's private attributes, e.g. torch's ``module._parameters``, are not this rule's concern).
    """
    others = package_private_names() if others is None else others
    elsewhere = {name for mod, names in others.items() if mod != module for name in names}
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: List[str] = []
    where = os.path.relpath(path, ROOT)
    package_modules: Dict[str, str] = {}  # local name -> torchdataguard module it is bound to
    external: Set[str] = set()  # local names bound to modules or objects from outside the package
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                inside = alias.name == NAME or alias.name.startswith(NAME + ".")
                for part in alias.name.split("."):
                    if inside and is_private(part):
                        found.append(f"{where}:{node.lineno}: import {alias.name}")
                local = alias.asname or alias.name.split(".")[0]
                if inside:
                    package_modules[local] = alias.name if alias.asname else NAME
                else:
                    external.add(local)
        elif isinstance(node, ast.ImportFrom):
            source = absolute(module, path, node)
            if source is None:
                external.update(alias.asname or alias.name for alias in node.names)
                continue
            for part in source.split("."):
                if is_private(part):
                    found.append(f"{where}:{node.lineno}: from {source} import ...")
            for alias in node.names:
                if is_private(alias.name):
                    found.append(f"{where}:{node.lineno}: from {source} import {alias.name}")
                candidate = f"{source}.{alias.name}"
                package_modules[alias.asname or alias.name] = candidate
    own = defined_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not is_private(node.attr):
            continue
        base = node.value
        if isinstance(base, ast.Name):
            if base.id in ("self", "cls"):
                continue
            if base.id in external:
                continue  # another project's private name: not this rule's concern
            if base.id in package_modules:
                found.append(f"{where}:{node.lineno}: {base.id}.{node.attr} ({package_modules[base.id]})")
                continue
        if node.attr not in own and node.attr in elsewhere:
            found.append(f"{where}:{node.lineno}: <{ast.unparse(base)}>.{node.attr} (defined in another module)")
    return found


def test_no_private_name_crosses_a_module() -> None:
    others = package_private_names()
    found = [use for module, path in modules() for use in private_uses(module, path, others)]
    assert not found, "private names used outside their module (give them a public, documented name):\n" + \
        "\n".join(found)


def test_the_private_name_walker_finds_each_form(tmp_path: Path) -> None:
    """The checker itself: each form it promises to find is found, and a module's own private names are not."""
    source = (
        "from .ledger import _hidden\n"
        "from . import ledger as led\n"
        "import torchdataguard.core.stage as st\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self._own = 1\n"
        "    def f(self, other, guard):\n"
        "        return other._own, led._secret, st._table, guard._lock\n"
    )
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    found = private_uses("torchdataguard.core.probe", probe, {"torchdataguard.core.guard": {"_lock"}})
    text = "\n".join(found)
    assert "import _hidden" in text
    assert "led._secret" in text
    assert "st._table" in text
    assert "<guard>._lock" in text
    assert "other._own" not in text


def test_every_module_is_under_400_lines() -> None:
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines()) for _, path in modules()}
    assert len(sizes) > 100
    assert {path: n for path, n in sizes.items() if n >= 400} == {}


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    exe = Path(sys.executable).with_name("lint-imports")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "importlinter.cli"]
    done = subprocess.run(command + ["--no-cache"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-6000:]


def test_no_import_cycle_at_run_time() -> None:
    """No chain of imports executed at run time leads back to where it started (modules and packages alike)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph(NAME, exclude_type_checking_imports=True, cache_dir=None)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in sorted(graph.modules)}
    assert len(edges) > 100  # the whole package was read
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    cycles: List[List[str]] = []
    for root in edges:  # Tarjan's strongly connected components, iteratively
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
            for j in range(i, len(edges[node])):
                nxt = edges[node][j]
                if nxt not in index:
                    work.append((node, j + 1))
                    work.append((nxt, 0))
                    break
                if nxt in stack:
                    low[node] = min(low[node], index[nxt])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        top = stack.pop()
                        component.append(top)
                        if top == node:
                            break
                    if len(component) > 1:
                        cycles.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    assert not cycles, f"import cycles: {cycles}"
