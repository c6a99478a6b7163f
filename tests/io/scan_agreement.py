"""Test helper: a scan's files agree with its report.

``assert_scan_agrees(out_dir)`` checks that ``kept + dropped == seen``, that the kept file holds exactly
``kept`` lines and the dropped file exactly ``dropped`` lines, that the reasons in the dropped file are the
report's ``dropped_by_reason``, that nothing was replayed, and (given ``n_input``) that every input record
was seen once. A complete scan's files are ``kept.jsonl`` / ``dropped.jsonl``; a scan that stopped early
(``"complete": false``) leaves ``kept.partial.jsonl`` / ``dropped.partial.jsonl`` instead, never beside the
final names, and has seen no more records than it read.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple


def read_jsonl(path: str) -> List[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def assert_scan_agrees(out_dir: str | os.PathLike, *, n_input: Optional[int] = None,
                       complete: Optional[bool] = None) -> Tuple[Dict[str, Any], List[Any], List[Any]]:
    """Check the scan in ``out_dir``; returns ``(report, kept records, dropped rows)``."""
    out_dir = os.fspath(out_dir)
    with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as fh:
        rep = json.load(fh)
    done = rep.get("complete", True)
    if complete is not None:
        assert done is complete, f"complete={done!r}, expected {complete!r}: {rep.get('error')}"
    kept_name, dropped_name = ("kept.jsonl", "dropped.jsonl") if done else ("kept.partial.jsonl", "dropped.partial.jsonl")
    names = set(os.listdir(out_dir))
    other = {"kept.jsonl", "dropped.jsonl", "kept.partial.jsonl", "dropped.partial.jsonl"} - {kept_name, dropped_name}
    assert not names & other, f"{sorted(names & other)} beside a report with complete={done}"
    assert rep["outputs"]["kept"].endswith(kept_name) and rep["outputs"]["dropped"].endswith(dropped_name)
    kept = read_jsonl(os.path.join(out_dir, kept_name))
    dropped = read_jsonl(os.path.join(out_dir, dropped_name))
    assert rep["kept"] + rep["dropped"] == rep["seen"], rep
    assert len(kept) == rep["kept"], f"{kept_name} has {len(kept)} lines, the report counts kept={rep['kept']}"
    assert len(dropped) == rep["dropped"], f"{dropped_name} has {len(dropped)} lines, the report counts {rep['dropped']}"
    assert dict(Counter(r["reason"] for r in dropped)) == rep["dropped_by_reason"]
    assert rep.get("replayed", 0) == 0, "a scan is one pass: nothing is replayed"
    if "records_read" in rep:
        assert rep["seen"] <= rep["records_read"], rep
    if n_input is not None:
        assert rep["seen"] == n_input, f"{n_input} records in, seen={rep['seen']}"
    return rep, kept, dropped
