"""Each quality rule on small hand-built texts: fires, does not fire, and at its threshold boundary.

The n-gram scores are also checked against a plain reference implementation written from the Gopher
paper's definitions (one loop per definition, no shortcuts).
"""
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import torchdataguard as tdg
from torchdataguard.errors import ConfigError
from torchdataguard.quality.rules import (RULE_SETS, C4Lines, ScoreConfig, TextStats, Threshold, all_rules,
                                          score_text)


def only(key, *, threshold=None, **kw):
    """A QualityFilter whose only active rule is ``key`` (other scores are still computed)."""
    set_name = key.split("/")[1]
    off = {r.key: None for r in RULE_SETS.get(set_name).rules if r.key != key}
    if threshold is not None:
        off[key] = threshold
    return tdg.QualityFilter(sets=[set_name], thresholds=off, cache_size=0, **kw)


def verdict(stage, text):
    r = stage.process(tdg.Example(0, text, text))
    return r.reason if isinstance(r, tdg.Drop) else "kept"


def fillers(n, width=5):
    """``n`` distinct tokens of ``width`` characters (no repeated n-gram among them)."""
    return [f"w{i:0{width - 1}d}" for i in range(n)]


# -- thresholds --------------------------------------------------------------------------------------------

def test_threshold_inclusive_and_exclusive_bounds():
    t = Threshold(min=0.12, max=0.5)
    assert t.passes(0.12) and t.passes(0.5) and not t.passes(0.119) and not t.passes(0.51)
    e = Threshold(min=0.12, exclusive=True)
    assert not e.passes(0.12) and e.passes(0.1201)
    with pytest.raises(ConfigError, match="min=2.0 is above max=1.0"):
        Threshold(min=2, max=1)
    with pytest.raises(ConfigError, match="at least one bound"):
        Threshold()
    with pytest.raises(ConfigError, match="finite number"):
        Threshold(max=float("nan"))
    with pytest.raises(ConfigError, match="unknown keys \\['mn'\\]"):
        Threshold.parse("quality/c4/sentences", {"mn": 3})


def test_every_rule_has_a_published_default_and_a_unique_key():
    rules = all_rules()
    assert len(rules) == sum(len(RULE_SETS.get(s).rules) for s in RULE_SETS)
    assert rules["quality/gopher_quality/word_count"].default == Threshold(min=50, max=100_000)
    assert rules["quality/gopher_repetition/dup_10gram_char_ratio"].default == Threshold(max=0.10)
    assert rules["quality/c4/sentences"].default == Threshold(min=3)
    assert rules["quality/fineweb/line_punct_ratio"].default == Threshold(min=0.12, exclusive=True)


# -- gopher_quality -------------------------------------------------------------------------------------------

def test_word_count_bounds():
    st = only("quality/gopher_quality/word_count")
    assert verdict(st, " ".join(fillers(49))) == "quality/gopher_quality/word_count"
    assert verdict(st, " ".join(fillers(50))) == "kept"
    # punctuation-only tokens are not words
    assert verdict(st, " ".join(fillers(49)) + " - --- !!") == "quality/gopher_quality/word_count"
    small = only("quality/gopher_quality/word_count", threshold={"min": 1, "max": 10})
    assert verdict(small, " ".join(fillers(10))) == "kept"
    assert verdict(small, " ".join(fillers(11))) == "quality/gopher_quality/word_count"


def test_mean_word_length_bounds():
    st = only("quality/gopher_quality/mean_word_length")
    assert verdict(st, "abc, def. ghi!") == "kept"  # 3.0 after stripping punctuation
    assert verdict(st, "ab cd abc") == "quality/gopher_quality/mean_word_length"  # 2.33
    assert verdict(st, "abcdefghij " * 5) == "kept"  # 10.0
    assert verdict(st, "abcdefghijk abcdefghij") == "quality/gopher_quality/mean_word_length"  # 10.5
    assert score_text("abc, de.", ["gopher_quality"])["quality/gopher_quality/mean_word_length"] == 2.5


@pytest.mark.parametrize("rule,mark", [("hash_to_word_ratio", "#"), ("ellipsis_to_word_ratio", "...")])
def test_symbol_to_word_ratios(rule, mark):
    key = f"quality/gopher_quality/{rule}"
    st = only(key)
    words = fillers(20)
    at = " ".join(w + mark if i < 2 else w for i, w in enumerate(words))  # 2 / 20 = 0.1
    above = " ".join(w + mark if i < 3 else w for i, w in enumerate(words))
    assert score_text(at, ["gopher_quality"])[key] == 0.1
    assert verdict(st, at) == "kept"
    assert verdict(st, above) == key


def test_bullet_and_ellipsis_lines():
    b = only("quality/gopher_quality/bullet_lines_ratio")
    lines = ["- item"] * 9 + ["A line of text."]
    assert verdict(b, "\n".join(lines)) == "kept"  # 0.9
    assert verdict(b, "\n".join(["* item", "\u2022 item", "- item"] * 4)) == "quality/gopher_quality/bullet_lines_ratio"
    e = only("quality/gopher_quality/ellipsis_lines_ratio")
    lines = ["and then..."] * 3 + ["A full line."] * 7
    assert verdict(e, "\n".join(lines)) == "kept"  # 0.3
    lines = ["and then\u2026"] * 4 + ["A full line."] * 6
    assert verdict(e, "\n".join(lines)) == "quality/gopher_quality/ellipsis_lines_ratio"


def test_alpha_words_ratio():
    st = only("quality/gopher_quality/alpha_words_ratio")
    eight = "one two three four five six seven eight"
    assert verdict(st, eight + " 12 3.5") == "kept"  # 8 / 10
    assert verdict(st, "one two three four five six seven 42 12 3.5") == "quality/gopher_quality/alpha_words_ratio"
    # letters of scripts without case count too
    assert score_text("\u6f22\u5b57 \u0645\u0631\u062d\u0628\u0627 x", ["gopher_quality"])[
        "quality/gopher_quality/alpha_words_ratio"] == 1.0


def test_stop_words():
    st = only("quality/gopher_quality/stop_words")
    assert verdict(st, "apple banana The cherry") == "quality/gopher_quality/stop_words"
    assert verdict(st, "the apple, the banana, THE cherry") == "quality/gopher_quality/stop_words"  # one distinct
    assert verdict(st, "apple, banana; The cherry, and (of) plum") == "kept"
    custom = only("quality/gopher_quality/stop_words", stop_words=["apple", "plum"])
    assert verdict(custom, "apple banana plum") == "kept"


# -- gopher_repetition ---------------------------------------------------------------------------------------

def test_duplicate_lines_and_paragraphs():
    key = "quality/gopher_repetition/dup_line_ratio"
    lines = ["repeated line"] * 4 + [f"line {w}" for w in fillers(6)]  # 3 duplicates / 10 lines
    assert score_text("\n".join(lines), ["gopher_repetition"])[key] == 0.3
    assert verdict(only(key), "\n".join(lines)) == "kept"
    lines = ["repeated line"] * 5 + [f"line {w}" for w in fillers(5)]
    assert verdict(only(key), "\n".join(lines)) == key
    pkey = "quality/gopher_repetition/dup_para_ratio"
    paras = ["same paragraph\nwith two lines"] * 4 + [f"para {w}" for w in fillers(6)]
    assert score_text("\n\n".join(paras), ["gopher_repetition"])[pkey] == 0.3
    paras = ["same paragraph\nwith two lines"] * 5 + [f"para {w}" for w in fillers(5)]
    assert verdict(only(pkey), "\n \n".join(paras)) == pkey


def test_duplicate_line_characters():
    key = "quality/gopher_repetition/dup_line_char_ratio"
    # lines of 10 characters: one line twice (10 duplicate chars) among 50 -> 0.2
    lines = ["abcdefghij", "abcdefghij", "k123456789", "l123456789", "m123456789"]
    assert score_text("\n".join(lines), ["gopher_repetition"])[key] == 0.2
    assert verdict(only(key), "\n".join(lines)) == "kept"
    assert verdict(only(key), "\n".join(lines[:4])) == key  # 10 / 40


@pytest.mark.parametrize("n,limit", [(2, 0.2), (3, 0.18), (4, 0.16)])
def test_top_ngram_character_share(n, limit):
    key = f"quality/gopher_repetition/top_{n}gram_char_ratio"
    gram = [f"g{i}" for i in range(n)]  # 2-character tokens
    rep_chars = 2 * 2 * n

    def doc(k):
        return " ".join(gram + fillers(k) + gram)

    # smallest filler count that keeps the share at or under the limit, and one fewer
    k = next(k for k in range(1, 500) if rep_chars / (rep_chars + 5 * k) <= limit)
    s_ok = score_text(doc(k), ["gopher_repetition"])[key]
    s_bad = score_text(doc(k - 1), ["gopher_repetition"])[key]
    assert s_ok == pytest.approx(rep_chars / (rep_chars + 5 * k))
    assert s_bad > limit >= s_ok
    assert verdict(only(key), doc(k)) == "kept"
    assert verdict(only(key), doc(k - 1)) == key


def test_top_ngram_counts_overlapping_occurrences_once():
    # "a a a a" holds the 2-gram "a a" three times, overlapping: 4 tokens covered, not 6
    s = score_text("a a a a", ["gopher_repetition"])
    assert s["quality/gopher_repetition/top_2gram_char_ratio"] == 1.0


@pytest.mark.parametrize("n,limit", [(5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)])
def test_duplicated_ngram_character_share(n, limit):
    key = f"quality/gopher_repetition/dup_{n}gram_char_ratio"
    gram = [f"d{i:02d}" for i in range(n)]  # 3-character tokens, repeated twice
    rep_chars = 2 * 3 * n

    def doc(k):
        return " ".join(gram + fillers(k) + gram)

    k = next(k for k in range(1, 500) if rep_chars / (rep_chars + 5 * k) <= limit)
    assert verdict(only(key), doc(k)) == "kept"
    assert verdict(only(key), doc(k - 1)) == key
    s = score_text(doc(k), ["gopher_repetition"])
    assert s[key] == pytest.approx(rep_chars / (rep_chars + 5 * k))
    if n < 10:  # a repeated n-gram holds no repeated (n+1)-gram
        assert s[f"quality/gopher_repetition/dup_{n + 1}gram_char_ratio"] == 0.0


def _reference_ngram_scores(tokens):
    """Straight from the definitions: top n-gram share (n = 2..4), duplicated n-gram share (n = 5..10)."""
    lens = [len(t) for t in tokens]
    total = sum(lens)
    out = {}
    for n in range(2, 11):
        grams = [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        counts = Counter(grams)
        if n <= 4:
            value = 0.0
            if counts and max(counts.values()) > 1:
                best = max(counts.values())
                # ties: more characters, then the earliest occurrence
                cands = [g for g in counts if counts[g] == best]
                g = max(cands, key=lambda g: (sum(map(len, g)), -grams.index(g)))
                covered = set()
                for i, x in enumerate(grams):
                    if x == g:
                        covered.update(range(i, i + n))
                value = sum(lens[i] for i in covered) / total
            out[f"quality/gopher_repetition/top_{n}gram_char_ratio"] = value
        else:
            covered = set()
            for i, x in enumerate(grams):
                if counts[x] > 1:
                    covered.update(range(i, i + n))
            out[f"quality/gopher_repetition/dup_{n}gram_char_ratio"] = (
                sum(lens[i] for i in covered) / total if total else 0.0)
    return out


@settings(max_examples=150, deadline=None)
@given(hst.lists(hst.sampled_from(["a", "bb", "ccc", "the", "of", "x", "yy"]), min_size=0, max_size=60))
def test_ngram_scores_match_reference(tokens):
    text = " ".join(tokens)
    got = score_text(text, ["gopher_repetition"])
    want = _reference_ngram_scores(text.lower().split())
    for k, v in want.items():
        assert got[k] == pytest.approx(v), k


def test_ngram_scores_match_reference_on_real_text():
    from torchdataguard.assets import load_spamassassin

    for row in load_spamassassin(limit=60):
        got = score_text(row["text"], ["gopher_repetition"])
        want = _reference_ngram_scores(row["text"].lower().split())
        for k, v in want.items():
            assert got[k] == pytest.approx(v), (row["id"], k)


# -- c4 -----------------------------------------------------------------------------------------------------

SENT = "This line has more than five words in it."


def test_c4_lorem_ipsum_and_curly_bracket():
    assert verdict(only("quality/c4/lorem_ipsum"), f"{SENT}\nLorem Ipsum dolor sit amet.") == "quality/c4/lorem_ipsum"
    assert verdict(only("quality/c4/lorem_ipsum"), f"{SENT} lorem, ipsum") == "kept"
    assert verdict(only("quality/c4/curly_bracket"), f"{SENT} f(x) {{ return 1; }}") == "quality/c4/curly_bracket"
    assert verdict(only("quality/c4/curly_bracket"), f"{SENT} (round) [square] }}") == "kept"


def test_c4_sentences_use_the_line_filters():
    key = "quality/c4/sentences"
    st = only(key)
    assert verdict(st, f"{SENT} {SENT}\n{SENT}") == "kept"  # 3 sentences
    assert verdict(st, f"{SENT} {SENT}") == key
    assert verdict(st, f"{SENT} {SENT} And a last one without an end mark") == "kept"  # unfinished one counts
    # lines with fewer than five words, javascript notices and policy notices do not count
    assert verdict(st, f"{SENT}\n{SENT}\nToo short. Really. Yes.") == key
    assert verdict(st, f"{SENT}\n{SENT}\nPlease enable JavaScript to view all of this page.") == key
    assert verdict(st, f"{SENT}\n{SENT}\nThis site uses cookies to improve your visit.") == key
    # without the javascript/policy line filters those lines count
    loose = only(key, c4_lines={"javascript": False, "policy": False})
    assert verdict(loose, f"{SENT}\n{SENT}\nThis site uses cookies to improve your visit.") == "kept"
    # the paper's terminal-punctuation line filter is off by default (FineWeb's choice), on when asked
    unfinished = f"{SENT} {SENT} {SENT[:-1]}\nsecond line has no end mark at all here"
    assert verdict(st, unfinished) == "kept"
    paper = only(key, c4_lines=C4Lines(terminal_punct=True))
    assert verdict(paper, f"{SENT}\n{SENT}\nthree words here, no end mark") == key
    assert verdict(paper, f"{SENT}\n{SENT}\nThe third line ends as it should.") == "kept"


def test_c4_bad_words_only_with_a_list():
    text = f"{SENT} {SENT} {SENT} darn it"
    assert "quality/c4/bad_words" not in score_text(text, ["c4"])
    st = only("quality/c4/bad_words", bad_words=["Darn", "two words"])
    assert verdict(st, text) == "quality/c4/bad_words"
    assert verdict(st, f"{SENT} darnit and twowords") == "kept"
    assert verdict(st, f"{SENT} said two  words") == "kept"  # phrases match as written
    assert verdict(st, f"{SENT} said two words.") == "quality/c4/bad_words"


# -- fineweb ---------------------------------------------------------------------------------------------------

def test_fineweb_line_punct_ratio_is_exclusive():
    key = "quality/fineweb/line_punct_ratio"
    lines = ["Ends with a stop."] * 3 + ["no stop here"] * 22  # 3 / 25 = 0.12 -> removed (<= 0.12)
    assert score_text("\n".join(lines), ["fineweb"])[key] == 0.12
    assert verdict(only(key), "\n".join(lines)) == key
    lines = ["Ends with a stop!"] * 4 + ["no stop here"] * 21
    assert verdict(only(key), "\n".join(lines)) == "kept"


def test_fineweb_duplicate_line_chars_and_short_lines():
    key = "quality/fineweb/dup_line_char_ratio"
    lines = ["abcdefghij", "abcdefghij"] + [f"{w}{w}" for w in fillers(8)]  # 10 / 100 -> removed (>= 0.1)
    assert verdict(only(key), "\n".join(lines)) == key
    lines = ["abcdefghij", "abcdefghij"] + [f"{w}{w}" for w in fillers(9)]  # 10 / 110
    assert verdict(only(key), "\n".join(lines)) == "kept"
    skey = "quality/fineweb/short_line_ratio"
    long_line = "x" * 30
    lines = ["short"] * 67 + [long_line] * 33  # 0.67 -> removed (>= 0.67)
    assert verdict(only(skey), "\n".join(lines)) == skey
    lines = ["short"] * 66 + [long_line] * 34
    assert verdict(only(skey), "\n".join(lines)) == "kept"


# -- shared values -----------------------------------------------------------------------------------------

def test_text_stats_and_empty_text():
    st = TextStats("  Hi, there!  \n\n\n- x\n")
    assert st.lines() == ["Hi, there!", "- x"]
    assert st.words() == ["hi", "there", "x"]
    s = score_text("", list(RULE_SETS))
    assert s["quality/gopher_quality/word_count"] == 0.0 and s["quality/c4/sentences"] == 0.0
    assert all(v == v for v in s.values())  # no nan for an empty text


def test_score_options_validation():
    with pytest.raises(ConfigError, match="stop_words"):
        ScoreConfig(stop_words="the")
    with pytest.raises(ConfigError, match="bad_words"):
        ScoreConfig(bad_words="word")
    with pytest.raises(ConfigError, match="min_words"):
        C4Lines(min_words=-1)


# -- rule sets ---------------------------------------------------------------------------------------------

def test_a_rule_set_scorer_returns_one_score_per_rule_name():
    from torchdataguard.quality.rules import Rule, RuleSet

    rules = (Rule("demo", "chars", Threshold(min=1), "characters"), Rule("demo", "lines", Threshold(min=1), "lines"))
    good = RuleSet("demo", rules, lambda st, cfg: {"lines": float(len(st.lines())), "chars": float(len(st.text))},
                   "a test")
    assert good.score(TextStats("ab\ncd"), ScoreConfig()) == {"chars": 5.0, "lines": 2.0}  # matched by name
    with pytest.raises(ConfigError, match=r"returned \['chars', 'line'\].*\['chars', 'lines'\]"):
        RuleSet("demo", rules, lambda st, cfg: {"chars": 1.0, "line": 1.0}, "a test")  # misspelled: refused when built
    with pytest.raises(ConfigError, match="returned list"):
        RuleSet("demo", rules, lambda st, cfg: [1.0, 1.0], "a test")  # positional lists are refused
    with pytest.raises(ConfigError, match="other sets"):
        RuleSet("demo", (Rule("c4", "chars", Threshold(min=1), "characters"),), lambda st, cfg: {"chars": 1.0}, "x")


def test_tokens_with_letter_counts_tokens_holding_a_letter():
    import random

    rng = random.Random(5)
    alphabet = "aZ09 -_.!?\t\n>#" + "é中ßΣ٣"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        st = TextStats(text)
        assert st.tokens_with_letter() == sum(1 for t in st.tokens() if not t.isdigit() and any(map(str.isalpha, t)))
