"""Planner.make_example's fast paths (a plain str, a plain dict with a str or int id) take texts in any script,
and conclude what the full checks conclude: the same id, text and drop reason for every record shape."""
import pytest

import torchdataguard as tdg
from torchdataguard.core import plan as plan_mod

TEXTS = ["plain ascii", "数据去重测试，第二句。", "École straße", "emoji \U0001F600 here", "\ud800 lone surrogate",
         "中文\udfff半个", "   ", "\u3000\u3000", "", "x" * 50]


def _planners(**kw):
    guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, max_chars=40, **kw)
    return guard.planner()


def _outcome(p, record, default_id):
    ex, drop = p.make_example(record, default_id)
    return ex.id, ex.text, ex.text_field, None if drop is None else drop.reason


@pytest.mark.parametrize("id_field", [None, "id"])
def test_fast_paths_agree_with_the_full_checks(monkeypatch, id_field):
    p = _planners(id_field=id_field)
    records = [t for t in TEXTS] + [{"text": t, "id": i} for i, t in enumerate(TEXTS)]
    records += [{"text": t, "id": f"doc-{i}"} for i, t in enumerate(TEXTS)]
    fast = [_outcome(p, r, k) for k, r in enumerate(records)]
    # the full checks alone: no record is a plain str or dict for the fast paths
    monkeypatch.setattr(plan_mod, "_utf8_text", lambda value: False)
    full = [_outcome(p, r, k) for k, r in enumerate(records)]
    assert fast == full
    reasons = {r for *_, r in fast}
    assert {"invalid/not_utf8", "invalid/empty", "invalid/too_long"} <= reasons
    chinese = fast[TEXTS.index("数据去重测试，第二句。") + len(TEXTS)]
    assert chinese == (TEXTS.index("数据去重测试，第二句。") if id_field else len(TEXTS) + 1, "数据去重测试，第二句。",
                       "text", None)


def test_the_utf8_check():
    assert plan_mod._utf8_text("abc") and plan_mod._utf8_text("数据") and plan_mod._utf8_text("\U0001F600")
    assert not plan_mod._utf8_text("a\ud800") and not plan_mod._utf8_text("数\udfff")
