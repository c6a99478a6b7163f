"""Benchmark contamination: per evaluation set, its items, the dirty ones and the training documents dropped
(the ``decontaminate`` stage's ``contamination`` entry; left out when the stage did not run)."""
from __future__ import annotations

from typing import Any, Mapping, Optional

from ..context import RenderContext, section
from ..numbers import as_number, format_percent
from ..page import Markup
from ..tables import code, id_list, note, table

__all__ = ["render_contamination"]


@section("contamination", "Benchmark contamination", order=106, keys=("contamination",))
def render_contamination(ctx: RenderContext, rep: Mapping[str, Any]) -> Optional[Markup]:
    """One row per evaluation set, then the dirty item ids of each (score on the clean ones)."""
    sets = ctx.mapping(rep, "contamination")
    if not sets:
        return None
    rows, lists = [], []
    for name, s in sets.items():
        if not isinstance(s, Mapping):
            ctx.notes.append(f"report field 'contamination.{name}' is not an object; skipped")
            continue
        items = as_number(s.get("items")) or 0
        dirty = as_number(s.get("dirty_items")) or 0
        skipped = s.get("skipped_items") if isinstance(s.get("skipped_items"), Mapping) else {}
        rows.append((code(name), items, as_number(s.get("checked_items")), dirty, format_percent(dirty, items),
                     as_number(s.get("documents_dropped")), as_number(s.get("documents_overlapping")),
                     ", ".join(f"{k} {v}" for k, v in skipped.items()) or "\u2014",
                     as_number(s.get("ignored_ngrams"))))
        ids = s.get("dirty_item_ids")
        if isinstance(ids, list) and ids:
            lists.append(f"<p>{code(name)} dirty items: {id_list(ids, ctx.options.max_rows)}</p>")
    head = note("Training documents sharing an n-gram with an evaluation item (normalised as GPT-3 does) were "
                "dropped as contamination/NAME. Dirty items overlap at least one training document: score on the "
                "clean ones (guard.clean_eval_ids(NAME)). Skipped items could not be checked.")
    return Markup(head + table(("eval set", "items", "checked", "dirty", "dirty share", "documents dropped",
                                "documents overlapping", "skipped", "boilerplate n-grams ignored"), rows,
                               numeric=(1, 2, 3, 4, 5, 6, 8)) + "".join(lists))
