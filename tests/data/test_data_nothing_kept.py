"""A wrap that keeps none of its records says so, with the reasons and, for the QualityFilter's length rules that
short texts (chat turns) all fail, how to relax them. Before, guard.wrap(chat) returned [] without a word, and a
datasets.Dataset came back empty for the Trainer to fail on (num_samples=0)."""
import warnings

import datasets
import pytest

import torchdataguard as tdg

CHAT = ["lol that's so true 😂", "omg amazing 🔥🔥", "ok see you at 5 👍", "same here tbh 😭", "yes finally done 🎉",
        "no way, really? 😱", "haha you're right", "love it, thanks ❤️", "wow look at that 👀", "nice, good job 💯"]


def wrapped(data, guard):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = guard.wrap(data)
    return out, [str(x.message) for x in w if "kept none" in str(x.message)], w


@pytest.mark.parametrize("kind", ["list", "datasets"])
def test_a_wrap_that_keeps_nothing_warns_with_the_reason_and_the_fix(kind):
    data = CHAT if kind == "list" else datasets.Dataset.from_dict({"text": CHAT})
    out, msgs, w = wrapped(data, tdg.Guard([tdg.QualityFilter()], progress=False))
    assert len(out) == 0 and len(msgs) == 1
    assert "kept none of the 10 records" in msgs[0] and "quality/gopher_quality/word_count 10" in msgs[0]
    assert "leave QualityFilter out" in msgs[0] and "sets=['gopher_repetition']" in msgs[0]
    assert next(x for x in w if "kept none" in str(x.message)).filename == __file__  # points at the caller
    relaxed = tdg.QualityFilter(sets=["gopher_repetition"])
    out, msgs, _ = wrapped(data, tdg.Guard([relaxed], progress=False))
    assert len(out) > 0 and msgs == []


def test_a_wrap_that_keeps_something_or_has_nothing_is_quiet():
    out, msgs, _ = wrapped(CHAT[:3] * 2, tdg.Guard([tdg.ExactDedup()], progress=False))
    assert len(out) == 3 and msgs == []
    out, msgs, _ = wrapped([], tdg.Guard([tdg.ExactDedup()], progress=False))
    assert out == [] and msgs == []
