"""Test helper: a scan's files agree with its report.

``assert_scan_agrees(out_dir)`` checks that ``kept + dropped == seen``, that ``kept.jsonl`` holds exactly
``kept`` lines and ``dropped.jsonl`` exactly ``dropped`` lines, that the reasons in ``dropped.jsonl`` are the
report's ``dropped_by_reason``, and (given ``n_input``) that every input record was seen once.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple


def read_jsonl(path: str) -> List[Any]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def assert_scan_agrees(out_dir: str | os.PathLike, *, n_input: Optional[int] = None
                       ) -> Tuple[Dict[str, Any], List[Any], List[Any]]:
    """Check the scan in ``out_dir``; returns ``(report, kept records, dropped rows)``."""
    out_dir = os.fspath(out_dir)
    with open(os.path.join(out_dir, "report.json"), encoding="utf-8") as fh:
        rep = json.load(fh)
    kept = read_jsonl(os.path.join(out_dir, "kept.jsonl"))
    dropped = read_jsonl(os.path.join(out_dir, "dropped.jsonl"))
    assert rep["kept"] + rep["dropped"] == rep["seen"], rep
    assert len(kept) == rep["kept"], f"kept.jsonl has {len(kept)} lines, the report counts kept={rep['kept']}"
    assert len(dropped) == rep["dropped"], f"dropped.jsonl has {len(dropped)} lines, the report counts {rep['dropped']}"
    assert dict(Counter(r["reason"] for r in dropped)) == rep["dropped_by_reason"]
    assert rep.get("replayed", 0) == 0, "a scan is one pass: nothing is replayed"
    if n_input is not None:
        assert rep["seen"] == n_input, f"{n_input} records in, seen={rep['seen']}"
    return rep, kept, dropped
