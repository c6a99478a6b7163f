"""The report package keeps the house rules: small modules, no import of the package root, matplotlib and pandas
imported only where plots draw, no private name imported from another module."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import torchdataguard.report as report_pkg

ROOT = pathlib.Path(report_pkg.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT.parent.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(path: pathlib.Path, node: ast.ImportFrom) -> str:
    """The absolute module an ``from X import ...`` names."""
    if node.level == 0:
        return node.module or ""
    base = module_name(path).split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_the_report_is_split_into_small_modules():
    assert len(MODULES) >= 15
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in MODULES}
    assert not (ROOT / "html.py").exists()
    assert all(n < 400 for n in sizes.values()), {k: v for k, v in sizes.items() if v >= 400}


def test_report_modules_never_import_the_package_root_or_private_names():
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = absolute(path, node)
                assert target != "torchdataguard", f"{path.name} imports the package root ({ast.unparse(node)})"
                for alias in node.names:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    assert not private, f"{path.name} imports the private name {alias.name} from {target}"
            elif isinstance(node, ast.Import):
                assert all(a.name != "torchdataguard" for a in node.names), path


def test_matplotlib_and_pandas_are_imported_only_inside_functions():
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not [n for n in names if n.split(".")[0] in ("matplotlib", "pandas")], path
    code = ("import sys; from torchdataguard.report import HtmlReportConfig, render_html; "
            "render_html({'seen': 1, 'dropped_by_reason': {'a/b': 1}}, options=HtmlReportConfig(plots=False)); "
            "print('matplotlib' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False"]


def test_a_scan_report_draws_its_plots_without_importing_matplotlib():
    """The plots of a scan (drops, scores, duplicate similarity and cluster sizes) are written as SVG directly:
    importing and running matplotlib for them cost each scan about 1.5 s (issue 13)."""
    code = ("import sys; from torchdataguard.report import HtmlReportConfig, render_html; "
            "rep = {'seen': 6, 'kept': 3, 'dropped': 3, 'dropped_by_reason': {'duplicate/near': 2, 'quality/x': 1}, "
            "'score_values': {'quality/x': [0.1, 0.5, 0.9]}, "
            "'matches': [{'id': 1, 'matched': 0, 'reason': 'duplicate/near', 'score': 0.9}, "
            "{'id': 2, 'matched': 0, 'reason': 'duplicate/near', 'score': 0.85}]}; "
            "page = render_html(rep, options=HtmlReportConfig(strict=True)); "
            "print(page.count('<svg'), 'matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["4", "False"]  # drops, the score histogram, similarity, cluster sizes
