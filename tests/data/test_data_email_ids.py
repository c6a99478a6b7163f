"""Ids that look like e-mail addresses are warned about in the Python API too (the scan command said it on
stderr; Guard(id_field=...) under the Trainer wrote them into report.json without a word)."""
import warnings

import datasets
import pytest

import torchdataguard as tdg

ROWS = [{"user": "jane.doe@example.org", "text": "hello there friend of mine"},
        {"user": "bob@example.com", "text": "hello there friend of mine"},
        {"user": "carol@example.net", "text": "something else entirely"}]


def caught(**kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        g = tdg.Guard([tdg.ExactDedup()], id_field="user", progress=False, **kw)
        g.wrap(ROWS)
        g.wrap(datasets.Dataset.from_list(ROWS), source="again")
    return g, [str(x.message) for x in w if "hold an '@'" in str(x.message)]


def test_email_like_ids_in_clear_are_warned_about_once_without_the_value():
    g, msgs = caught()
    assert len(msgs) == 1
    assert "id_field='user'" in msgs[0] and "hash_ids=" in msgs[0]
    assert not any(r["user"] in msgs[0] for r in ROWS)  # the field, never a value
    assert g.report()["matches"][0]["matched"] == "jane.doe@example.org"  # what the warning is about


@pytest.mark.parametrize("kw, rows", [({"hash_ids": b"k" * 16}, ROWS), ({}, [dict(r, user=f"u{i}") for i, r in enumerate(ROWS)])])
def test_hashed_or_plain_ids_are_not_warned_about(kw, rows):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tdg.Guard([tdg.ExactDedup()], id_field="user", progress=False, **kw).wrap(rows)
    assert not [x for x in w if "hold an '@'" in str(x.message)]
