"""The page around the sections: escaping (with bidi/control-character neutralising), the CSS and the shell.

Every string taken from a report reaches the page through :func:`escape` (or :func:`visible` for text that
matplotlib escapes itself): unprintable characters become U+FFFD, and bidirectional and C1 control characters
become visible ``\\u202e`` escapes, so an id holding U+202E cannot show its characters backwards. The page
carries a Content-Security-Policy that forbids scripts and every network request.

Example:
    >>> escape('<b dir="rtl">\\u202eabc</b>')
    '&lt;b dir=&quot;rtl&quot;&gt;\\\\u202eabc&lt;/b&gt;'
    >>> document(title="t", subtitle="", sections=[("a", "A", Markup("<p>x</p>"))], notes=[],
    ...          status=None, version="0").startswith("<!DOCTYPE html>")
    True
"""
from __future__ import annotations

import html
import re
from typing import Any, Optional, Sequence, Tuple

__all__ = ["CSP", "CSS", "Markup", "clip", "document", "escape", "visible"]


class Markup(str):
    """A string of trusted markup (built from escaped parts); any other string gets escaped."""


#: C0 controls (but tab, newline, carriage return), DEL and lone surrogates: not text a page should carry.
UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: bidirectional controls (embeddings, overrides, isolates, marks) and C1 controls: they would reorder or hide
#: the text around them (an id holding U+202E shows its characters backwards); shown as visible escapes
INVISIBLE = re.compile("[\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with unprintable characters as U+FFFD and bidi/C1 controls as visible ``\\u202e`` escapes.

    Example:
        >>> visible("a\\u202eb\\x00")
        'a\\\\u202eb\\ufffd'
    """
    return INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", UNPRINTABLE.sub("\ufffd", text))


def escape(value: Any) -> str:
    """HTML-escape ``str(value)`` (quotes too); unprintable and bidi control characters are neutralised first."""
    return html.escape(visible(str(value)), quote=True)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


CSS = """
:root{--fg:#1f2933;--muted:#616e7c;--line:#e4e7eb;--bg:#f5f7fa;--accent:#3b6ea8;--drop:#b8434d;--keep:#4e9a51}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg)}
header{background:#1f2933;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:22px;font-weight:600}
header p{margin:4px 0 0;color:#cbd2d9;font-size:13px}
nav{background:#fff;border-bottom:1px solid var(--line);padding:8px 32px;position:sticky;top:0;z-index:1;
display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:var(--accent);text-decoration:none;font-size:13px;white-space:nowrap}
main{max-width:1180px;margin:0 auto;padding:8px 32px 32px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 20px;margin:16px 0}
h2{font-size:18px;margin:0 0 10px;font-weight:600}
h3{font-size:14px;margin:14px 0 6px;color:var(--muted);font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:8px;padding:10px 14px;border-top:4px solid var(--accent)}
.card-kept{border-top-color:var(--keep)}.card-dropped{border-top-color:var(--drop)}
.card-replayed{border-top-color:#7b5ea7}.card-speed{border-top-color:#6f7781}
.card-label{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted)}
.card-value{font-size:26px;font-weight:600;font-variant-numeric:tabular-nums}
.card-sub{font-size:12px;color:var(--muted)}
.split{display:flex;height:10px;border-radius:5px;overflow:hidden;margin-top:12px;background:var(--line)}
.split-kept{background:var(--keep)}.split-dropped{background:var(--drop)}
table{border-collapse:collapse;width:100%;margin:6px 0;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--bg);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
table.kv td:first-child{width:38%}
code{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;background:var(--bg);padding:0 3px;border-radius:3px;
overflow-wrap:break-word}
table.names code{white-space:nowrap}
table.clusters code{display:inline-block;margin:1px 0}
table.stages td:nth-child(4){max-width:420px}
table.stages td:nth-child(4) code{overflow-wrap:anywhere}
pre{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;background:var(--bg);padding:8px;border-radius:6px;
overflow:auto;max-height:360px;white-space:pre-wrap;overflow-wrap:anywhere}
.muted{color:var(--muted);font-size:13px}
.lead{font-size:15px;margin:4px 0 6px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.two-col{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(360px,100%),1fr));gap:0 24px}
.wide-right{display:grid;grid-template-columns:minmax(min(280px,100%),1fr) minmax(min(520px,100%),2fr);gap:0 24px}
@media (max-width:900px){.wide-right{grid-template-columns:1fr}}
.tbl{overflow-x:auto}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(420px,100%),1fr));gap:8px 16px}
figure{margin:6px 0}
svg.plot{max-width:100%;height:auto;display:block}
svg.plot *{stroke-linejoin:round;stroke-linecap:butt}
.notes{border-left:4px solid #d9822b;background:#fff8f0}
ul.plain{margin:4px 0;padding-left:20px}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
footer{text-align:center;color:var(--muted);font-size:12px;padding:0 0 24px}
"""

#: Nothing may load from anywhere: no scripts, no network; inline styles and data: images only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


def document(*, title: str, subtitle: str, sections: Sequence[Tuple[str, str, str]], notes: Sequence[str],
             status: Optional[Tuple[str, str, str]], version: str) -> str:
    """The whole page: head (CSP, CSS), header, navigation, an optional status banner, notes and sections.

    Args:
        title: the page title (escaped here).
        subtitle: the line under the title (escaped here).
        sections: ``(anchor, heading, body markup)`` in page order; the ``summary`` section gets no nav link.
        notes: remarks about the report's shape (escaped here).
        status: ``(heading, error, details)`` of a scan that did not succeed, or ``None``.
        version: the torchdataguard version named in the footer.
    """
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{escape(CSP)}">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
           f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"]
    out.append("<nav>" + " ".join(f'<a href="#{a}">{escape(h)}</a>' for a, h, _ in sections if a != "summary")
               + "</nav>")
    out.append("<main>")
    if status is not None:
        head, error, details = status
        out.append(f'<section class="notes" id="status"><h2>{escape(head)}</h2><p>{escape(error)}</p>'
                   f"<p>{escape(details)}</p></section>")
    if notes:
        items = "".join(f"<li>{escape(n)}</li>" for n in notes)
        out.append(f'<section class="notes" id="notes"><h2>Notes</h2><ul>{items}</ul></section>')
    for anchor, heading, body in sections:
        out.append(f'<section id="{escape(anchor)}"><h2>{escape(heading)}</h2>{body}</section>')
    out.append(f"</main><footer>torchdataguard {escape(version)} \u00b7 a self-contained page: it loads nothing "
               f"from the network</footer></body></html>")
    return "\n".join(out) + "\n"
