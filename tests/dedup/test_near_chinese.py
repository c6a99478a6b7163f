"""Script-aware shingles: Chinese (and Japanese, Thai, mixed) near-duplicates on real text (issue 14, dedup).

Texts: ``tests/fixtures/zh`` (manpages-zh, fortunes-zh; README there). The reference shingles and the planted
copies are in ``zh_stream.py``; the reference shares no code with the package.
"""
import json
import os
import random

import numpy as np
import pytest

import torchdataguard as tdg
from torchdataguard.dedup.hashing import shingle_tokens, shingles, text_shingle_hashes

from zh_stream import (FIXTURES, jaccard, passages, pieces, quality, ref_shingles, ref_tokens, short_lines,
                       with_planted)

OLD_STATE = os.path.join(os.path.dirname(FIXTURES), "state_before_script_shingles")

JAPANESE = ["東京都に住んでいます。", "毎朝コーヒーを飲みます", "この本はとても面白かったです。", "明日は雨が降るそうです",
            "駅まで歩いて十分ぐらいかかります。", "Pythonでプログラムを書くのが好きです。"]
THAI = ["ฉันชอบกินข้าวผัดมาก", "วันนี้อากาศร้อนมาก", "เขาไปทำงานที่กรุงเทพฯ ทุกวัน", "ฉันใช้ Python เขียนโปรแกรม"]
ENGLISH = ["The quick brown fox jumps over the lazy dog.", "Hello, world!", "A “quoted” phrase — with a dash."]


def decisions(texts, **kw):
    g = tdg.Guard([tdg.NearDedup(**kw)], device="cpu", chunk_size=256, progress=False)
    return [None if d is None else (d.matched, d.score) for _, d, _ in g.process([{"text": t} for t in texts])]


def exact_reference(texts, threshold=0.8):
    """Keep-first on exact reference Jaccard: None or the index of the most similar earlier kept text."""
    sh = [ref_shingles(t) for t in texts]
    post, out = {}, []
    for i, s in enumerate(sh):
        best = None
        for j in sorted({j for x in s for j in post.get(x, ())}):
            J = jaccard(s, sh[j])
            if J >= threshold - 1e-9 and (best is None or J > best[1]):
                best = (j, J)
        out.append(None if best is None else best[0])
        if best is None:
            for x in s:
                post.setdefault(x, []).append(i)
    return out


# -- shingles -------------------------------------------------------------------------------------------------
def test_tokens_of_chinese_japanese_thai_and_mixed_text():
    assert shingle_tokens("我用Ｐｙｔｈｏｎ３写代码，很快。") == ["我", "用", "python3", "写", "代", "码", "很", "快"]
    assert shingle_tokens("東京都に住んでいます。") == list("東京都に住んでいます")
    assert shingle_tokens("ｶﾀｶﾅ・テスト") == list("カタカナテスト")  # half-width katakana folded, middle dot is punctuation
    assert shingle_tokens("ฉันใช้ Python เขียน") == list("ฉันใช้") + ["python"] + list("เขียน")
    assert shingle_tokens("A “quoted” phrase — with a dash…") == ["a", "quoted", "phrase", "with", "a", "dash"]
    assert shingle_tokens("Ünïcode café, naïve") == ["ünïcode", "café", "naïve"]
    # a window is char_ngram tokens from a character, ngram tokens from a word: both kinds in mixed text
    assert shingles("我用python写代码", ngram=3, char_ngram=2) == ["我 用", "用 python", "python 写 代", "写 代", "代 码"]
    assert shingles("one two three 中文", ngram=5, char_ngram=2) == ["one two three 中 文", "中 文"]
    assert shingles("太短", char_ngram=5) == ["太 短"] and shingles("。。。") == ["。。。"]


def test_vectorised_shingles_equal_the_reference_on_real_and_mixed_text():
    rng = random.Random(3)
    with open(os.path.join(FIXTURES, "other_languages.jsonl"), encoding="utf-8") as fh:
        other = [json.loads(line)["text"] for line in fh]
    zh = passages() + rng.sample(short_lines(), 300)
    mixed = [a[: rng.randint(0, 80)] + " " + b + " " + c[: rng.randint(0, 80)]
             for a, b, c in zip(zh, rng.sample(ENGLISH + other + JAPANESE + THAI, 25) * 20, reversed(zh))]
    texts = zh + other + JAPANESE + THAI + ENGLISH + mixed + ["", "!!", "中", "ａｂ"]
    h, d = text_shingle_hashes(texts, 5, char_ngram=5)
    sets = [frozenset(h[d == i].tolist()) for i in range(len(texts))]
    refs = [ref_shingles(t) for t in texts]
    for t, s, r in zip(texts, sets, refs):
        assert len(s) == len(r), t
        assert set(shingles(t)) == {" ".join(x) for x in r} or not ref_tokens(t), t
    for _ in range(3000):  # the hashed sets intersect exactly as the reference sets do
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        assert len(sets[i] & sets[j]) == len(refs[i] & refs[j]), (texts[i], texts[j])


def test_the_fast_nfkc_equals_unicodedata():
    import unicodedata

    from torchdataguard.dedup.scripts import nfkc

    rng = random.Random(2)
    pool = ([chr(c) for c in range(0xFF01, 0xFF5F)] + list("\u3000\u0301\u0308\u3099\u309aｶﾞﾟｱﬁ①㈱豈가\u1100\u1161éeA中，。 ½ǅÅ\u212b")
            + ["\u00a0", "\u2028"] + list(passages()[0][:50]))
    for _ in range(20000):
        t = "".join(rng.choice(pool) for _ in range(rng.randint(0, 12)))
        assert nfkc(t) == unicodedata.normalize("NFKC", t), ascii(t)


def test_ascii_and_space_separated_text_shingles_as_before():
    rng = random.Random(0)
    words = "alpha beta gamma delta café naïve Straße über écrit привет мир Ελλάδα".split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 30))) for _ in range(200)]
    for mode in ("auto", "words"):
        h, d = text_shingle_hashes(texts, 5, mode=mode)
        h0, d0 = text_shingle_hashes(texts, 5, mode="words")
        assert np.array_equal(np.sort(h), np.sort(h0)) and np.array_equal(np.sort(d), np.sort(d0))
    # an ASCII text hashes the same whether its chunk holds Chinese text or not
    ha, da = text_shingle_hashes(["the quick brown fox jumps over it"], 5)
    hb, db = text_shingle_hashes(["中文文本的一个例子", "the quick brown fox jumps over it"], 5)
    assert sorted(ha.tolist()) == sorted(hb[db == 1].tolist())


def test_modes_and_their_validation():
    t = "数据去重 data dedup 测试"
    assert shingle_tokens(t, mode="chars") == list("数据去重") + list("datadedup") + list("测试")
    assert shingle_tokens(t, mode="words") == ["数据去重", "data", "dedup", "测试"]
    with pytest.raises(ValueError, match="auto"):
        text_shingle_hashes([t], mode="char")
    with pytest.raises(tdg.ConfigError, match="'auto'.*'words'.*'chars'"):
        tdg.NearDedup(text_shingles="char")
    with pytest.raises(tdg.ConfigError, match="char_ngram"):
        tdg.NearDedup(char_ngram=0)
    with pytest.raises(tdg.ConfigError, match="char_ngram"):
        tdg.NearDedup(text_shingles="words", char_ngram=3)
    cfg = tdg.NearDedup().config()
    assert cfg["text_shingles"] == "auto" and cfg["char_ngram"] == 5
    assert tdg.NearDedup(text_shingles="words").config()["char_ngram"] is None


def test_the_cli_shingles_by_script_by_default_selects_and_refuses_a_bad_value(tmp_path, capsys):
    from torchdataguard.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in two_words_changed()) + "\n",
                   encoding="utf-8")
    for value, dropped in ((None, 1), ("auto", 1), ("words", 0)):
        out = tmp_path / str(value)
        extra = [] if value is None else ["--set", f"near.text_shingles={value}"]
        assert main(["scan", str(src), "--out", str(out), "--stages", "near", "--no-progress"] + extra) == 0
        report = json.loads((out / "report.json").read_text())
        assert report["dropped"] == dropped, value
    capsys.readouterr()
    assert main(["scan", str(src), "--out", str(tmp_path / "bad"), "--stages", "near", "--no-progress",
                 "--set", "near.text_shingles=char"]) == 2
    assert "'auto'" in capsys.readouterr().err


# -- decisions ------------------------------------------------------------------------------------------------
def two_words_changed():
    """A real passage of about 180 characters and a copy with two two-character words replaced."""
    p = next(t for t in passages() if 170 <= len(t) <= 260)
    han = [i for i, c in enumerate(p) if "\u4e00" <= c <= "\u9fff"]
    i, j = han[len(han) // 3], han[2 * len(han) // 3]
    return p, p[:i] + "改动" + p[i + 2 : j] + "变化" + p[j + 2 :]


def test_a_chinese_paragraph_with_two_words_changed_is_a_near_duplicate():
    p, copy = two_words_changed()
    assert 0.8 <= jaccard(ref_shingles(p), ref_shingles(copy)) < 1
    got = decisions([p, copy, passages()[-1]])
    assert got[0] is None and got[1] is not None and got[1][0] == 0 and got[2] is None


def test_punctuation_and_width_changes_are_folded():
    p = "在 Debian 12 中，使用“apt install”安装软件包；详见《Debian 参考手册》第2章。"
    variants = [p.replace("，", ",").replace("；", ";").replace("。", "."),
                p.replace("“", "「").replace("”", "」"),
                "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in p),
                p.replace("《", "").replace("》", "").replace("“", " ").replace("”", " ")]
    got = decisions([p] + variants + ["在 Debian 12 中，使用“apt remove”删除软件包。"])
    assert [g and g[0] for g in got[1:5]] == [0, 0, 0, 0] and all(g[1] == 1.0 for g in got[1:5])
    assert got[5] is None


def test_recall_and_false_drops_on_real_chinese_with_planted_copies():
    p = passages()
    base = p + pieces(p, 40, 120) + short_lines()
    docs, pairs = with_planted(base, 0.3, seed=0)
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", chunk_size=512, progress=False)
    drops = {i: (None if d.reason == "duplicate/exact" else d.matched)
             for i, (_, d, _) in enumerate(g.process([{"text": t} for t in docs])) if d is not None}
    q = quality(docs, pairs, drops)
    recall, n = q["recall"][">=0.9"]
    assert n >= 300 and recall >= 0.95, q  # the English figure: 0.986
    assert q["recall"]["0.8-0.9"][0] >= 0.75, q
    assert q["false_drop_rate"] <= 0.005 and q["short_false_drops"] == 0, q
    # every planted copy that only changed punctuation or width is caught
    folded = [v for v, _, kind in pairs if kind in ("exact", "punct", "width")]
    assert len(folded) > 100 and all(v in drops for v in folded)


def short_texts():
    """The short lines, and those of ``short.jsonl`` that are not among them (both hold man-page descriptions)."""
    texts = short_lines()
    with open(os.path.join(FIXTURES, "short.jsonl"), encoding="utf-8") as fh:
        more = [json.loads(line)["text"] for line in fh]
    return texts + [t for t in more if t not in set(texts)]


def test_thousands_of_distinct_short_chinese_texts_are_decided_exactly():
    # texts with fewer than exact_below (12) distinct shingles: under 16 characters of Han text
    texts = [t for t in short_texts() if len(ref_shingles(t)) < 12]
    assert len(texts) >= 3000
    got = decisions(texts)
    assert [g and g[0] for g in got] == exact_reference(texts)
    false = [i for i, g in enumerate(got) if g is not None and jaccard(ref_shingles(texts[i]),
                                                                         ref_shingles(texts[g[0]])) < 0.8]
    assert false == []
    assert sum(g is None for g in got) >= len(texts) - 10  # distinct real texts: (almost) all kept


def test_longer_short_texts_have_no_false_drops():
    texts = short_texts()  # 2 to 40 characters; from 16 characters on, pairs are estimated
    got = decisions(texts)
    js = [jaccard(ref_shingles(texts[i]), ref_shingles(texts[g[0]])) for i, g in enumerate(got) if g is not None]
    assert len(js) <= 20 and min(js) >= 0.7, js  # the false-drop bound of estimated pairs: J >= threshold - 0.1
    assert sum(j < 0.8 for j in js) <= 0.005 * len(texts)


def test_generated_short_chinese_strings_are_never_dropped_unless_they_reach_the_threshold():
    rng = random.Random(7)
    vocab = "".join(sorted({c for t in passages() for c in t if "\u4e00" <= c <= "\u9fff"}))
    texts, seen = [], set()
    while len(texts) < 4000:  # 1 to 9 characters from a small alphabet: many share characters and bigrams
        t = "".join(rng.choice(vocab[:300]) for _ in range(rng.randint(1, 9)))
        if t not in seen:
            seen.add(t)
            texts.append(t)
    got = decisions(texts)
    assert [g and g[0] for g in got] == exact_reference(texts)
    assert all(g is None for g in got)  # under 10 characters, one changed character is below 0.8


def test_japanese_and_thai_near_copies_and_distinct_sentences():
    ja = ("今日は朝から雨が降っていたので、駅まで歩いて行くのをやめてバスに乗りました。バスはとても混んでいましたが、"
          "運転手さんが親切だったので、気持ちよく会社に着くことができました。")
    th = ("วันนี้ฝนตกตั้งแต่เช้า ฉันจึงไม่เดินไปที่สถานีรถไฟ แต่นั่งรถเมล์ไปแทน รถเมล์คันนั้นมีคนแน่นมาก "
          "แต่คนขับใจดีมาก ฉันจึงไปถึงที่ทำงานอย่างสบายใจ")
    ja_copies = [ja.replace("親切", "丁寧"), ja.replace("、", ",").replace("。", ".")]
    th_copies = [th.replace(" ", ""), th.replace("ใจดี", "สุภาพ")]  # Thai spaces mark phrases, not words
    assert [round(jaccard(ref_shingles(ja), ref_shingles(c)), 2) for c in ja_copies] == [0.86, 1.0]
    # (Thai: character 8-grams, abugida_ngram; with 5-grams the second was 0.88)
    assert [round(jaccard(ref_shingles(th), ref_shingles(c)), 2) for c in th_copies] == [1.0, 0.84]
    texts = JAPANESE + THAI + [ja] + ja_copies + [th] + th_copies
    got = decisions(texts)
    n = len(JAPANESE) + len(THAI)
    assert got[:n] == [None] * n  # distinct short sentences, mixed scripts included, are all kept
    assert [g and g[0] for g in got[n:]] == [None, n, n, None, n + 3, n + 3]


# -- saved state ----------------------------------------------------------------------------------------------
def test_a_state_saved_before_script_aware_shingles_resumes_only_with_word_shingles():
    with open(os.path.join(OLD_STATE, "continuation.json"), encoding="utf-8") as fh:
        old = json.load(fh)
    state_dir = os.path.join(OLD_STATE, "state")
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    with pytest.raises(tdg.StateError, match="text_shingles='words' saved, 'auto' here"):
        g.load(state_dir)
    g = tdg.Guard([tdg.NearDedup(text_shingles="words")], device="cpu", progress=False)
    g.load(state_dir)
    n = len(old["first"])
    got = [None if d is None else [d.reason, d.matched] for _, d, _ in
           g.process([{"text": t} for t in old["second"]], ids=range(n, n + len(old["second"])))]
    assert got == old["decisions"]  # the same decisions as the version that saved it
    # the stage itself explains why, when its state is loaded without a guard
    st = tdg.NearDedup()
    saved = tdg.Guard([tdg.NearDedup(text_shingles="words")], device="cpu", progress=False)
    saved.load(state_dir)
    state = saved.stages[0].state_dict()
    del state["config"]["text_shingles"], state["config"]["char_ngram"]
    with pytest.raises(tdg.StateError, match="before script-aware shingles.*text_shingles='words'"):
        st.load_state_dict(state)


def test_states_of_different_shinglings_never_mix(tmp_path):
    g = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    g.filter(passages()[:5])
    g.save(tmp_path)
    for other in (tdg.NearDedup(text_shingles="words"), tdg.NearDedup(char_ngram=3), tdg.NearDedup(text_shingles="chars")):
        with pytest.raises(tdg.StateError, match="text_shingles|char_ngram"):
            tdg.Guard([other], device="cpu", progress=False).load(tmp_path)
    same = tdg.Guard([tdg.NearDedup()], device="cpu", progress=False)
    same.load(tmp_path)
    assert same.filter(passages()[3:7]) == passages()[5:7]
