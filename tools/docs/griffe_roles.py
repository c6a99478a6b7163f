"""A griffe extension for the documentation site: Sphinx roles in docstrings become Markdown links.

The docstrings cross-reference with Sphinx roles (``:class:`~torchdataguard.Guard```, ``:mod:`.scrubber```).
mkdocstrings renders Markdown, where those would show as raw text; this extension rewrites each role into an
optional autorefs link (a link where the target is documented on the site, plain code otherwise), and reads a
Google-style ``Example:`` section as ``Examples:`` (so its ``>>>`` lines render as code). Loaded by
``mkdocs.yml`` (``plugins: mkdocstrings: handlers: python: options: extensions``); nothing imports it.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

#: Google-style "Example:" is an admonition to griffe; "Examples:" renders the ``>>>`` lines as code
EXAMPLE_HEADER = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`(~?)([^`<>]+)`")


def _target(name: str, obj: griffe.Object) -> str:
    """The full dotted path ``name`` names, read from ``obj``'s module as Python resolves a relative import."""
    if not name.startswith("."):
        return name
    module = obj if obj.is_module else obj.module
    package = module.path if module.is_package else module.path.rpartition(".")[0]
    dots = len(name) - len(name.lstrip("."))
    for _ in range(dots - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name.lstrip('.')}"


def rewrite(text: str, obj: griffe.Object) -> str:
    """``text`` with every Sphinx role replaced by an optional autorefs link around a code span."""

    def repl(m: re.Match) -> str:
        short, name = m.group(1) == "~", m.group(2).strip()
        target = _target(name, obj)
        shown = target.rsplit(".", 1)[-1] if short or name.startswith(".") else name.lstrip(".")
        return f'<autoref identifier="{target}" optional><code>{shown}</code></autoref>'

    return EXAMPLE_HEADER.sub(r"\1Examples:", ROLE.sub(repl, text))


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring the site renders."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:  # noqa: D102
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value, obj)
