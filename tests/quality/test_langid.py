"""LanguageID (stage ``langid``): accuracy on real Chinese (Simplified and Traditional), English and four other
languages, keep/und semantics, settings, and a ``torchdataguard scan --stages langid,quality`` subprocess."""
import collections
import importlib.util
import json
import os
import pickle
import subprocess
import sys

import pytest

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.errors import ConfigError
from zh_fixture import OTHER, PASSAGES, SHORT, planted_junk

pytest.importorskip("py3langid", reason="LanguageID needs py3langid: pip install torchdataguard[langid]")


def english_bodies():
    """Real English: bodies (200 characters or more) of every fourth ham message of the shipped SpamAssassin sample."""
    bodies = [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin() if r["label"] == "ham"]
    return [b for b in bodies if len(b) >= 200][::4]


def test_accuracy_on_real_chinese_english_and_other_languages():
    lid = tdg.LanguageID()
    for rows, floor in ((PASSAGES, 0.95), (SHORT, 0.9)):  # measured: 48 of 48, 30 of 30
        got = collections.Counter(lid.identify(r["text"])[0] for r in rows)
        assert got["zh"] / len(rows) >= floor, got
        assert "yue" not in got and "wuu" not in got  # left out of the candidates by default
    for script in ("Hans", "Hant"):
        assert all(lid.identify(r["text"])[0] == "zh" for r in PASSAGES if r["script"] == script), script
    english = english_bodies()
    got = collections.Counter(lid.identify(b)[0] for b in english)
    assert len(english) > 900 and got["en"] / len(english) >= 0.97, got.most_common(5)  # measured 975 of 981
    assert [lid.identify(r["text"])[0] for r in OTHER] == [r["lang"] for r in OTHER]  # measured 12 of 12


def test_writes_language_and_score_counts_it_and_keeps_only_what_is_asked():
    lid = tdg.LanguageID(keep=["zh", "en"])
    zh = PASSAGES[0]["text"]
    ex = tdg.Example(0, {"text": zh}, zh, "text")
    assert lid.process(ex) is ex
    assert list(ex.scores) == ["langid/zh"] and 0.5 <= ex.scores["langid/zh"] <= 1.0
    assert ex.counts == {"langid/zh": 1} and ex.record == {"text": zh}
    fr = OTHER[3]["text"]
    out = lid.process(tdg.Example(1, fr, fr))
    assert isinstance(out, tdg.Drop) and out.reason == "langid/fr" and out.score > 0.5
    # no letters, or a best language under min_score: "und", dropped unless kept
    digits = "2024 - 12 - 05 | 42.0 | 17"
    assert lid.identify(digits) == ("und", 0.0)
    assert lid.process(tdg.Example(2, digits, digits)).reason == "langid/und"
    assert tdg.LanguageID(keep=["zh", "und"]).process(tdg.Example(2, digits, digits)).text == digits
    strict = tdg.LanguageID(min_score=0.999999)
    short = SHORT[0]["text"]
    lang, score = strict.identify(short)
    assert score < 0.999999 and lang == "und" and tdg.LanguageID().identify(short)[0] == "zh"
    assert tdg.LanguageID().process(tdg.Example(3, {"x": 1})).reason == "langid/no_text"


def test_settings_are_checked_when_built(monkeypatch):
    with pytest.raises(ConfigError) as err:
        tdg.LanguageID(keep=["english"], min_score=1.5, max_chars=-1)
    msg = str(err.value)
    assert "keep names ['english']" in msg and "'en'" in msg and "min_score=1.5" in msg and "max_chars=-1" in msg
    with pytest.raises(ConfigError, match="keep names \\['yue'\\]"):
        tdg.LanguageID(keep=["yue"])  # not a candidate by default
    assert tdg.LanguageID(keep=["yue"], languages=["zh", "yue"]).keep == ("yue",)
    with pytest.raises(ConfigError, match="languages names \\['xx'\\]"):
        tdg.LanguageID(languages=["en", "xx"])
    assert tdg.LanguageID(keep="en, zh").keep == ("en", "zh")
    cfg = tdg.LanguageID(keep=["en"]).config()
    assert cfg["keep"] == ["en"] and cfg["model"].startswith("py3langid ") and "yue" in cfg["languages"]
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "py3langid" else real(name, *a))
    with pytest.raises(ConfigError, match='pip install "torchdataguard\\[langid\\]"'):
        tdg.LanguageID()


def test_pickles_small_and_decides_the_same():
    lid = tdg.LanguageID(keep=["zh"])
    blob = pickle.dumps(lid)
    assert len(blob) < 2000  # the model stays in the process, loaded once per worker
    clone = pickle.loads(blob)
    for r in PASSAGES[:5] + OTHER[:3]:
        a, b = lid.process(tdg.Example(0, r["text"], r["text"])), clone.process(tdg.Example(0, r["text"], r["text"]))
        assert type(a) is type(b) and getattr(a, "reason", None) == getattr(b, "reason", None)


def test_report_counts_examples_by_language():
    texts = [p["text"] for p in PASSAGES[:10]] + english_bodies()[:5] + [r["text"] for r in OTHER[:3]]
    g = tdg.Guard([tdg.LanguageID(keep=["zh", "en"]), tdg.QualityFilter()], device="cpu", progress=False)
    g.filter(texts)
    rep = g.report()
    assert rep["counts"]["langid/zh"] == 10 and rep["counts"]["langid/en"] == 5 and rep["counts"]["langid/de"] == 3
    assert rep["dropped_by_reason"]["langid/de"] == 3
    assert rep["scores"]["langid/zh"]["count"] == 10
    assert rep["scores"]["quality/gopher_quality_zh/word_count"]["count"] == 10


def test_scan_with_langid_and_quality_as_a_subprocess(tmp_path):
    junk = planted_junk(["手机壳", "充电器", "蓝牙耳机", "数据线", "平板电脑", "智能手表"], n=2)
    rows = ([{"id": f"zh{i}", "text": p["text"]} for i, p in enumerate(PASSAGES[:6] + PASSAGES[-6:])]
            + [{"id": f"en{i}", "text": t} for i, t in enumerate(english_bodies()[:4])]
            + [{"id": f"{r['lang']}{i}", "text": r["text"]} for i, r in enumerate(OTHER[::3])]
            + [{"id": f"junk-{kind}-{i}", "text": t} for kind, texts in junk.items() for i, t in enumerate(texts)])
    src = tmp_path / "mixed.jsonl"
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "torchdataguard.cli", "scan", str(src), "--out", str(out),
                           "--stages", "langid,quality", "--id-field", "id", "--device", "cpu", "--no-progress"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    def lines(name):  # not splitlines(): mojibake holds U+0085, a line break to str.splitlines
        return [json.loads(x) for x in (out / name).read_text(encoding="utf-8").split("\n") if x]

    kept = {r["id"] for r in lines("kept.jsonl")}
    dropped = {d["id"]: d["reason"] for d in lines("dropped.jsonl")}
    assert {f"zh{i}" for i in range(12)} <= kept
    assert not {i for i in kept if i.startswith("junk-")}, kept
    assert all(dropped[i].startswith("quality/") for i in dropped if i.startswith("junk-"))
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["counts"]["langid/zh"] >= 12 + 2 and rep["counts"]["langid/en"] >= 3
    assert {"langid/de", "langid/fr", "langid/ru", "langid/el"} <= set(rep["counts"])
    assert "quality/gopher_quality_zh/word_count" in rep["scores"] and "langid/zh" in rep["scores"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Languages" in html and "langid/zh" in html
