"""ExactDedup's keyer hashes texts that normalisation only lower-cases from one joined byte string
(dedup/exact.py plain_ascii_digests): pinned to the plain definition, content_hash128(normalize_for_hash(t))."""
import random

import numpy as np

from torchdataguard.core.stage import Example
from torchdataguard.dedup.exact import ExactDedup, plain_ascii_digests
from torchdataguard.dedup.hashing import content_hash128, normalize_for_hash

TRICKY = ["", " ", "  ", "a", "A", " a", "a ", " a ", "a  b", "a b", "a\tb", "a\nb", "a\r\nb", "a\x0bb", "a\x0cb",
          "a\x1cb", "a\x1fb", "a\x00b", "a\x7fb", "a\x07", "\x7f", "~", "Hello World", "HELLO   WORLD", "x\n", "\ny",
          "caf\u00e9", "\u00c9T\u00c9", "a\u00a0b", "a\u2003b", "zero\u200bwidth", "\u4e2d\u6587 text", "a\u3000b",
          "end.", "Multi word ASCII text, with punctuation!", "tab\tat\tend\t", " lead", "trail ", "x" * 1000,
          "ab" * 300 + "  " + "cd", "\ud800lone surrogate"]


def _plain(texts):
    return [content_hash128(normalize_for_hash(t)) for t in texts]


def _fast(texts):
    d = [None] * len(texts)
    plain_ascii_digests(texts, d)
    return d


def test_every_digest_given_is_the_plain_one_and_the_plain_texts_are_given():
    got = _fast(TRICKY)
    want = _plain(TRICKY)
    for t, g, w in zip(TRICKY, got, want):
        if g is not None:
            assert g == w, repr(t)
    given = {t for t, g in zip(TRICKY, got) if g is not None}
    assert {"a", "A", "~", "end.", "Hello World", "a b", "x" * 1000, "Multi word ASCII text, with punctuation!"} <= given
    assert not given & {"", " a", "a ", "a  b", "a\tb", "a\nb", "a\x7fb", "caf\u00e9", "HELLO   WORLD", " lead", "trail "}


def test_random_mixtures_match_the_plain_definition():
    rng = random.Random(7)
    alphabet = ["a", "B", "z", " ", " ", "\t", "\n", "\x00", "\x7f", ".", "\u00e9", "\u200b", "\u3000", "Q"]
    for _ in range(200):
        texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(rng.randrange(1, 40))]
        texts += ["Plain words here", "Two  spaces"]
        rng.shuffle(texts)
        for t, g, w in zip(texts, _fast(texts), _plain(texts)):
            assert g is None or g == w, repr(t)
            # and no plain text is left to the slow path (a double space at a boundary marks the right text)
            assert (g is not None) == bool(t and t.isascii() and t.isprintable() and normalize_for_hash(t) == t.lower()), repr(t)


def test_the_keyer_gives_the_plain_digests_for_every_kind_of_example():
    texts = TRICKY + [None, None]
    exs = [Example(i, {"text": t} if t is not None else {"v": i}, t) for i, t in enumerate(texts)]
    keys = ExactDedup().keyer()(exs).digests
    want = b"".join(_plain(TRICKY))
    assert keys[: len(TRICKY)].tobytes() == np.frombuffer(want, dtype=np.int64).reshape(-1, 2).tobytes()
    assert keys.shape == (len(texts), 2)
    assert ExactDedup().keyer()([]).digests.shape == (0, 2)
    raw = ExactDedup(normalize=False).keyer()(exs[:3]).digests
    assert raw.tobytes() == b"".join(content_hash128(t) for t in TRICKY[:3])
