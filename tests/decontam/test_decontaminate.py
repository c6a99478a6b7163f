"""The decontaminate stage on planted contamination in real emails, checked against a plain 13-gram reference."""
import random
import re

import numpy as np
import pytest

import torchdataguard as tdg
from decontam_reference import Reference, words
from torchdataguard.assets import load_spamassassin
from torchdataguard.decontam.ngrams import ngram_hashes, normalized_words
from torchdataguard.errors import ConfigError, StateError


def _body(raw):
    return raw.partition("\n\n")[2]


@pytest.fixture(scope="module")
def emails():
    rows = load_spamassassin()
    return [_body(r["text"]) for r in rows]


def _items(emails, rng, k, lo, hi):
    """``k`` evaluation items: windows of ``lo``-``hi`` words of distinct emails (0..299)."""
    out = []
    for text in emails[:300]:
        w = text.split()
        if len(w) >= hi + 10:
            a = rng.randrange(0, len(w) - hi)
            out.append(" ".join(w[a : a + rng.randint(lo, hi)]))
        if len(out) == k:
            break
    return out


def _perturb(text, rng):
    """Change case, punctuation and spacing, never the words."""
    out = []
    for w in text.split():
        w = w.upper() if rng.random() < 0.2 else (w.lower() if rng.random() < 0.3 else w)
        w = w.strip(".,;:!?\"'") + rng.choice(["", "", ",", ".", "!", " --", ";"])
        out.append(w)
    return "".join(x + rng.choice([" ", "  ", "\n", " \t "]) for x in out)


def _plant(host, piece, rng):
    w = host.split()
    at = rng.randrange(0, len(w) + 1)
    return " ".join(w[:at]) + "\n" + piece + "\n" + " ".join(w[at:])


def _dropped(guard, texts):
    return {ex.id: d for ex, d, _ in guard.process(texts) if d is not None}


def test_planted_contamination_recall_and_no_false_drops(emails):
    rng = random.Random(0)
    items = _items(emails, rng, 120, 70, 160)
    hosts = emails[1000:1600]
    train, planted = [], {}
    for i, host in enumerate(hosts):
        kind = i % 6
        if kind == 0:  # a whole item, perturbed
            j = rng.randrange(len(items))
            train.append(_plant(host, _perturb(items[j], rng), rng))
            planted[i] = {j}
        elif kind == 1:  # a window of 40-60 words of an item
            j = rng.randrange(len(items))
            w = items[j].split()
            a = rng.randrange(0, len(w) - 60)
            train.append(_plant(host, " ".join(w[a : a + rng.randint(40, 60)]), rng))
            planted[i] = {j}
        elif kind == 2:  # several items in one document
            js = rng.sample(range(len(items)), 3)
            doc = host
            for j in js:
                doc = _plant(doc, _perturb(items[j], rng), rng)
            train.append(doc)
            planted[i] = set(js)
        else:
            train.append(host)
    stage = tdg.Decontaminate({"mail": items})
    guard = tdg.Guard([stage], device="cpu", progress=False, chunk_size=64)
    dropped = _dropped(guard, train)
    ref = Reference({"mail": list(enumerate(items))})
    ref_dirty = {i: ref.dirty(t) for i, t in enumerate(train)}
    # recall 1.0 on planted overlaps, with an overlapping item named
    for i, js in planted.items():
        assert i in dropped, f"planted document {i} was kept"
        assert dropped[i].reason == "contamination/mail"
        assert {("mail", j) for j in js} <= ref_dirty[i]
    # the same dirty documents and items as the plain reference: no false drop, nothing missed
    assert set(dropped) == {i for i, d in ref_dirty.items() if d}
    for i, d in dropped.items():
        assert ("mail", d.matched) in ref_dirty[i]
    rep = guard.report()["contamination"]["mail"]
    assert set(rep["dirty_item_ids"]) == {it for d in ref_dirty.values() for _, it in d}
    assert set(rep["dirty_item_ids"]) >= {j for js in planted.values() for j in js}
    assert rep["items"] == len(items) and rep["documents_dropped"] == len(dropped)
    assert guard.report()["dropped_by_reason"] == {"contamination/mail": len(dropped)}
    assert set(guard.clean_eval_ids("mail")) == set(range(len(items))) - set(rep["dirty_item_ids"])


def test_documents_sharing_only_short_phrases_are_kept(emails):
    rng = random.Random(1)
    items = _items(emails, rng, 40, 40, 80)
    train = []
    for i, host in enumerate(emails[2000:2200]):
        w = items[i % len(items)].split()
        a = rng.randrange(0, len(w) - 12)
        train.append(_plant(host, " ".join(w[a : a + 12]), rng))  # 12 shared words: below a 13-gram
    ref = Reference({"mail": list(enumerate(items))})
    expected = {i for i, t in enumerate(train) if ref.dirty(t)}  # real overlaps the emails may hold anyway
    guard = tdg.Guard([tdg.Decontaminate({"mail": items})], device="cpu", progress=False)
    assert set(_dropped(guard, train)) == expected
    assert len(expected) < len(train) // 10


def test_hashes_match_the_plain_normalisation(emails):
    texts = emails[:300] + ["Don't  STOP—me now!", "Ça va? Très bien.", "今天天气很好，我们去公园散步吧。", "", "a\x00b c"]
    h = ngram_hashes(texts, 5)
    by_text = {}
    for i, t in enumerate(texts):
        assert normalized_words(t) == words(t.replace("\x00", " "))
        w = normalized_words(t)
        grams = [" ".join(w[p : p + 5]) for p in range(len(w) - 4)]
        got = h.hashes[h.offsets[i] : h.offsets[i + 1]].tolist()
        assert len(got) == len(grams)
        for g, x in zip(grams, got):
            assert by_text.setdefault(g, x) == x


def test_several_benchmarks_and_min_overlap():
    a = "the quick brown fox jumps over the lazy dog while the farmer watches from his old red tractor"
    b = ("seven friends shared three pizzas cut into eight slices each and every friend ate the same number "
         "of slices so how many slices did each friend eat")
    doc_both = f"Intro. {a.upper()}! And also: {b}. The end."
    doc_part = "Note: " + " ".join(b.split()[:14]) + " and nothing else"  # 2 of the item's 23 n-grams
    guard = tdg.Guard([tdg.Decontaminate({"animals": [a], "math": [b]}, min_overlap=0.5)], device="cpu",
                      progress=False)
    dropped = _dropped(guard, [doc_both, doc_part, "unrelated text"])
    assert list(dropped) == [0]
    assert dropped[0].reason == "contamination/animals" and dropped[0].score == 1.0  # the larger overlap
    rep = guard.report()["contamination"]
    assert rep["animals"]["dirty_item_ids"] == [0] and rep["math"]["dirty_item_ids"] == [0]
    assert rep["math"]["documents_overlapping"] == 1 and rep["math"]["documents_dropped"] == 0
    # without min_overlap the partial document is dirty too
    guard = tdg.Guard([tdg.Decontaminate({"animals": [a], "math": [b]})], device="cpu", progress=False)
    assert list(_dropped(guard, [doc_part])) == [0]


def test_boilerplate_ngrams_are_ignored_after_max_train_count():
    footer = "to unsubscribe from this mailing list send an empty message to the list server address today"
    item = f"{footer} and then answer the question about the three apples"
    train = [f"message number {i} says hello. {footer}" for i in range(10)]
    guard = tdg.Guard([tdg.Decontaminate({"q": [item]}, max_train_count=3)], device="cpu", progress=False)
    dropped = _dropped(guard, train)
    assert sorted(dropped) == [0, 1, 2]
    rep = guard.report()["contamination"]["q"]
    assert rep["ignored_ngrams"] == len(footer.split()) - 12 and rep["documents_dropped"] == 3


def test_a_hash_hit_is_verified_before_a_drop(monkeypatch):
    stage = tdg.Decontaminate({"q": ["one two three four five six seven eight nine ten eleven twelve thirteen"]})
    real_query = stage.index.query

    def colliding(hashes):  # every n-gram "collides" with the item's first n-gram
        rows = np.arange(hashes.size)
        return rows, np.zeros(hashes.size, dtype=np.int64)

    monkeypatch.setattr(stage.index, "query", colliding)
    guard = tdg.Guard([stage], device="cpu", progress=False)
    clean = "a b c d e f g h i j k l m n o p q r s t u v w x y z"
    assert _dropped(guard, [clean]) == {}
    assert guard.report()["counts"]["contamination/unverified_hash_hits"] == 1
    monkeypatch.setattr(stage.index, "query", real_query)
    assert list(_dropped(guard, ["zero ONE two, three four five six seven eight nine ten eleven twelve thirteen"]))


def test_chinese_text_uses_character_ngrams():
    item = "小明有三个苹果，他又买了五个苹果，然后吃掉了两个，请问他现在还有几个苹果？"
    doc = "今天的作业题目是这样的：小明有三个苹果。他又买了五个苹果！然后吃掉了两个，请问他现在还有几个苹果。答案是六个。"
    near = "小明有三个苹果和一只猫。"  # 6 shared characters only
    guard = tdg.Guard([tdg.Decontaminate({"zh": [item]})], device="cpu", progress=False)
    dropped = _dropped(guard, [doc, near])
    assert list(dropped) == [0] and dropped[0].matched == 0
    ref = Reference({"zh": [(0, item)]})
    assert ref.dirty(doc) and not ref.dirty(near)


# the format characters, and (since the eighteenth session) the other default-ignorable ones: variation selectors
# (emoji presentation, ideographic), the combining grapheme joiner, the Hangul fillers
@pytest.mark.parametrize("mark", ["\u200b", "\u00ad", "\u200d", "\u2060", "\ufeff", "\u200f", "\ufe0f",
                                  "\U000e0100", "\u034f", "\u3164", "\uffa0"])
def test_invisible_characters_inside_words_do_not_hide_contamination(emails, mark):
    rng = random.Random(7)
    item = _items(emails, rng, 1, 30, 40)[0]
    # a zero-width character (or soft hyphen, bidi mark ...) inside every third word of the copied item
    hidden = " ".join(w[:1] + mark + w[1:] if i % 3 == 0 and len(w) > 1 else w for i, w in enumerate(item.split()))
    guard = tdg.Guard([tdg.Decontaminate({"bench": [item]})], device="cpu", progress=False)
    dropped = _dropped(guard, [f"Some text before. {hidden} And some text after.", "An unrelated training text."])
    assert list(dropped) == [0]
    assert Reference({"bench": [(0, item)]}).dirty(hidden)


FRENCH = ("Le café de la gare était fermé, alors l'élève a dû marcher jusqu'à l'hôtel près de la rivière sous "
          "la pluie d'été, sans son parapluie ni sa clé, et il est arrivé trempé à la réunion du comité.")


@pytest.mark.parametrize("mark", ["\u200b", "\u00ad", "\u200d", "\u2060", "\ufeff", "\u200f", "\ufe0f",
                                  "\u034f", "\u3164"])
def test_invisible_characters_between_letters_and_accents_do_not_hide_contamination(mark):
    import unicodedata
    # decomposed text (e + U+0301) with the invisible character between each letter and its accent: NFKC must
    # not be kept from composing them (it is deleted before NFKC)
    hidden = "".join(mark + ch if unicodedata.combining(ch) else ch for ch in unicodedata.normalize("NFD", FRENCH))
    assert hidden.count(mark) > 10
    guard = tdg.Guard([tdg.Decontaminate({"fr": [FRENCH]})], device="cpu", progress=False)
    dropped = _dropped(guard, [f"Avant. {hidden} Après.", "Un texte sans rapport."])
    assert list(dropped) == [0]
    assert normalized_words(hidden) == normalized_words(FRENCH)
    assert Reference({"fr": [(0, FRENCH)]}).dirty(hidden)


def test_bad_evaluation_sets_are_refused_clearly():
    with pytest.raises(ConfigError, match="'gsm8k' is empty"):
        tdg.Decontaminate({"gsm8k": []})
    with pytest.raises(ConfigError, match="is a path"):
        tdg.Decontaminate({"gsm8k": "gsm8k_test.jsonl"})
    with pytest.raises(ConfigError, match=r"\['question'\] are absent from every item"):
        tdg.Decontaminate({"gsm8k": [{"q": "x " * 20}]}, fields=["question"])
    with pytest.raises(ConfigError, match="none of its 2 items has 13"):
        tdg.Decontaminate({"mmlu": ["too short", "also short"]})
    with pytest.raises(ConfigError, match="contamination/<NAME>"):
        tdg.Decontaminate({"bad/name": ["x " * 20]})
    with pytest.raises(ConfigError, match="repeats"):
        tdg.Decontaminate({"s": [{"id": 1, "text": "x " * 20}, {"id": 1, "text": "y " * 20}]}, id_field="id")
    with pytest.raises(ConfigError, match="min_overlap"):
        tdg.Decontaminate({"s": ["x " * 20]}, min_overlap=0)


def test_short_items_are_counted_and_skipped_with_a_reason():
    long_item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    st = tdg.Decontaminate({"s": [long_item, "too short to check", {"x": 1}]})
    guard = tdg.Guard([st], device="cpu", progress=False)
    guard.filter(["too short to check, really"])
    rep = guard.report()["contamination"]["s"]
    assert rep["items"] == 3 and rep["checked_items"] == 1
    assert rep["skipped_items"] == {"no_text": 1, "shorter_than_ngram": 1}
    assert rep["skipped_item_ids"] == {"no_text": [2], "shorter_than_ngram": [1]}
    assert guard.clean_eval_ids("s") == [0]
    assert guard.clean_eval_ids("s", include_unchecked=True) == [0, 1, 2]


def test_datasets_eval_set_with_ids_and_fields():
    import datasets

    ds = datasets.Dataset.from_list([
        {"id": "q1", "question": "Janet has ten ducks that lay eggs every single morning of the week", "answer": "70"},
        {"id": "q2", "question": "A train leaves the station at noon and travels at sixty miles per hour", "answer": "3"},
    ])
    stage = tdg.Decontaminate({"gsm": ds}, fields=["question", "answer"], id_field="id")
    guard = tdg.Guard([stage], device="cpu", progress=False)
    dropped = _dropped(guard, ["Janet has ten ducks that lay eggs every single morning of the week. 70!", "x"])
    assert dropped[0].matched == "q1"
    assert guard.clean_eval_ids("gsm") == ["q2"]
    with pytest.raises(ConfigError, match="no eval set 'other'"):
        guard.clean_eval_ids("other")


def test_drop_false_only_reports():
    item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    guard = tdg.Guard([tdg.Decontaminate({"s": [item]}, drop=False)], device="cpu", progress=False)
    assert guard.filter([item.upper()]) == [item.upper()]
    rep = guard.report()["contamination"]["s"]
    assert rep["dirty_item_ids"] == [0] and rep["documents_dropped"] == 0 and rep["documents_overlapping"] == 1


def test_state_resumes_and_refuses_other_eval_sets(emails, tmp_path):
    rng = random.Random(3)
    items = _items(emails, rng, 30, 40, 80)
    train = [_plant(h, items[i % 30], rng) if i % 3 == 0 else h for i, h in enumerate(emails[3000:3090])]

    def make():
        return tdg.Guard([tdg.Decontaminate({"m": items}, max_train_count=5)], device="cpu", progress=False,
                         chunk_size=16)

    full = make()
    expected = [(ex.id, d and d.reason, d and d.matched) for ex, d, _ in full.process(train)]
    first = make()
    got = [(ex.id, d and d.reason, d and d.matched) for ex, d, _ in first.process(train[:45])]
    first.save(tmp_path)
    second = make()
    second.load(tmp_path)
    got += [(ex.id, d and d.reason, d and d.matched) for ex, d, _ in second.process(train[45:], ids=range(45, 90))]
    assert got == expected
    assert second.report()["contamination"] == full.report()["contamination"]
    other = tdg.Guard([tdg.Decontaminate({"m": items[:-1]}, max_train_count=5)], device="cpu", progress=False,
                      chunk_size=16)
    with pytest.raises(StateError, match="other settings"):
        other.load(tmp_path)


def test_dataloader_workers_decide_as_the_main_process(emails):
    import torch

    rng = random.Random(4)
    items = _items(emails, rng, 20, 40, 60)
    train = [_plant(h, items[i % 20], rng) if i % 4 == 0 else h for i, h in enumerate(emails[4000:4100])]

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            k, n = (info.id, info.num_workers) if info else (0, 1)
            return iter([{"text": t} for t in train[k::n]])

    guard = tdg.Guard([tdg.Decontaminate({"m": items})], device="cpu", progress=False, chunk_size=8)
    kept = [r["text"] for r in torch.utils.data.DataLoader(guard.wrap(Stream()), batch_size=None, num_workers=2)]
    ref = Reference({"m": list(enumerate(items))})
    assert sorted(kept) == sorted(t for t in train if not ref.dirty(t))
    assert guard.report()["contamination"]["m"]["documents_dropped"] == len(train) - len(kept)


def test_cli_scan_with_eval_sets(tmp_path, capsys):
    import json

    from torchdataguard.cli import main

    item = {"question": "Natalia sold clips to 48 of her friends in April and then she sold half as many", "answer": "72"}
    (tmp_path / "ev.jsonl").write_text(json.dumps(item) + "\n")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "NATALIA sold clips to 48 of her friends in April, and "
                                                              "then she sold half as many."}) + "\n"
                                          + json.dumps({"text": "something else"}) + "\n")
    out = tmp_path / "out"
    code = main(["scan", str(tmp_path / "train.jsonl"), "--out", str(out), "--stages", "decontaminate,exact",
                 "--eval", f"gsm8k={tmp_path / 'ev.jsonl'}", "--eval-field", "question,answer", "--ngram", "13",
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["contamination"]["gsm8k"]["items"] == 1 and rep["contamination"]["gsm8k"]["dirty_items"] == 1
    line = json.loads((out / "dropped.jsonl").read_text().splitlines()[0])
    assert line["reason"] == "contamination/gsm8k" and line["matched"] == 0
    assert "Benchmark contamination" in (out / "report.html").read_text()
    for bad, msg in ((f"gsm8k={tmp_path / 'missing.jsonl'}", "does not exist"), ("gsm8k", "expected NAME=PATH")):
        assert main(["scan", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "o2"), "--stages", "decontaminate",
                     "--eval", bad, "--no-progress"]) == 2
        assert msg in capsys.readouterr().err
    assert main(["scan", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "o3"), "--stages", "exact,near",
                 "--no-progress", "--eval", f"g={tmp_path / 'ev.jsonl'}"]) == 2
    assert re.search("add it to --stages", capsys.readouterr().err)


def test_trainer_callback_report_includes_contamination(tmp_path):
    item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    guard = tdg.Guard([tdg.Decontaminate({"s": [item]})], device="cpu", progress=False)
    guard.wrap([item.title(), "something else entirely"])
    callback = tdg.GuardCallback(guard)
    assert callback.report()["contamination"]["s"]["dirty_item_ids"] == [0]
    callback.save_report(str(tmp_path))
    assert "Benchmark contamination" in (tmp_path / "report.html").read_text()


def test_duplicate_clusters_leave_out_contamination_matches():
    # the matched id of a contamination drop is an evaluation item's id, not a training id: clustering it with
    # the training ids would join training example 0 to training example 5 through item 0
    from torchdataguard.report import render_html

    item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    guard = tdg.Guard([tdg.Decontaminate({"s": [item]}), tdg.ExactDedup()], device="cpu", progress=False)
    guard.filter(["first training text", "b", "c", "d", "e", item, "first training text"])
    rep = guard.report()
    assert [m["reason"] for m in rep["matches"]] == ["contamination/s", "duplicate/exact"]
    html = render_html(rep)
    assert "1 duplicate pairs (duplicate/exact 1)" in html


def test_ray_engine_refuses_decontaminate_with_the_reason(tmp_path, capsys):
    import json

    from torchdataguard.cli import main
    from torchdataguard.scan.ray import scan_ray

    item = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    (tmp_path / "ev.jsonl").write_text(json.dumps({"text": item}) + "\n")
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": item}) + "\n")
    rc = main(["scan", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "o"), "--engine", "ray", "--stages",
               "decontaminate", "--eval", f"s={tmp_path / 'ev.jsonl'}", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "does not run on the Ray engine" in err and "DistributedGuard under torchrun" in err
    # the Python API refuses it too (before Ray is even imported), instead of failing inside an index actor
    with pytest.raises(ConfigError, match="fixed-width key columns"):
        scan_ray(str(tmp_path / "train.jsonl"), str(tmp_path / "o2"), stages=["decontaminate"],
                 options={"decontaminate": {"evals": {"s": [item]}}})
    assert not (tmp_path / "o2").exists()
