"""The quality scores' fast paths against straightforward definitions, on generated varied texts: the same
values (``==``), not approximately.

Fast paths: the n-gram shares (two sorts and an exact polynomial for n = 3 .. 10), C4's sentence count
(a byte translation on ASCII text, the last sentence read off the last line), tokens holding a letter (a
byte translation on short ASCII text, ``bytes.islower`` on the bytes tokens of long ASCII text, only the tokens
that are not ASCII looked at character by character in other text), duplicate counts (lengths by ``str.join``), lines starting or ending with a mark (one string of first or last
characters), and C4's policy-notice search (the "cookie" notices only in texts holding "cookie").
"""
import random
import re
import sys
from collections import Counter

from torchdataguard.assets import load_spamassassin
from torchdataguard.quality.rules import (BULLETS, C4_POLICY, ELLIPSES, TERMINAL, ZH_TERMINAL, C4Lines,
                                          ScoreConfig, TextStats, score_text)
from torchdataguard.quality.rules.c4 import c4
from torchdataguard.quality.rules.stats import CASED_NOT_LETTERS, duplicates
from torchdataguard.quality.rules.ngrams import MUL, SHORT, ngram_shares

_SPACES = [" ", " ", " ", "\t", "\u00a0", "\u3000", "\x0b", "\x0c", "\x1c", "\x1f", "\r", "\u2028", "\x85"]


def reference_shares(tokens):
    """Gopher's n-gram shares straight from the definitions (tuples of tokens, a loop per definition)."""
    lens = [len(t) for t in tokens]
    total = sum(lens)
    top, dup = [0.0] * 3, [0.0] * 6
    if len(tokens) < 2 or not total:
        return top, dup
    for n in range(2, 11):
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        counts = Counter(grams)
        if not counts or max(counts.values()) < 2:
            break
        if n <= 4:
            best = max(counts.values())
            firsts = {}
            for i, g in enumerate(grams):
                firsts.setdefault(g, i)
            g = max((g for g in counts if counts[g] == best), key=lambda g: (sum(map(len, g)), -firsts[g]))
            covered = {j for i, x in enumerate(grams) if x == g for j in range(i, i + n)}
            top[n - 2] = sum(lens[j] for j in covered) / total
        else:
            covered = {j for i, x in enumerate(grams) if counts[x] > 1 for j in range(i, i + n)}
            dup[n - 5] = sum(lens[j] for j in covered) / total
    return top, dup


def token_lists(rng):
    """Repetitive random token lists (empty tokens, whose hash is 0, included), and real e-mails."""
    out = []
    for _ in range(700):
        vocab = ["a", "bb", "ccc", "the", "of", "x", "", "yy", "zzzz", "é", "中文"][: rng.randint(1, 11)]
        base = [rng.choice(vocab) for _ in range(rng.randint(0, 90))]
        if base and rng.random() < 0.6:  # a long repeat, as in a quoted reply, often at the very end
            i = rng.randrange(len(base))
            base += base[i: i + rng.randint(1, 30)] * rng.randint(1, 4)
        if rng.random() < 0.2:
            base += [""] * rng.randint(1, 12)
        out.append(base)
    words = [w for r in load_spamassassin(limit=400) for w in r["text"].lower().split()]
    out += [words[i: i + rng.randint(2, 600)] for i in range(0, 60_000, 300)]
    paragraph = words[:400]  # long texts with many positions whose 3-gram repeats (the rows sorted one by one)
    out += [paragraph * 4 + words[400:1400], (paragraph[:40] + ["x"]) * 60]
    return out


def test_ngram_shares_equal_the_definitions(monkeypatch):
    from torchdataguard.quality.rules import ngrams

    rng = random.Random(11)
    lists = token_lists(rng)
    many = 0
    for tokens in lists:
        want = reference_shares(tokens)
        for few in (0, 48, 10 ** 9):  # the groups of equal keys found by arrays, a Python list, or as shipped
            monkeypatch.setattr(ngrams, "_FEW_EQUAL", few)
            assert ngram_shares(tokens) == want, (few, tokens[:20])
        many += any(want[1])
    assert many > 150  # the lists reach the duplicated 5- to 10-grams


def test_ngram_keys_are_the_rolling_polynomial():
    """The sorting methods key n-grams ``key(t1..tn) = key(t1..tn-1) * MUL + hash(tn)`` mod 2**64 for every n,
    however the keys are computed: two different 3-grams built to have the same key count as one n-gram. Short
    lists (``SHORT`` tokens at most, counted on tuples by default) compare the tokens themselves, so there the
    built collision merges nothing (real n-grams collide with a chance of about 2**-64 per pair)."""

    class Hashed(str):
        def __new__(cls, text, h):
            t = super().__new__(cls, text)
            t.h = h
            return t

        def __hash__(self):
            return self.h

    mask = (1 << 64) - 1
    signed = lambda v: v - (1 << 64) if v >= 1 << 63 else v  # noqa: E731
    hs = {w: 1000 + 7919 * i for i, w in enumerate("abcdeqrstuvw")}
    k3 = (((hs["a"] * MUL + hs["b"]) & mask) * MUL + hs["c"]) & mask
    hs["f"] = signed((k3 - ((hs["d"] * MUL + hs["e"]) & mask) * MUL) & mask)
    tokens = [Hashed(w, hs[w]) for w in "a b c q a b r b c s d e f t d e u e f".split()]
    for long in (False, True):
        assert ngram_shares(tokens, long=long)[0][1] > 0  # "a b c" and "d e f": one 3-gram occurring twice
    assert len(tokens) <= SHORT and ngram_shares(tokens)[0][1] == 0.0  # on tuples: two different 3-grams
    plain = [str(t) for t in tokens]
    assert ngram_shares(plain)[0][1] == 0.0 == reference_shares(plain)[0][1]


_OLD_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*(?=\s|$)")
_OLD_ENDS_WITH_SENTENCE_END = re.compile(r"[.!?\u2026\u3002\uff01\uff1f]+[\"'\u2019\u201d)\]\u00bb]*\s*\Z")


def reference_c4(text, opts):
    """C4's scores as a plain loop over the lines and the sentence pattern over the kept lines."""
    st = TextStats(text)
    lower = text.lower()
    cfg = opts.c4_lines
    kept = []
    for s in st.lines():
        if cfg.terminal_punct and (not s.endswith(TERMINAL) or s.endswith(ELLIPSES)):
            continue
        if cfg.min_words and len(s.split()) < cfg.min_words:
            continue
        if cfg.javascript and "javascript" in s.lower():
            continue
        if cfg.policy and any(p in s.lower() for p in C4_POLICY):
            continue
        kept.append(s)
    joined = "\n".join(kept)
    sentences = len(_OLD_SENTENCE_END.findall(joined)) + (not _OLD_ENDS_WITH_SENTENCE_END.search(joined))
    return {"lorem_ipsum": float(lower.count("lorem ipsum")), "curly_bracket": float(text.count("{")),
            "sentences": float(sentences) if kept else 0.0}


def generated_texts(rng, n):
    vocab = ("the of and to a in that is with be Lorem ipsum javascript JavaScript cookies Cookie privacy policy "
             "terms of use # { } ... \u2026 ! ? . , \"quoted.\" 'single!' (paren.) [x] \u00bb \u201d \u2019 e-mail 3.5 "
             "\u00e9t\u00e9 \u4e2d\u6587 \u3002 \uff01 \uff1f - * + \u2022 \u2013 \u00b7 " + "w" * 40).split(" ")
    out = []
    for i in range(n):
        lines = []
        for _ in range(rng.randint(0, 12)):
            words = [rng.choice(vocab) for _ in range(rng.randint(0, 9))]
            if rng.random() < 0.5:  # ASCII only
                words = [w for w in words if w.isascii()]
            line = "".join(w + rng.choice(_SPACES) for w in words)
            lines.append(rng.choice(["", "  ", "\t"]) + line + rng.choice(["", ".", "...", "!\"", "?)", " ", "\u2026"]))
        out.append(rng.choice(["\n", "\r\n", "\n\n"]).join(lines))
    return out


def test_c4_scores_equal_a_plain_loop():
    rng = random.Random(12)
    texts = generated_texts(rng, 2500) + [r["text"] for r in load_spamassassin(limit=300)]
    settings = [ScoreConfig(c4_lines=C4Lines(terminal_punct=False)), ScoreConfig(),
                ScoreConfig(c4_lines=C4Lines(min_words=0, javascript=False)), ScoreConfig(c4_lines=C4Lines(min_words=2))]
    ascii_kept = 0
    for text in texts:
        for opts in settings:
            got = c4(TextStats(text), opts)
            want = reference_c4(text, opts)
            assert {k: got[k] for k in want} == want, (text, opts)
        ascii_kept += text.isascii() and want["sentences"] > 0
    assert ascii_kept > 200


def test_tokens_with_letter_on_ascii_text_equals_the_definition():
    rng = random.Random(13)
    alphabet = "aZq09 -_.!?\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f>#'\"" + "".join(map(chr, range(32, 127)))
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        st = TextStats(text)
        want = sum(1 for t in text.lower().split() if not t.isdigit() and any(map(str.isalpha, t)))
        assert st.tokens_with_letter() == want, repr(text)


def test_tokens_with_letter_on_long_and_non_ascii_text_equals_the_definition():
    """Long ASCII text is counted on its bytes tokens (bytes.islower), other text skips the ASCII tokens that
    are not lower-case (they hold no letter): both against the plain definition, on texts that reach both."""
    rng = random.Random(15)
    vocab = ["the", "A1", "42", "--", "x.y", "#tag", "'q'", "\u00e9t\u00e9", "\u4e2d\u6587", "\u0394\u03b1", "\u00b2",
             "\u00bd", "\u0661\u0662", "\u2460", "_", "\u3002", "\u02b0", "\u00aa", "ABC", "\x1c", "\x00", "~~"]
    long_ascii = non_ascii = 0
    for _ in range(600):
        words = [rng.choice(vocab) for _ in range(rng.choice([3, 30, 150, 400]))]
        ascii_only = rng.random() < 0.5
        if ascii_only:
            words = [w for w in words if w.isascii() and w != "\x1c"]
        spaces = [" ", " ", "\t", "\n", "\x0b", "\r"] + ([] if ascii_only else ["\u00a0", "\u3000"])
        text = "".join(w + rng.choice(spaces) for w in words)
        st = TextStats(text)
        want = sum(1 for t in text.lower().split() if not t.isdigit() and any(map(str.isalpha, t)))
        assert st.tokens_with_letter() == want, repr(text)
        long_ascii += st._bytes_tokens() is not None
        non_ascii += not text.isascii()
    assert long_ascii > 50 and non_ascii > 100


def test_tokens_of_roman_numerals_or_circled_letters_hold_no_letter():
    """They are lower-case once lower-cased, yet no letters: until 2026-12-07 "\u2167 \u24b6" counted as two
    tokens holding a letter (the str.islower shortcut), which Gopher's alpha_words_ratio then let through."""
    rng = random.Random(17)
    vocab = ["\u2167", "\u2177", "\u24b6", "\u24d0\u24d1", "\U0001f130", "\u0345", "x\u2167", "\u00e9", "12", "--", "the"]
    for _ in range(300):
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 40)))
        want = sum(1 for t in text.lower().split() if not t.isdigit() and any(map(str.isalpha, t)))
        assert TextStats(text).tokens_with_letter() == want, repr(text)
    assert TextStats("\u2167 \u24b6 \u00e9").tokens_with_letter() == 1


def test_cased_not_letters_lists_every_such_code_point():
    want = {c for c in map(chr, range(sys.maxunicode + 1)) if (c.islower() or c.isupper() or c.istitle())
            and not c.isalpha()}
    assert {c for c in map(chr, range(sys.maxunicode + 1)) if re.fullmatch(f"[{CASED_NOT_LETTERS}]", c)} == want
    assert not any(c not in want and any(map(want.__contains__, c.lower())) for c in map(chr, range(sys.maxunicode + 1)))


def test_duplicates_equal_the_definition():
    rng = random.Random(16)
    for _ in range(500):
        items = [rng.choice(["a", "bb", "", "\u00e9\u00e9", "\u4e2d", "x y"]) for _ in range(rng.randint(0, 12))]
        seen, dups, dup_chars = set(), 0, 0
        for it in items:
            if it in seen:
                dups, dup_chars = dups + 1, dup_chars + len(it)
            seen.add(it)
        assert duplicates(items) == (dups, dup_chars, sum(len(it) for it in items))


def test_lines_starting_and_ending_with_marks_equal_startswith_and_endswith():
    rng = random.Random(14)
    marks = list(BULLETS) + list(ZH_TERMINAL) + ["a", "b", " ", "\u3000"]
    for _ in range(2000):
        text = "\n".join("".join(rng.choice(marks) for _ in range(rng.randint(0, 5))) for _ in range(rng.randint(0, 8)))
        st = TextStats(text)
        lines = st.lines()
        assert st.lines_starting_with("".join(dict.fromkeys(BULLETS))) == sum(s.startswith(BULLETS) for s in lines)
        assert st.lines_ending_with("".join(dict.fromkeys(TERMINAL))) == sum(s.endswith(TERMINAL) for s in lines)
        assert st.lines_ending_with("".join(dict.fromkeys(ZH_TERMINAL))) == sum(s.endswith(ZH_TERMINAL) for s in lines)


def test_marks_counted_by_their_last_or_first_character_are_single_characters():
    # the rules count a line's first or last character, so a mark of two characters would be missed
    assert all(len(m) == 1 for m in BULLETS + TERMINAL + ZH_TERMINAL)


def test_scores_on_real_e_mails_equal_the_definitions():
    """The whole English profile on real e-mails: n-gram shares and C4 against the references above."""
    for row in load_spamassassin(limit=250):
        text = row["text"]
        s = score_text(text, ["gopher_repetition", "c4"],
                       ScoreConfig(c4_lines=C4Lines(terminal_punct=False)))
        top, dup = reference_shares(text.lower().split())
        assert [s[f"quality/gopher_repetition/top_{n}gram_char_ratio"] for n in (2, 3, 4)] == top
        assert [s[f"quality/gopher_repetition/dup_{n}gram_char_ratio"] for n in range(5, 11)] == dup
        want = reference_c4(text, ScoreConfig(c4_lines=C4Lines(terminal_punct=False)))
        assert {k: s[f"quality/c4/{k}"] for k in want} == want


def reference_script(text):
    """The script decision from the letter counts of every script (no ASCII shortcut)."""
    from torchdataguard.quality.scripts import script_counts

    c = script_counts(text[:4000])
    if not c["letters"]:
        return "Zyyy"
    cjk = c["han"] + c["kana"] + c["hangul"]
    if cjk * 3 >= max(c["latin"], c["other"]):
        if c["hangul"] >= c["han"] + c["kana"]:
            return "Kore"
        return "Jpan" if c["kana"] >= 0.1 * (c["han"] + c["kana"]) else "Hani"
    return "Latn" if c["latin"] >= c["other"] else "Other"


def test_the_hangul_fillers_count_as_no_letters():
    """Until the eighteenth session a Chinese text with the (invisible) Hangul filler after every character was read
    as Korean and judged by the script-neutral rules."""
    from torchdataguard.quality.scripts import dominant_script, script_counts

    zh = "\u4f1a\u8bae\u5728\u661f\u671f\u4e8c\u53ec\u5f00\uff0c\u8ba8\u8bba\u4e86\u660e\u5e74\u7684\u9884\u7b97\u3002"
    assert dominant_script("\u3164".join(zh)) == dominant_script(zh) == "Hani"
    assert dominant_script("\uffa0".join("plain english words")) == "Latn"
    assert dominant_script("\u3164 \u115f\u1160 \uffa0") == "Zyyy"
    assert script_counts("\ud55c\u3164\uad6d") == {"han": 0, "kana": 0, "hangul": 2, "latin": 0, "other": 0, "letters": 2}
    import torchdataguard as tdg

    hidden = "\u3164".join(zh * 4)
    assert tdg.QualityFilter().profile_for(tdg.Example(0, hidden, hidden)) in ("zh", "neutral") and (
        tdg.QualityFilter().profile_for(tdg.Example(0, hidden, hidden))
        == tdg.QualityFilter().profile_for(tdg.Example(0, zh * 4, zh * 4)))


def test_dominant_script_shortcut_for_mostly_ascii_text_equals_the_counts():
    from torchdataguard.quality.scripts import dominant_script

    rng = random.Random(15)
    pools = ["abc XYZ 123 .,", "\u00e9\u00fc\u00df\u00d8", "\u4e2d\u6587\u5b57", "\u3072\u3089\u30ab\u30bf",
             "\ud55c\uad6d\uc5b4", "\u041f\u0440\u0438\u0432\u0435\u0442", "\u2026\u201c\u201d\u2019 ", "\u0663", "\u01c5",
             "\u3164\uffa0\u115f\u1160"]  # (the Hangul fillers: invisible, no letters)
    for _ in range(20000):
        chosen = rng.sample(pools, rng.randint(1, 4))
        text = "".join(rng.choice(rng.choice(chosen)) for _ in range(rng.randint(0, 80)))
        assert dominant_script(text) == reference_script(text), repr(text)
    for row in load_spamassassin(limit=400):
        assert dominant_script(row["text"]) == reference_script(row["text"])


def test_judge_fires_exactly_the_rules_whose_threshold_fails():
    """The drop reason and the quality/fired/* counts against Threshold.passes, with thresholds set at the
    texts' own scores (boundaries), inclusive and exclusive, and nan (not applicable) scores."""
    import math

    import torchdataguard as tdg
    from torchdataguard.quality.rules import Threshold

    rng = random.Random(16)
    texts = [r["text"] for r in load_spamassassin(limit=150)] + generated_texts(rng, 150)
    q = tdg.QualityFilter(cache_size=0)
    scores = [q.scores(t) for t in texts]
    keys = q.rules
    for _ in range(12):
        thresholds = {}
        for key in keys:
            v = rng.choice(scores).get(key, 0.5) if rng.random() < 0.8 else rng.uniform(0, 2)
            kind = rng.random()
            spec = {"min": v} if kind < 0.4 else {"max": v} if kind < 0.8 else {"min": v - 0.01, "max": v}
            thresholds[key] = Threshold(**spec, exclusive=rng.random() < 0.5) if rng.random() < 0.9 else None
        q = tdg.QualityFilter(cache_size=0, thresholds=thresholds, score_all=True)
        lazy = tdg.QualityFilter(cache_size=0, thresholds=thresholds)  # the default: stops at a failing set
        sets = list(q.cfg.sets)
        for text, s in zip(texts, scores):
            ex, ex_lazy = tdg.Example(0, text, text), tdg.Example(0, text, text)
            drop, drop_lazy = q.judge(ex), lazy.judge(ex_lazy)
            fails = [k for k in keys if thresholds[k] is not None and k in s and not math.isnan(s[k])
                     and not thresholds[k].passes(s[k])]
            assert ex.counts == {"quality/fired/" + k[8:]: 1 for k in fails}
            assert (drop.reason, drop.score) == (fails[0], s[fails[0]]) if fails else drop is None
            assert (drop_lazy.reason, drop_lazy.score) == (drop.reason, drop.score) if fails else drop_lazy is None
            # the lazy stage scores the sets up to the first failing one (and always the first: the stop words)
            upto = max(sets.index(fails[0].split("/")[1]), 0) if fails else len(sets) - 1
            assert ex_lazy.counts == {"quality/fired/" + k[8:]: 1 for k in fails
                                      if sets.index(k.split("/")[1]) <= upto}
