"""NearDedup's keyer (text -> signatures, sizes, exact sets) against a plain one-text-at-a-time reference.

Signatures and LSH keys are saved in guard states and compared across runs, so a faster keyer must give the
same keys bit for bit. The reference here is the definition written out in plain Python, one text at a time:
``unicodedata.normalize("NFKC", text).lower()`` (non-ASCII texts; the ignored characters left out before and
after it), tokens by
:func:`~torchdataguard.dedup.scripts.char_class`, token hash = sum of its UTF-8 bytes times ``P**j``,
shingle = odd-weighted sum of ``n`` token hashes, SplitMix64 of the hash xor the seed, bin = high 32 bits mod
``num_perm``, value = low 32 bits, the least value per bin, empty bins filled from the first filled bin of
their probe sequence, 4-bit values; sorted distinct mixed hashes under ``K3`` shingles.
It runs on random mixed-script texts (Han, kana, Hangul syllables and jamo, Thai, Latin with accents, Greek
capital sigma, Turkish dotted I, digits, emoji, full-width forms, compatibility characters, combining marks,
lone surrogates, NULs, empty and whitespace-only texts), the real Chinese and English test texts, and long texts.
"""
import hashlib
import random
import unicodedata

import numpy as np
import pytest

from torchdataguard.core.stage import Example
from torchdataguard.dedup import hashing, xp
from torchdataguard.dedup.keys_numpy import MIX_SLICE, numpy_keys
from torchdataguard.dedup.minhash import TABLE_MAX_PERM, densify_sources, probe_table
from torchdataguard.dedup.near import NearDedup
from torchdataguard.dedup.scripts import ABUGIDA, CHAR, IGNORED, SEP, WORD, char_class
from torchdataguard.dedup.token_hashing import SHINGLE_MUL

from short_texts import sentences
from splitmix_ref import minhash_bins, splitmix
from zh_stream import passages, pieces, short_lines

M64 = (1 << 64) - 1
POLY = 0x100000001B3
MUL = [int(m) for m in SHINGLE_MUL]


_splitmix = splitmix


def _unsplitmix(x: int) -> int:
    """The inverse of :func:`_splitmix` (to build a hash whose mixed value is chosen)."""
    x ^= (x >> 31) ^ (x >> 62)
    x = (x * pow(0x94D049BB133111EB, -1, 1 << 64)) & M64
    x ^= (x >> 27) ^ (x >> 54)
    x = (x * pow(0xBF58476D1CE4E5B9, -1, 1 << 64)) & M64
    return x ^ (x >> 30) ^ (x >> 60)


def _composing(ch: str) -> bool:
    return "\u0653" <= ch <= "\u0655"  # maddah, hamza above and below: they compose with alef, waw, yeh ...


def _normal(text: str) -> str:
    """NFKC and lower case of a non-ASCII text, its ignored characters (zero-width, tatweel, harakat ...) left out:
    before NFKC (but maddah and hamza, which compose with a letter), and after it; a maddah or hamza that did not
    compose and stands before another mark taken out first, one at a time (so the next may compose); then NFKC
    again (what a left-out character kept apart composes), and lower case last."""
    if text.isascii():
        return text
    nfkc = lambda s: unicodedata.normalize("NFKC", s)  # noqa: E731
    t = nfkc("".join(ch for ch in text if char_class(ch) != IGNORED or _composing(ch)))
    while True:
        stuck = [i for i in range(len(t) - 1) if _composing(t[i]) and unicodedata.combining(t[i + 1])]
        if not stuck:
            break
        t = nfkc(t[: stuck[0]] + t[stuck[0] + 1 :])
    return nfkc("".join(ch for ch in t if char_class(ch) != IGNORED)).lower()


def ref_tokens(text: str, mode: str):
    """Tokens of ``text`` and the class of each: :data:`CHAR` or :data:`ABUGIDA` for a character token (all
    :data:`CHAR` with ``mode="chars"``), :data:`WORD` for a word."""
    out, word = [], ""
    for ch in (text.lower() if text.isascii() else _normal(text)):
        if mode == "words":
            c = WORD if (ch.isascii() and ch.isalnum()) or not ch.isascii() else SEP
        else:
            c = char_class(ch)
        if c == WORD and mode != "chars":
            word += ch
            continue
        if word:
            out.append((word, WORD))
            word = ""
        if c != SEP:
            out.append((ch, CHAR if mode == "chars" else c))
    if word:
        out.append((word, WORD))
    return out


def ref_hashes(text: str, ngram: int, char_ngram: int, mode: str, abugida_ngram: int = 8):
    """The shingle hashes of one text (before mixing with the seed), in order."""
    toks = ref_tokens(text, mode)
    wh = [sum(b * pow(POLY, j, 1 << 64) for j, b in enumerate(t.encode("utf-8", "surrogatepass"))) & M64
          for t, _ in toks]
    out = []
    for i, (_, kind) in enumerate(toks):
        n = {CHAR: char_ngram, ABUGIDA: abugida_ngram}.get(kind, ngram)
        if i + n <= len(toks):
            out.append((sum(wh[i + k] * MUL[k % len(MUL)] for k in range(n)) + n * (n - 1) // 2) & M64)
    if out:
        return out
    if toks:
        h = (sum(w * MUL[k % len(MUL)] for k, w in enumerate(wh)) + len(toks) * 0x632BE59BD9B4E019) & M64
    else:
        h = int.from_bytes(hashlib.blake2b(_normal(text).encode("utf-8", "surrogatepass"), digest_size=16)
                           .digest()[:8], "little")
    return [_splitmix(h)]


def ref_keys(per_doc_hashes, num_perm: int, seed: int, limits):
    """``(nib, size, sets)`` of each document from its shingle hashes, one document at a time."""
    K, _, K3 = limits
    probes = probe_table(num_perm, seed).tolist()
    salt = (seed * 0x5851F42D4C957F2D + 0x14057B7EF767814F) & M64
    nib, size, sets = [], [], []
    for hs in per_doc_hashes:
        xs = [_splitmix(h ^ salt) for h in hs]
        bins, filled = minhash_bins(xs, num_perm)
        distinct = sorted({x - (1 << 64) if x >> 63 else x for x in xs})  # as int64
        cnt = min(len(distinct), K3) if xs else 0
        size.append(cnt)
        sets.append(distinct if 0 < cnt < K3 else [])
        if cnt >= K:
            nib.append([(bins[b] if bins[b] is not None else
                         bins[next((p for p in probes[b] if bins[p] is not None), filled[0])]) & 15
                        for b in range(num_perm)])
        else:
            nib.append([0] * num_perm)
    return nib, size, sets


ALPHABETS = [
    [chr(c) for c in range(0x4E00, 0x9FFF, 37)],                      # Han
    [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)],  # kana
    [chr(c) for c in range(0xAC00, 0xD7A3, 101)],                     # Hangul syllables
    [chr(c) for c in range(0x1100, 0x1113)] + [chr(c) for c in range(0x1161, 0x1176)],  # jamo (NFKC composes)
    [chr(c) for c in range(0x0E01, 0x0E3A)] + [chr(c) for c in range(0x0E40, 0x0E4F)],  # Thai, marks included
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéÉçÇñÑüÜøß"),  # Latin
    list("ΑΒΓΔΣσςαβγδ") + ["Σ", "ΟΔΟΣ"],                                 # Greek, capital sigma at word ends
    list("İIıi"), list("0123456789"), list("٠١٢٣"),                    # Turkish I, digits, Arabic digits
    [chr(c) for c in (0x1F600, 0x1F680, 0x1F44D, 0x2764, 0xFE0F, 0x200D, 0x1F1EF, 0x1F1F5)],  # emoji, ZWJ
    [chr(c) for c in range(0xFF01, 0xFF5F)] + ["\u3000"],               # full-width forms
    list("ﬁﬂ㈱①½ｶﾞﾊﾟ™㎏ℌ\u2026\u2025"),                                 # compatibility forms
    ["\u0301", "\u0308", "\u3099", "\u309a", "\u0327"],                 # combining marks
    list("。，、；：？！“”「」『』（）《》—·-.,;:!?\"'()[]"),              # punctuation
    list(" \t\n\r\u00a0\u2009\u200b\u00ad"),                            # spaces and format characters
    # Arabic letters, tatweel, harakat, presentation forms; Hebrew letters, points, punctuation; bidi marks
    list("\u0643\u062a\u0628\u0640\u064e\u064f\u0650\u0651\u0652\u0670\u0627\u0653\u0654\ufe8d\ufef5"),
    list("\u05e9\u05dc\u05d5\u05dd\u05b8\u05b9\u05bc\u05c1\u0591\u05be\u05c3\ufb2a\u200e\u200f\u2067\u2069"),
    [chr(c) for c in range(0x1780, 0x17DD, 3)] + [chr(c) for c in range(0x1000, 0x1040, 3)],  # Khmer, Myanmar
]
SURROGATES = [chr(c) for c in (0xD800, 0xDBFF, 0xDC00, 0xDFFF)]


def random_texts(n: int, seed: int, *, surrogates: bool = True, nul: bool = False, longest: int = 200):
    rng = random.Random(seed)
    extra = [SURROGATES] if surrogates else []
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.04:
            out.append(rng.choice(["", " ", "\t\n", "\u3000\u3000", "。。", "!!!", "\u200b", "-- --"]))
            continue
        k = rng.randint(1, longest if r > 0.3 else 20)
        alph = rng.sample(ALPHABETS + extra, rng.randint(1, 4))
        s = [rng.choice(rng.choice(alph)) for _ in range(k)]
        if nul and rng.random() < 0.2:
            s.insert(rng.randrange(len(s) + 1), "\x00")
        out.append("".join(s))
    return out


def real_texts():
    en = list(sentences(1, 60, 600))
    return passages() + short_lines() + pieces(passages(), 2, 300) + en + [" ".join(en[i : i + 40]) for i in range(0, 600, 40)]


def _check_keyer(texts, **kw):
    stage = NearDedup(**kw)
    cfg = stage.cfg
    keys = stage.keyer()([Example(i, t, t) for i, t in enumerate(texts)])
    per_doc = [ref_hashes(t, cfg.ngram, cfg.char_ngram or cfg.ngram, cfg.text_shingles,
                          cfg.abugida_ngram or cfg.ngram) for t in texts]
    nib, size, sets = ref_keys(per_doc, cfg.num_perm, cfg.seed, cfg.limits)
    off = keys.off.tolist()
    assert keys.size.tolist() == size
    assert keys.valid.tolist() == [True] * len(texts)
    assert [keys.sets[off[i] : off[i + 1]].tolist() for i in range(len(texts))] == sets
    assert keys.nib.tolist() == nib
    return size


@pytest.mark.parametrize("kw", [{}, {"text_shingles": "words"}, {"text_shingles": "chars"},
                                {"threshold": 0.7, "num_perm": 20, "seed": 5, "char_ngram": 3},
                                {"num_perm": 2 * TABLE_MAX_PERM, "ngram": 3}])
def test_keyer_equals_the_reference_on_random_mixed_script_texts(kw):
    texts = random_texts(1300, seed=len(str(kw)))  # more than one key group of 1,024
    size = _check_keyer(texts, **kw)
    K, _, K3 = NearDedup(**kw).cfg.limits
    assert sum(0 < s < K for s in size) > 50 and sum(s >= K3 for s in size) > 50  # sets and signatures
    assert sum(s >= K for s in size) > 100


def test_keyer_equals_the_reference_on_texts_holding_nuls_and_ascii_mixed_in():
    texts = random_texts(400, seed=7, nul=True) + list(sentences(1, 30, 200)) + ["\x00", "a\x00b", "\x00中\x00"]
    random.Random(3).shuffle(texts)
    assert any("\x00" in t and not t.isascii() for t in texts)
    _check_keyer(texts)
    _check_keyer([t for t in texts if "\x00" not in t])  # the one-pass normalisation, ASCII texts mixed in
    _check_keyer([t for t in texts if "\x00" not in t and not t.isascii()])  # every text normalised at once


def test_keyer_equals_the_reference_on_real_chinese_and_english_texts():
    texts = real_texts()
    assert len(texts) > 1000
    for a in range(0, len(texts), 1100):
        _check_keyer(texts[a : a + 1100])


def test_keyer_equals_the_reference_on_long_texts(monkeypatch):
    rng = random.Random(11)
    zh, en = "".join(passages()), " ".join(sentences(1, 60, 2000))
    long = [zh[: rng.randint(3000, 12000)] for _ in range(3)] + [en[: rng.randint(20000, 60000)] for _ in range(3)]
    long += random_texts(3, seed=5, longest=30000)
    texts = long + random_texts(40, seed=6)
    rng.shuffle(texts)
    assert sum(len(t) for t in texts) > MIX_SLICE  # the mixed hashes are made a slice at a time
    _check_keyer(texts)
    monkeypatch.setattr(hashing, "GROUP_CHARS", 1 << 13)  # texts hashed in several groups
    _check_keyer(texts, text_shingles="chars")


def test_normalising_texts_together_equals_one_at_a_time():
    rng = random.Random(2)
    for _ in range(200):
        texts = random_texts(rng.randint(1, 12), seed=rng.randrange(1 << 30))
        got = hashing.text_shingle_hashes(texts, 5)
        want = [sorted(ref_hashes(t, 5, 5, "auto")) for t in texts]
        h, d = got
        assert [sorted(h[d == i].tolist()) for i in range(len(texts))] == want


def _rows_with_filled(num_perm: int, counts, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    filled = np.zeros((len(counts), num_perm), dtype=bool)
    for r, k in enumerate(counts):
        filled[r, rng.choice(num_perm, size=k, replace=False)] = True
    return filled


@pytest.mark.parametrize("num_perm", [8, 20, 128, 2 * TABLE_MAX_PERM])
def test_densify_sources_follow_the_probe_sequences(num_perm):
    counts = [0, 1, 2, 3, num_perm // 2, num_perm - 1, num_perm] + list(range(1, num_perm + 1, max(1, num_perm // 40)))
    filled = _rows_with_filled(num_perm, counts * 3)
    src = densify_sources(filled, num_perm, 3)
    probes = probe_table(num_perm, 3).tolist()
    for r in range(filled.shape[0]):
        f = filled[r]
        for b in range(num_perm):
            want = b if f[b] or not f.any() else next((p for p in probes[b] if f[p]), int(np.argmax(f)))
            assert src[r, b] == want


def test_a_value_of_all_ones_moves_the_bins_to_int64_and_keeps_them_equal():
    # shingles whose mixed value has the low 32 bits all set: the uint32 "empty" mark itself
    salt = (1 * 0x5851F42D4C957F2D + 0x14057B7EF767814F) & M64
    rng = random.Random(4)
    per_doc = [[rng.getrandbits(64) for _ in range(rng.choice([3, 13, 40, 400]))] for _ in range(60)]
    for d in (5, 17, 33):
        per_doc[d].append(_unsplitmix((rng.getrandbits(32) << 32) | 0xFFFFFFFF) ^ salt)
        per_doc[d].append(_unsplitmix((per_doc[d][0] >> 32 << 32) | 0xFFFFFFFF) ^ salt)
    assert _splitmix(per_doc[5][-1] ^ salt) & 0xFFFFFFFF == 0xFFFFFFFF
    cfg = NearDedup().cfg
    for big in (False, True):  # in the first slice, and after MIX_SLICE shingles
        docs = per_doc + ([[rng.getrandbits(64) for _ in range(MIX_SLICE)]] if big else [])
        order = list(range(len(docs)))[::-1] if big else list(range(len(docs)))
        h = np.array([x for i in order for x in docs[i]], dtype=np.uint64)
        doc = np.array([i for i in order for _ in docs[i]], dtype=np.int64)
        nib, size, sets, off = numpy_keys(h, doc, len(docs), cfg.num_perm, cfg.seed, cfg.limits)
        r_nib, r_size, r_sets = ref_keys(docs, cfg.num_perm, cfg.seed, cfg.limits)
        assert size.tolist() == r_size
        assert [sets[off[i] : off[i + 1]].tolist() for i in range(len(docs))] == r_sets
        assert nib.tolist() == r_nib


def test_no_rows_and_no_documents_give_empty_keys():
    assert densify_sources(np.zeros((0, 128), dtype=bool), 128).shape == (0, 128)
    cfg = NearDedup().cfg
    nib, size, sets, off = numpy_keys(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64), 0, cfg.num_perm,
                                      cfg.seed, cfg.limits)
    assert nib.shape == (0, cfg.num_perm) and size.size == sets.size == 0 and off.tolist() == [0]
    keys = NearDedup().keyer()([])
    assert tuple(keys.nib.shape) == (0, cfg.num_perm) and xp.numel(keys.size) == 0


def test_densify_tables_are_cached_for_a_few_settings_only():
    from torchdataguard.dedup import minhash

    rng = np.random.default_rng(1)
    filled = rng.random((50, 64)) < 0.3
    first = densify_sources(filled, 64, 1)
    for seed in range(2, 2 + 2 * minhash.TABLE_CACHE_SIZE):  # more settings than the cache holds
        densify_sources(filled, 64, seed)
    assert len(minhash._table_cache) <= minhash.TABLE_CACHE_SIZE
    assert (64, 1) not in minhash._table_cache  # the oldest went first
    assert np.array_equal(densify_sources(filled, 64, 1), first)  # rebuilt, the same sources


def test_densify_table_eviction_survives_another_thread_evicting_the_same_entry(monkeypatch):
    """Two threads that fill the table cache at once may both evict its oldest entry: the second found it gone
    and raised KeyError from inside the keyer (fails on main)."""
    from torchdataguard.dedup import minhash

    class EvictedMeanwhile(dict):
        def __iter__(self):  # another thread pops the oldest entry between this one reading and popping it
            keys = list(dict.keys(self))
            if keys:
                dict.pop(self, keys[0])
            return iter(keys)

    filled = np.random.default_rng(2).random((20, 64)) < 0.3
    expected = densify_sources(filled, 64, 99)  # with the ordinary cache
    cache = EvictedMeanwhile({(8, s): None for s in range(minhash.TABLE_CACHE_SIZE)})
    monkeypatch.setattr(minhash, "_table_cache", cache)
    assert np.array_equal(densify_sources(filled, 64, 99), expected)
    assert (64, 99) in cache and len(cache) <= minhash.TABLE_CACHE_SIZE
