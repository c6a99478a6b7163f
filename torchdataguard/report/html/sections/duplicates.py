"""Duplicate clusters: matched pairs joined into clusters, their similarity and sizes, the largest listed."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping as AbcMapping
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..context import RenderContext, section
from ..numbers import as_number, format_number
from ..page import Markup, escape
from ..plots import PALETTE
from ..tables import id_list, note, table

__all__ = ["clusters", "largest_clusters", "render_duplicates"]


def id_key(value: Any) -> str:
    """A hashable, canonical key for an id of any JSON type (``1`` and ``"1"`` are different ids).

    Plain strings and integers, the usual ids, skip ``json.dumps`` (a third of a 26,000-text scan's report
    writing went there); every type keeps a prefix of its own, so keys of different types never meet.
    """
    kind = type(value)
    if kind is str:
        return "s" + value
    if kind is int:
        return "i" + str(value)
    try:
        return "j" + json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return "r" + repr(value)


def clusters(matches: Sequence[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Union the matched pairs into clusters; members in order of first appearance, largest cluster first."""
    return largest_clusters(matches, None)[0]


def largest_clusters(matches: Sequence[Mapping[str, Any]],
                     top: Optional[int]) -> Tuple[List[Dict[str, Any]], List[int]]:
    """``(described, sizes)``: the largest ``top`` clusters (every one when ``None``) as :func:`clusters` gives
    them, and the size of every cluster, largest first. Only the listed clusters are described (a 250,000-text
    scan has about 75,000 clusters and lists 25: describing them all was most of the report's time)."""
    # keys: a plain int or str id is its own key (an int never equals a str); any other id is the tuple
    # ("k", id_key(id)), which equals no int or str: the same classes as id_key's, without a string per id
    parent: Dict[Any, Any] = {}
    order: Dict[Any, int] = {}
    shown: Dict[Any, Any] = {}
    dropped: Dict[Any, Mapping[str, Any]] = {}

    def find(k: Any) -> Any:
        root = k
        while parent[root] != root:
            root = parent[root]
        while parent[k] != root:
            parent[k], k = root, parent[k]
        return root

    for m in matches:
        mb, ma = m.get("matched"), m.get("id")
        a = ma if type(ma) is int or type(ma) is str else ("k", id_key(ma))
        b = mb if type(mb) is int or type(mb) is str else ("k", id_key(mb))
        if b not in parent:  # the matched (kept) example first
            parent[b] = b
            order[b] = len(order)
            shown[b] = mb
        if a not in parent:
            parent[a] = a
            order[a] = len(order)
            shown[a] = ma
        dropped[a] = m
        ra = a if parent[a] == a else find(a)  # a root (most ids): no call
        rb = b if parent[b] == b else find(b)
        if ra != rb:
            if order[ra] < order[rb]:
                ra, rb = rb, ra
            parent[ra] = rb
    groups: Dict[Any, List[Any]] = {}
    for k in parent:  # in order of first appearance: each group's members come out in that order
        r = parent[k]
        groups.setdefault(r if parent[r] == r else find(k), []).append(k)
    ranked = sorted(groups.values(), key=lambda g: (-len(g), order[g[0]]))
    out = []
    for members in ranked if top is None else ranked[:max(0, top)]:
        # one pass over the members (most clusters are a pair): each dropped member's reason and score once
        kept: List[Any] = []
        drops: List[tuple] = []
        reasons: List[str] = []
        scores: List[float] = []
        for k in members:
            m = dropped.get(k)
            if m is None:
                kept.append(shown[k])
                continue
            reason, score = str(m.get("reason", "")), as_number(m.get("score"))
            drops.append((shown[k], reason, score))
            reasons.append(reason)
            if score is not None:
                scores.append(score)
        out.append({"size": len(members), "first": order[members[0]], "kept": kept, "dropped": drops,
                    "reasons": Counter(reasons), "scores": scores})
    return out, [len(g) for g in ranked]


def near_thresholds(ctx: RenderContext, rep: Mapping[str, Any]) -> List[tuple]:
    """``[(threshold, stage name)]`` of the index stages that have a similarity threshold."""
    out = []
    for st in ctx.sequence(rep, "stages"):
        if isinstance(st, Mapping) and st.get("kind") == "index" and isinstance(st.get("config"), Mapping):
            t = as_number(st["config"].get("threshold"))
            if t is not None:
                out.append((t, str(st.get("name", "?"))))
    return out


def plots(ctx: RenderContext, scores: List[float], near_th: List[tuple], sizes: Counter) -> List[str]:
    """The similarity histogram (when pairs have scores) and the cluster-size bars, as inline SVG."""
    figs = []
    if scores:
        lines = [("", t, f"{name} threshold {format_number(t)}") for t, name in near_th]
        lo = min(scores + [t for t, _ in near_th])
        figs.append(ctx.histogram("similarity of matched duplicate pairs", scores, title="similarity of matched pairs",
                                  lines=lines, color=PALETTE[1], ylabel="pairs", xlabel="estimated Jaccard similarity",
                                  xlim=(lo - 0.01, 1.0)))
    xs = sorted(sizes)
    figs.append(ctx.columns("duplicate cluster sizes", [str(x) for x in xs], [sizes[x] for x in xs],
                            title="cluster sizes", xlabel="examples in the cluster", ylabel="clusters"))
    return [f for f in figs if f]


@section("duplicates", "Duplicate clusters", order=60, keys=("matches", "matches_truncated"))
def render_duplicates(ctx: RenderContext, rep: Mapping[str, Any]) -> Markup:
    """A sentence on pairs and clusters, two plots, and the largest ``max_clusters`` clusters."""
    raw = ctx.sequence(rep, "matches")
    # a contamination drop's match is an evaluation item's id, not a training id: never clustered with them
    # (isinstance against collections.abc.Mapping: typing.Mapping answers the same through Python-level hooks)
    # (a plain dict, the usual entry, is told by its type first: the ABC check costs more)
    raw = [m for m in raw if not ((type(m) is dict or isinstance(m, AbcMapping))
                                  and str(m.get("reason", "")).startswith("contamination/"))]
    matches = [m for m in raw if (type(m) is dict or isinstance(m, AbcMapping)) and "id" in m and "matched" in m]
    truncated = as_number(rep.get("matches_truncated")) or 0
    if len(matches) < len(raw):
        ctx.notes.append(f"{len(raw) - len(matches)} entries of 'matches' lack an id or a matched id; skipped")
    if not matches:
        return note("No duplicate was found." if not truncated else
                    f"{int(truncated):,} duplicate pairs were found but not kept in the report.")
    cap_c, cap_i = ctx.options.max_clusters, ctx.options.max_ids_per_cluster
    found, sizes = largest_clusters(matches, cap_c)
    parts = []
    by_reason = Counter(str(m.get("reason", "")) for m in matches)
    reasons = ", ".join(f"{r} {n:,}" for r, n in by_reason.most_common())
    parts.append(f"<p>{len(matches):,} duplicate pairs ({escape(reasons)}) form {len(sizes):,} clusters; the "
                 f"largest holds {sizes[0]:,} examples. Each cluster keeps its first example and drops the "
                 f"rest (keep-first).</p>")
    if truncated:
        parts.append(note(f"{int(truncated):,} further pairs were counted but not kept in memory "
                          f"(the ledger's max_matches); clusters below come from the kept pairs."))
    scores = [s for s in (as_number(m.get("score")) for m in matches) if s is not None]
    figs = plots(ctx, scores, near_thresholds(ctx, rep), Counter(sizes))
    if figs:
        parts.append('<div class="grid">' + "".join(figs) + "</div>")
    rows = []
    for i, c in enumerate(found, 1):
        ids = [d[0] for d in c["dropped"]]
        titles = [f"{d[1]}" + (f", similarity {format_number(d[2])}" if d[2] is not None else "")
                  for d in c["dropped"]]
        if not c["scores"]:
            sim = "\u2014"
        elif len(set(c["scores"])) > 1:
            sim = f"{format_number(min(c['scores']))}\u2013{format_number(max(c['scores']))}"
        else:
            sim = format_number(c["scores"][0])
        why = ", ".join(f"{r} {n}" for r, n in c["reasons"].most_common())
        rows.append((i, c["size"], id_list(c["kept"], cap_i), id_list(ids, cap_i, titles), why, sim))
    parts.append(f"<h3>Largest clusters (top {len(found)} of {len(sizes):,})</h3>")
    parts.append(table(("#", "size", "kept id", "dropped ids (hover for reason)", "reasons", "similarity"), rows,
                       numeric=(0, 1), cls="clusters"))
    if len(sizes) > cap_c:
        parts.append(note(f"{len(sizes) - cap_c:,} smaller clusters not listed (max_clusters={cap_c}); "
                          f"dropped.jsonl holds every pair."))
    return Markup("".join(parts))
