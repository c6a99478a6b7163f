"""The README and the documentation site say only what the package does.

* every ``tdg.X`` / ``torchdataguard.X...`` name in the code of README.md and docs/*.md (fenced blocks and inline
  code) resolves, and so does every name imported from the package in a Python block and every API entry
  (``::: torchdataguard.X``);
* docs/api.md documents exactly ``tdg.__all__`` (a new public name needs an entry there);
* the README's Python blocks that hold no ``...`` run as they are (the marker of a sketch is ``...``);
* the flags in ``torchdataguard scan`` / ``demo`` command lines exist in that command's ``--help``;
* every test the documents name (``tests/...py``, ``::test_x``, a backquoted ``test_x``) exists.
"""
from __future__ import annotations

import ast
import contextlib
import glob
import importlib
import inspect
import io
import re
import shlex
from pathlib import Path
from typing import Iterator, List, NamedTuple, Set

import pytest

import torchdataguard as tdg
from torchdataguard.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
#: ``tdg.X.Y`` / ``torchdataguard.X.Y``, not a file name (``torchdataguard.guard/1``, ``out/torchdataguard.json``)
NAME = re.compile(r"(?<![\w./-])(tdg|torchdataguard)((?:\.[A-Za-z_]\w*)+)(?![\w/-])")
INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")


class Block(NamedTuple):
    path: Path
    line: int
    lang: str
    code: str


def blocks(path: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
            j += 1
        yield Block(path, i + 1, lang.lower(), "\n".join(body) + "\n")
        i = j + 1


def prose(path: Path) -> str:
    """The Markdown outside fenced blocks."""
    out, inside, fence = [], False, ""
    for line in path.read_text(encoding="utf-8").splitlines():
        m = FENCE.match(line)
        if not inside and m:
            inside, fence = True, m.group(2)
        elif inside and line.strip().startswith(fence):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def inline_code(path: Path) -> List[str]:
    return [m.group(2) for m in INLINE.finditer(prose(path))]


def resolve(dotted: str):
    """The object ``dotted`` names: attributes first, then submodules (``torchdataguard.pii.synthetic``)."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for k, part in enumerate(parts[1:], start=1):
        if hasattr(obj, part):
            obj = getattr(obj, part)
        elif inspect.ismodule(obj):
            obj = importlib.import_module(".".join(parts[: k + 1]))
        else:
            raise AttributeError(f"{'.'.join(parts[:k])} has no attribute {part!r}")
    return obj


def python_names(code: str) -> Set[str]:
    """The package names a Python block uses: its imports, and attribute chains on the modules it imports."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    aliases, names = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "torchdataguard":
                    names.add(a.name)
                    if a.asname:
                        aliases[a.asname] = a.name
                    else:
                        aliases["torchdataguard"] = "torchdataguard"
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "torchdataguard":
            for a in node.names:
                names.add(f"{node.module}.{a.name}")
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                chain.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name) and inner.id in aliases and inspect.ismodule(_try(aliases[inner.id])):
                names.add(".".join([aliases[inner.id], *reversed(chain)]))
    return names


def _try(dotted: str):
    try:
        return resolve(dotted)
    except Exception:  # noqa: BLE001  (a wrong import is reported by the test that lists it)
        return None


def names_in(path: Path) -> Set[str]:
    texts = [b.code for b in blocks(path)] + inline_code(path)
    found = set()
    for text in texts:
        for m in NAME.finditer(text):
            found.add("torchdataguard" + m.group(2))
    for b in blocks(path):
        if b.lang in ("python", "py", "pycon"):
            found |= python_names(b.code)
    found |= set(re.findall(r"^:::\s+([\w.]+)\s*$", prose(path), flags=re.MULTILINE))  # mkdocstrings entries
    return found


def test_every_package_name_in_the_documents_resolves():
    missing = []
    for path in DOCS:
        for name in sorted(names_in(path)):
            try:
                resolve(name)
            except (AttributeError, ImportError) as e:
                missing.append(f"{path.relative_to(ROOT)}: {name} ({e})")
    assert not missing, "names in the documents that the package does not have:\n" + "\n".join(missing)


def test_the_name_check_catches_an_old_path():
    """The check above is not vacuous: an old internal path and a misspelt name are found and do not resolve."""
    code = "from torchdataguard.privacy import anonymity as an\nguard = tdg.Gaurd([])\n"
    found = python_names(code) | {"torchdataguard" + m.group(2) for m in NAME.finditer(code)}
    assert {"torchdataguard.privacy.anonymity", "torchdataguard.Gaurd"} <= found
    for name in found:
        with pytest.raises((AttributeError, ImportError)):
            resolve(name)


def api_entries() -> List[str]:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    return re.findall(r"^:::\s+([\w.]+)\s*$", text, flags=re.MULTILINE)


def test_the_api_reference_documents_exactly_the_public_names():
    documented = {}
    for path in api_entries():
        obj = resolve(path)
        name = path.rsplit(".", 1)[-1]
        assert getattr(tdg, name, None) is obj, f"docs/api.md documents {path}, which is not tdg.{name}"
        documented[name] = path
    assert set(documented) == set(tdg.__all__), (
        f"tdg.__all__ without an entry in docs/api.md: {sorted(set(tdg.__all__) - set(documented))}; "
        f"entries that are not in tdg.__all__: {sorted(set(documented) - set(tdg.__all__))}")
    assert len(api_entries()) == len(documented), "docs/api.md documents a name twice"


def runnable_readme_blocks() -> List[Block]:
    return [b for b in blocks(ROOT / "README.md") if b.lang == "python" and "..." not in b.code]


def test_the_readme_has_runnable_examples_of_each_way_of_use():
    """Issue 11's front door: one short example per way of use (wrap, Trainer callback, scan, DP); the runnable
    ones run above, the others (a Trainer needs a model) are shown; streams, datasets and loops live in docs/."""
    code = "\n".join(b.code for b in runnable_readme_blocks())
    for needle in ("guard.wrap(Texts(", "make_private"):
        assert needle in code, f"no runnable README example holds {needle!r}"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for needle in ("callbacks=[tdg.GuardCallback(guard)]", "torchdataguard scan "):
        assert needle in readme, f"the README shows no example with {needle!r}"


@pytest.mark.parametrize("block", runnable_readme_blocks(), ids=lambda b: f"README.md:{b.line}")
def test_readme_python_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(compile(block.code, f"README.md:{block.line}", "exec"), {"__name__": "__readme__"})
    # what the block prints is what its comments say it prints
    printed = out.getvalue().splitlines()
    said = [c.strip() for c in re.findall(r"^print\(.*#(.*)$", block.code, flags=re.MULTILINE)]
    for expected, got in zip(said, printed):
        assert got == expected, f"README.md:{block.line} prints {got!r}; its comment says {expected!r}"


def help_flags(command: str) -> Set[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        cli_main([command, "--help"])
    return set(re.findall(r"(?<![\w-])--[a-z][\w-]*", out.getvalue()))


def command_lines(path: Path) -> Iterator[str]:
    """``torchdataguard scan|demo ...`` command lines in shell blocks and inline code (continuations joined)."""
    for b in blocks(path):
        if b.lang in ("", "bash", "sh", "shell", "console", "text"):
            yield from b.code.replace("\\\n", " ").splitlines()
    yield from inline_code(path)


def test_cli_flags_in_the_documents_exist():
    known = {c: help_flags(c) for c in ("scan", "demo")}
    assert {"--out", "--stages", "--text-field"} <= known["scan"]
    unknown, seen = [], 0
    for path in DOCS:
        for line in command_lines(path):
            for m in re.finditer(r"torchdataguard (scan|demo)\b([^#|;&]*)", line):
                try:
                    words = shlex.split(m.group(2))
                except ValueError:
                    words = m.group(2).split()
                for word in words:
                    flag = word.split("=", 1)[0]
                    if flag.startswith("--"):
                        seen += 1
                        if flag not in known[m.group(1)]:
                            unknown.append(f"{path.relative_to(ROOT)}: torchdataguard {m.group(1)} {flag}")
    assert seen > 10
    assert not unknown, "flags the CLI does not have:\n" + "\n".join(unknown)


def test_the_tests_the_documents_name_exist():
    missing = []
    defined = set()
    for f in (ROOT / "tests").rglob("*.py"):
        defined |= set(re.findall(r"^\s*def (test_\w+)", f.read_text(encoding="utf-8"), flags=re.MULTILINE))
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"(tests/[\w/*.-]+\.py)(?:::(\w+))?", text):
            files = glob.glob(str(ROOT / m.group(1)))
            if not files:
                missing.append(f"{path.relative_to(ROOT)}: {m.group(1)}")
            elif m.group(2) and not any(re.search(rf"def {m.group(2)}\b", Path(f).read_text(encoding="utf-8"))
                                        for f in files):
                missing.append(f"{path.relative_to(ROOT)}: {m.group(0)}")
        for name in re.findall(r"`(test_\w+)`", text):
            if name not in defined:
                missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "tests named in the documents that do not exist:\n" + "\n".join(missing)


def test_the_readme_stays_a_front_door():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "\n## Guarantees\n" in text
    assert len(text.splitlines()) <= 270, "README.md is the front door: move the details into docs/"
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), f"README.md links to {link}, which does not exist"

