"""Every score, drop reason and counter of ``QualityFilter`` on varied texts, bit for bit, as the code gave them
before the scoring speed-ups (``tests/fixtures/quality_pins``): the fast paths (short texts counted on tuples,
long ASCII texts read as bytes, U+001C .. U+001F read as str) change no value."""
import importlib.util
import json
import warnings
from pathlib import Path

import pytest

import torchdataguard as tdg
from torchdataguard.quality.rules import ngrams, stats

_HERE = Path(__file__).resolve().parents[1] / "fixtures" / "quality_pins"
PINS = json.loads((_HERE / "pins.json").read_text(encoding="utf-8"))
_spec = importlib.util.spec_from_file_location("make_pins", _HERE / "make_pins.py")
_make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_make)
STAGES, judge = _make.STAGES, _make.judge  # the generator's stages and what it records


def _jieba() -> bool:
    try:
        import jieba  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(PINS["texts"]))
def test_scores_equal_the_pins(name):
    if name == "chinese" and not _jieba():
        pytest.skip("the Chinese profile needs jieba")
    text = PINS["texts"][name]
    want = PINS["pins"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = {st: judge(make(), text) for st, make in STAGES.items()}
        got["default_ja"] = judge(STAGES["default"](), text, "ja")
    assert got == want


@pytest.mark.parametrize("name", sorted(PINS["texts"]))
def test_the_default_stops_at_the_first_failing_rule_set(name):
    """The default (``score_all=False``) gives the pins' decision, reason and score; it records the scores and
    fired rules of the rule sets up to the one that drops the text (the first one, where the language guess
    reads its stop-word count), and the pins' own where the text is kept."""
    if name == "chinese" and not _jieba():
        pytest.skip("the Chinese profile needs jieba")
    text = PINS["texts"][name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for st, make in STAGES.items():
            stage = make()
            lazy = tdg.QualityFilter(**{**_settings(stage), "score_all": False})
            for language, key in ((None, st), ("ja", "default_ja")) if st == "default" else ((None, st),):
                want = PINS["pins"][name][key]
                got = judge(lazy, text, language)
                assert (got["reason"], got["score"]) == (want["reason"], want["score"])
                if want["reason"] is None:
                    assert got == want
                    continue
                assert got["scores"].items() <= want["scores"].items()
                assert got["counts"].items() <= want["counts"].items()
                # the failing rule set is scored whole, and a set after it is not scored at all
                failing = want["reason"].split("/")[1]
                assert {k for k in want["scores"] if k.split("/")[1] == failing} <= set(got["scores"])
                ex = tdg.Example(0, text, text, scores={} if language is None else {f"langid/{language}": 1.0})
                sets = lazy._profiles[lazy.profile_for(ex)].sets
                assert {k.split("/")[1] for k in got["scores"]} <= set(sets[:sets.index(failing) + 1])


def test_the_default_skips_the_later_rule_sets_of_a_dropped_text():
    text = PINS["texts"]["one_word"]  # too few words: Gopher's first rule set drops it
    full, lazy = judge(STAGES["default"](), text), judge(tdg.QualityFilter(), text)
    assert lazy["reason"] == full["reason"] == "quality/gopher_quality/word_count"
    assert any(k.startswith("quality/c4/") for k in full["scores"])
    assert {k.split("/")[1] for k in lazy["scores"]} == {"gopher_quality"}


def _settings(stage):
    """The keyword arguments that build a copy of a pinned stage."""
    cfg = stage.cfg
    return {"sets": cfg.sets, "c4_lines": cfg.c4_lines, "bad_words": cfg.bad_words, "stop_words": cfg.stop_words}


def test_the_pins_reach_every_path(monkeypatch):
    """The texts go through the tuple counting, the sorts, the step-by-step method and the bytes reading."""
    seen = []
    for fn in ("_on_tuples", "_two_sorts", "_step_by_step"):
        real = getattr(ngrams, fn)
        monkeypatch.setattr(ngrams, fn, lambda *a, _f=real, _n=fn: seen.append(_n) or _f(*a))
    real_bytes = stats.TextStats._bytes_tokens
    monkeypatch.setattr(stats.TextStats, "_bytes_tokens",
                        lambda self: (lambda b: seen.append("bytes" if b is not None else "str") or b)(real_bytes(self)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in PINS["texts"].values():
            STAGES["default"]().judge(tdg.Example(0, text, text))
    assert {"_on_tuples", "_two_sorts", "_step_by_step", "bytes", "str"} <= set(seen)


def test_ascii_text_read_as_bytes_scores_as_read_as_str(monkeypatch):
    """Long ASCII texts are split and stripped as bytes: the same words, word lengths, stop words (non-ASCII
    ones never match) and n-gram shares as the str reading, on generated texts with every ASCII separator."""
    from test_quality_fast_paths import generated_texts

    from torchdataguard.quality.rules import GOPHER_STOP_WORDS, ScoreConfig, TextStats, score_text

    rng = __import__("random").Random(21)
    parts = [t.encode("ascii", "replace").decode() for t in generated_texts(rng, 3000)]  # other characters -> "?"
    texts = ["\n".join(parts[i: i + 30]) for i in range(0, len(parts), 15)]
    texts = [t.translate({0x1C: " ", 0x1F: "\t"}) if i % 3 else t for i, t in enumerate(texts)]  # most without
    texts = [t for t in texts if len(t) >= stats._BYTES_FROM]  # U+001C .. U+001F (read as str)
    assert len(texts) > 150
    configs = [ScoreConfig(), ScoreConfig(stop_words=tuple(GOPHER_STOP_WORDS) + ("na\u00efve", "x", "quoted"))]
    read_as_bytes = 0
    for text in texts:
        read_as_bytes += TextStats(text)._bytes_tokens() is not None
        got = [score_text(text, ["gopher_quality", "gopher_repetition"], opts) for opts in configs]
        with monkeypatch.context() as mp:
            mp.setattr(stats, "_BYTES_FROM", 10 ** 9)
            assert TextStats(text)._bytes_tokens() is None
            want = [score_text(text, ["gopher_quality", "gopher_repetition"], opts) for opts in configs]
        assert got == want, text
        st = TextStats(text)
        forms = st.word_forms()
        assert [w.decode() if isinstance(w, bytes) else w for w in forms] == st.words()
    assert 100 < read_as_bytes < len(texts)
