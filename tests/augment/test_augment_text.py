"""TextAugment: EDA operations, reproducibility, synonyms, guard integration and counts."""
import pickle
from collections import Counter

import pytest

import torchdataguard as tdg
from torchdataguard.augment import TextAugment
from torchdataguard.core.stage import Example
from torchdataguard.errors import ConfigError

TEXT = "The quick brown fox jumps over the lazy dog near the quiet river bank today"


def ex(text=TEXT, id_=0):
    return Example(id_, {"text": text, "label": 1}, text, "text")


def test_swap_keeps_the_words():
    out = TextAugment(rate=0.2, ops=["swap"], seed=0).process(ex())
    assert Counter(out.text.split()) == Counter(TEXT.split()) and out.text != TEXT
    assert out.counts == {"augment/text/augmented": 1, "augment/text/swap": 3}
    assert out.record == {"text": out.text, "label": 1}


def test_delete_removes_about_the_rate_and_keeps_order():
    total = kept = 0
    aug = TextAugment(rate=0.3, ops=["delete"], seed=1)
    for i in range(200):
        out = aug.process(ex(id_=i))
        words = out.text.split()
        it = iter(TEXT.split())
        assert all(w in it for w in words)  # a subsequence
        total += len(TEXT.split())
        kept += len(words)
    assert 0.62 < kept / total < 0.78


def test_insert_without_synonyms_copies_words_of_the_text():
    out = TextAugment(rate=0.2, ops=["insert"], seed=2).process(ex())
    words = out.text.split()
    assert len(words) == len(TEXT.split()) + 3
    assert set(words) <= set(TEXT.split())
    assert out.counts["augment/text/insert"] == 3


def test_synonyms_from_a_dict_keep_punctuation_and_case():
    syn = {"quick": ["fast", "speedy"], "dog": ["hound"], "river": ["stream"]}
    aug = TextAugment(rate=1.0, ops=["synonym"], synonyms=syn, seed=0)
    out = aug.process(ex("The Quick dog, by the river."))
    assert out.text.split()[1] in ("Fast", "Speedy")
    assert "hound," in out.text and "stream." in out.text
    assert out.counts["augment/text/synonym"] == 3  # only words with a synonym change
    one = TextAugment(rate=0.2, ops=["synonym"], synonyms=syn, seed=0).process(ex("The Quick dog, by the river."))
    assert one.counts["augment/text/synonym"] == 1
    fn = TextAugment(rate=1.0, ops=["synonym"], synonyms=lambda w: ["X"] if w == "dog" else [], seed=0)
    assert fn.process(ex("a dog here")).text == "a X here"


def test_whitespace_between_remaining_words_is_kept():
    text = "line one\nline two\n\nline three"
    out = TextAugment(rate=0.3, ops=["swap"], seed=4).process(ex(text))
    assert out.text.count("\n") == text.count("\n")


def test_reproducible_per_id_and_epoch():
    a, b = TextAugment(rate=0.3, seed=7), TextAugment(rate=0.3, seed=7)
    assert a.process(ex(id_=5)).text == b.process(ex(id_=5)).text
    outs = {a.process(ex(id_=i)).text for i in range(20)}
    assert len(outs) > 10  # different records get different choices
    first = a.process(ex(id_=5)).text
    a.set_epoch(1)
    assert a.process(ex(id_=5)).text != first or a.process(ex(id_=6)).text != b.process(ex(id_=6)).text
    twin = pickle.loads(pickle.dumps(a))
    assert twin.process(ex(id_=9)).text == a.process(ex(id_=9)).text
    c = TextAugment(rate=0.3, seed=7)
    c.load_state_dict(a.state_dict())
    assert c.process(ex(id_=9)).text == a.process(ex(id_=9)).text


def test_p_and_non_text_records():
    aug = TextAugment(rate=0.3, p=0.0, seed=0)
    e = ex()
    assert aug.process(e) is e
    img = Example(0, {"pixels": [1, 2]}, None, None)
    assert TextAugment(seed=0).process(img) is img


def test_guard_wraps_a_list_and_reports_counts():
    texts = [f"record number {i} says the quick brown fox jumps" for i in range(30)]
    guard = tdg.Guard([TextAugment(rate=0.2, seed=0)], device="cpu", progress=False)
    out = guard.wrap(texts)
    assert len(out) == 30 and sum(o != t for o, t in zip(out, texts)) >= 25
    rep = guard.report()
    assert rep["counts"]["augment/text/augmented"] >= 25
    assert sum(rep["counts"].get(f"augment/text/{op}", 0) for op in ("insert", "swap", "delete")) >= 25
    assert rep["stages"][0]["config"]["rate"] == 0.2
    assert "text_augment" in tdg.core.stage.STAGES


@pytest.mark.parametrize("kw, word", [(dict(rate=0.0), "rate=0.0"), (dict(p=2), "p=2"),
                                      (dict(ops=["shuffle"]), "ops="), (dict(ops=["synonym"]), "no synonym source"),
                                      (dict(synonyms=3), "synonyms=3"), (dict(seed=-2), "seed=-2")])
def test_bad_settings(kw, word):
    with pytest.raises(ConfigError, match=word):
        TextAugment(**kw)


def test_wordnet_without_nltk_data_says_how_to_fix():
    import importlib.util

    if importlib.util.find_spec("nltk") is not None:
        pytest.skip("nltk is installed here")
    with pytest.raises(ConfigError, match="NLTK"):
        TextAugment(synonyms="wordnet")
