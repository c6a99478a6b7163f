"""Markup builders the sections share: tables, key/value tables, code spans, notes, id lists.

Every value passes through :func:`~torchdataguard.report.html.page.escape` unless it is already
:class:`~torchdataguard.report.html.page.Markup`.

Example:
    >>> str(table(("name", "n"), [(code("a/b"), 1200)], numeric=(1,)))
    '<div class="tbl"><table><thead><tr><th>name</th><th class=num>n</th></tr></thead><tbody><tr><td><code>a/b</code></td><td class=num>1,200</td></tr></tbody></table></div>'
"""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from .numbers import format_id, format_value
from .page import Markup, escape

__all__ = ["bullet_list", "cell", "code", "flatten", "id_list", "kv_table", "note", "table"]


def cell(value: Any, limit: int = 300) -> str:
    """A table cell's content: markup as it is, anything else formatted and escaped."""
    return value if isinstance(value, Markup) else escape(format_value(value, limit))


def code(value: Any) -> Markup:
    """``value`` as an escaped ``<code>`` span."""
    return Markup(f"<code>{escape(value)}</code>")


def note(text: str) -> Markup:
    """A muted paragraph."""
    return Markup(f'<p class="muted">{escape(text)}</p>')


def bullet_list(items: Iterable[Any]) -> Markup:
    """An escaped ``<ul>`` of the items ('' for none)."""
    lis = "".join(f"<li>{cell(i, 2000)}</li>" for i in items)
    return Markup(f'<ul class="plain">{lis}</ul>' if lis else "")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Iterable[int] = (), cls: str = "",
          limit: int = 300) -> Markup:
    """A table in a horizontally scrolling box; columns in ``numeric`` are right-aligned and never wrap.

    ``cls`` names the table's classes (``names``: code spans in it never wrap, so long rule names stay whole).
    """
    num = set(numeric)
    head = "".join(f'<th{" class=num" if i in num else ""}>{escape(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td{" class=num" if i in num else ""}>{cell(v, limit)}</td>' for i, v in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    klass = f' class="{escape(cls)}"' if cls else ""
    return Markup(f'<div class="tbl"><table{klass}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
                  f"</table></div>")


def kv_table(items: Iterable[Tuple[Any, Any]], *, limit: int = 2000) -> Markup:
    """A two-column ``field | value`` table; values are shown up to ``limit`` characters."""
    rows = [(code(k), v) for k, v in items]
    return table(("field", "value"), rows, cls="kv", limit=limit)


def flatten(obj: Mapping[Any, Any], prefix: str = "", depth: int = 0) -> List[Tuple[str, Any]]:
    """``[(dotted.key, leaf value)]`` of nested mappings (three levels deep at most)."""
    out: List[Tuple[str, Any]] = []
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v and depth < 3:
            out.extend(flatten(v, key + ".", depth + 1))
        else:
            out.append((key, v))
    return out


def id_list(ids: Sequence[Any], cap: int, titles: Optional[Sequence[str]] = None) -> Markup:
    """Up to ``cap`` ids as code spans (with hover titles), then "... and N more"."""
    items = []
    for i, v in enumerate(ids[:cap]):
        title = f' title="{escape(titles[i])}"' if titles else ""
        items.append(f"<code{title}>{escape(format_id(v))}</code>")
    if len(ids) > cap:
        items.append(f'<span class="muted">\u2026 and {len(ids) - cap:,} more</span>')
    return Markup(" ".join(items) or "\u2014")
