"""Text shingling works on groups of whole texts: a chunk of long texts must not leave arrays (the cached
powers of the byte polynomial) the size of the whole chunk behind, and the grouping never changes a hash."""
import random

import numpy as np

from torchdataguard.dedup import hashing
from torchdataguard.dedup.hashing import text_shingle_hashes

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
         "upsilon phi chi psi omega École straße ＡＢＣ 東京 1984").split()


def _texts(n, lo, hi, seed=0):
    rng = random.Random(seed)
    out = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))) for _ in range(n)]
    return out + ["!!!", "one two", "x", "Three words here."]  # texts of fewer than 5 words, one without words


def test_a_chunk_of_long_texts_leaves_no_chunk_sized_arrays_behind(monkeypatch):
    monkeypatch.setattr(hashing, "_pow_cache", np.ones(1, dtype=np.uint64))
    monkeypatch.setattr(hashing, "_inv_cache", np.ones(1, dtype=np.uint64))
    monkeypatch.setattr(hashing, "GROUP_CHARS", 1 << 16, raising=False)
    texts = _texts(40, 15000, 16000)  # about 3.4 MB of text in one chunk
    total = sum(len(t.encode()) for t in texts)
    longest = max(len(t.encode()) for t in texts)
    h, d = text_shingle_hashes(texts)
    assert np.bincount(d, minlength=len(texts)).min() >= 1
    bound = 2 * (4 * hashing.GROUP_CHARS + longest) + 2  # group bytes (UTF-8: at most 4 per character), doubled
    assert hashing._pow_cache.size <= bound < total, (hashing._pow_cache.size, bound, total)
    assert hashing._inv_cache.size == hashing._pow_cache.size


def _by_doc(h, d, n):
    return [sorted(h[d == i].tolist()) for i in range(n)]


def test_the_grouping_never_changes_a_documents_shingles(monkeypatch):
    """Consumers group shingles by document (MinHash minima, sorted exact sets), so only each document's
    multiset of hashes must not depend on the grouping (script-aware shingling lists word windows, then
    character windows, then one-shingle texts within a group)."""
    texts = _texts(300, 1, 400, seed=1)
    monkeypatch.setattr(hashing, "GROUP_CHARS", 1 << 40)  # one group
    h1, d1 = text_shingle_hashes(texts)
    for g in (1, 997, 20000):
        monkeypatch.setattr(hashing, "GROUP_CHARS", g)
        h2, d2 = text_shingle_hashes(texts)
        assert d2.dtype == np.int64
        assert _by_doc(h1, d1, len(texts)) == _by_doc(h2, d2, len(texts)), g


def test_ascii_texts_shingled_apart_give_each_document_the_same_shingles(monkeypatch):
    """A group with a few non-ASCII texts shingles its ASCII texts apart (hashing._ascii_apart): each document
    keeps its multiset of hashes, in every shingling mode."""
    rng = random.Random(7)
    plain = [" ".join(rng.choice(WORDS[:24]) for _ in range(rng.randint(0, 30))) for _ in range(400)]
    plain += ["!!!", "", "x", "A-B c.d e_f 12 34 56 78 90", "tab\tand\nnewline here now ok"]
    other = _texts(20, 1, 40, seed=8)[:20]
    texts = plain[:150] + other[:3] + plain[150:] + other[3:]
    assert 0 < sum(not t.isascii() for t in texts) * 8 < len(texts)
    for mode in ("auto", "words", "chars"):
        h1, d1 = text_shingle_hashes(texts, mode=mode)
        monkeypatch.setattr(hashing, "_ascii_apart", lambda t, *a: hashing._shingle_group(t, *a))
        h2, d2 = text_shingle_hashes(texts, mode=mode)
        monkeypatch.undo()
        assert d1.dtype == d2.dtype == np.int64 and h1.dtype == h2.dtype
        assert _by_doc(h1, d1, len(texts)) == _by_doc(h2, d2, len(texts)), mode


def test_the_power_tables_are_whole_while_another_thread_grows_them(monkeypatch):
    """``_powers`` replaces its two cached tables one after the other; a call made in between (another thread's,
    run here from inside the growing call) gets tables of the length it asked for (it got the old, short inverse
    table, and shingle hashes that failed or were wrong)."""
    from torchdataguard.core.mixing import np_powers

    monkeypatch.setattr(hashing, "_pow_cache", np.ones(1, dtype=np.uint64))
    monkeypatch.setattr(hashing, "_inv_cache", np.ones(1, dtype=np.uint64))
    seen = []

    def powers_with_a_thread_switch(base, m):
        out = np_powers(base, m)
        if base != int(hashing._POLY) and not seen:  # the inverse table of the growing call: switch threads now
            seen.append(None)
            seen[0] = [t.size for t in hashing._powers(100)]
        return out

    monkeypatch.setattr(hashing, "np_powers", powers_with_a_thread_switch)
    pw, inv = hashing._powers(100)
    assert seen == [[100, 100]] and pw.size == inv.size == 100
    assert (pw * inv == 1).all()  # each power times its inverse, mod 2**64


def test_groups_of_chinese_text_are_cut_by_their_utf8_bytes(monkeypatch):
    """A Chinese character is three UTF-8 bytes, and the work arrays follow the bytes: a group of several texts
    holds at most GROUP_CHARS bytes (it held GROUP_CHARS characters, three times the arrays, before 2026-12-07),
    and every document keeps its shingles."""
    rng = random.Random(3)
    han = [chr(c) for c in range(0x4E00, 0x4E00 + 400)]
    texts = ["".join(rng.choice(han) for _ in range(rng.randint(20, 300))) + "。" for _ in range(400)]
    texts += ["plain ascii words " * rng.randint(1, 30) for _ in range(50)]
    rng.shuffle(texts)
    groups = []
    real = hashing._ascii_apart
    monkeypatch.setattr(hashing, "_ascii_apart", lambda g, *a: groups.append(list(g)) or real(g, *a))
    monkeypatch.setattr(hashing, "GROUP_CHARS", 1 << 14)
    h2, d2 = text_shingle_hashes(texts)
    assert len(groups) > 1
    for g in groups:
        assert len(g) == 1 or sum(len(t.encode()) for t in g) <= hashing.GROUP_CHARS, sum(len(t.encode()) for t in g)
    assert sum(map(len, groups)) == len(texts)
    monkeypatch.setattr(hashing, "GROUP_CHARS", 1 << 40)  # one group
    h1, d1 = text_shingle_hashes(texts)
    assert _by_doc(h1, d1, len(texts)) == _by_doc(h2, d2, len(texts))
