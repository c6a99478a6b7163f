"""The fast paths of decontamination agree with the plain ones: word hashes read 8 bytes at a time, non-ASCII
text normalised by replacing its few changed characters, hits verified and documents judged a chunk at once."""
import random

import numpy as np

import torchdataguard as tdg
from decontam_reference import Reference
from torchdataguard.decontam.matching import verify_hits
from torchdataguard.decontam.ngrams import ngram_hashes
from torchdataguard.decontam.normalize import normalized_bytes, normalized_words


def _grams(h, i):
    return h.hashes[h.offsets[i] : h.offsets[i + 1]].tolist()


def test_words_of_every_length_hash_by_every_byte():
    rng = random.Random(0)
    words = {"".join(rng.choice("ab") for _ in range(rng.randrange(1, 41))) for _ in range(4000)}
    words = sorted(words)
    # one text per word (an n-gram of one word): equal hashes exactly for equal words
    h = ngram_hashes(words + [w.upper() + "," for w in words], 1)
    got = [_grams(h, i)[0] for i in range(len(words))]
    assert len(set(got)) == len(words)
    assert got == [_grams(h, len(words) + i)[0] for i in range(len(words))]
    # a long word that differs from another only in one middle byte, or by one more byte at its end
    base = "pneumonoultramicroscopicsilicovolcanoconiosis"
    variants = [base, base[:20] + "x" + base[21:], base + "s", base[:16], base[:17], base[:9], base[:8]]
    h = ngram_hashes(variants, 1)
    assert len({_grams(h, i)[0] for i in range(len(variants))}) == len(variants)


def test_non_ascii_bytes_are_the_plain_normalisation():
    rng = random.Random(1)
    pools = [range(0x80, 0x250), range(0x370, 0x400), range(0x2000, 0x2070), range(0x3000, 0x3100),
             range(0x4E00, 0x4F00), range(0xFF00, 0xFF60), range(0x1D400, 0x1D420), range(0x1F600, 0x1F610),
             [0x3A3, 0x130, 0x1E9E, 0xDF, 0x212A, 0xA0, 0x2028, 0x85, 0xFB01, 0x2126, 0x1C5, 0x345]]
    texts = ["ΟΔΟΣ ΣΑΣ", "İstanbul, Straße!", "ﬁne ＡＢＣ — “quoted”", "今天天气很好，我们去公园散步吧。" * 3]
    for _ in range(3000):
        texts.append("".join(chr(rng.choice(rng.choice(pools))) if rng.random() < 0.5 else rng.choice("aB ,.\n'")
                             for _ in range(rng.randrange(1, 80))))
    for t in texts:
        got = [w for w in normalized_bytes(t).split(b"\x00") if w]
        assert got == [w.encode("utf-8", "surrogatepass") for w in normalized_words(t)], t


def test_verified_hits_and_judging_a_chunk_at_once_match_one_by_one():
    rng = random.Random(2)
    vocab = [f"w{i}" for i in range(60)]
    items = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(14, 40))) for _ in range(40)]
    docs = []
    for _ in range(300):
        w = [rng.choice(vocab) for _ in range(rng.randrange(5, 80))]
        for _ in range(rng.randrange(0, 3)):
            it = rng.choice(items).split()
            a = rng.randrange(0, len(it) - 12)
            at = rng.randrange(0, len(w) + 1)
            w[at:at] = it[a : a + rng.randrange(13, len(it) - a + 1)]
        docs.append(" ".join(w))
    for kw in ({}, {"min_overlap": 0.3}):
        one = tdg.Decontaminate({"q": items}, ngram=5, **kw)
        many = tdg.Decontaminate({"q": items}, ngram=5, **kw)
        found, rejected = verify_hits(many.index, ngram_hashes(docs, 5))
        assert not rejected.any()
        ref = Reference({"q": list(enumerate(items))}, n=5)
        assert [bool(f.size) for f in found] == [bool(ref.dirty(d)) for d in docs]
        drops = many.judge_many(found)
        expected = [one.judge(f) if f.size else None for f in found]
        assert [(d.reason, d.matched, d.score) if d else None for d in drops] == \
            [(d.reason, d.matched, d.score) if d else None for d in expected]
        assert any(drops) and not all(drops)
        for name in ("counts", "item_docs", "dropped", "overlapping"):
            assert np.array_equal(getattr(one, name), getattr(many, name)), name


def test_every_text_in_order_is_not_copied():
    h = ngram_hashes(["a b c d", "e f g h"], 2)
    assert h.take([0, 1]) is h
    sub = h.take([1])
    assert sub.offsets.tolist() == [0, 3] and sub.hashes.tolist() == _grams(h, 1)


def test_split_words_finds_the_nul_separated_words_of_any_text():
    """Verification splits a normalised text with bytes.split() after NUL -> space: the same words as splitting
    on NUL, for text with every kind of whitespace, control characters, punctuation runs and other scripts."""
    from torchdataguard.decontam.ngrams import split_words as _split_words

    rng = random.Random(3)
    alphabet = list("abcXYZ019 \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x01\x7f.,;!?'-") + [
        "\u00e9", "\u00a0", "\u3000", "\u2028", "\u4e2d", "\u6587", "\u0e01", "\U0001f600", "\u03a3", "\u0301", "\u200b"]
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60))) for _ in range(3000)]
    for t in texts:
        nb = normalized_bytes(t)
        assert _split_words(nb) == [w for w in nb.split(b"\x00") if w], repr(t)


def test_cpu_bit_set_query_matches_the_tensor_path():
    """On the CPU the index is queried with NumPy (both bits tested as one mask, blocks of hashes); GPUs use the
    tensor path. Both return the same rows and n-grams, over several blocks, hits and near-misses."""
    from torchdataguard.decontam.index import EvalIndex

    rng = random.Random(4)
    vocab = [f"w{i}" for i in range(300)]
    items = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(13, 60))) for _ in range(200)]
    ix = EvalIndex.build([items], ngram=8)
    docs = [" ".join(rng.choice(vocab) for _ in range(rng.randrange(1, 400))) for _ in range(200)]
    docs += [it + " " + docs[i] for i, it in enumerate(items[:50])]
    h = ngram_hashes(docs, 8).hashes
    planted = ix.hashes.numpy()[::7]
    near = planted ^ np.int64(1 << 40)  # the same bit-set slot and top bits: passes the filter, not in the set
    q = np.concatenate([h, planted, near, np.random.default_rng(0).integers(-2**63, 2**63 - 1, 50_000)])
    for block in (1 << 10, 1 << 16):
        rows, grams = ix._query_numpy(q, block)
        rows_t, grams_t = ix._query_torch(q)
        assert rows.tolist() == rows_t.tolist() and grams.tolist() == grams_t.tolist()
    assert rows.size >= planted.size + 50 and set(range(h.size, h.size + planted.size)) <= set(rows.tolist())
    assert (ix.hashes.numpy()[grams] == q[rows]).all()


def test_text_whose_non_ascii_characters_are_all_deleted_takes_one_pass_with_the_same_words():
    """Text whose only non-ASCII characters are symbols or punctuation (U+FFFD in mis-decoded mail, curly quotes,
    dashes, emoji) has its non-ASCII bytes deleted in one pass: the same words as the plain normalisation, also
    next to letters that stay (é) or change (Ａ), which take the replacing path."""
    rng = random.Random(5)
    deleted = ["\ufffd", "\u2019", "\u2014", "\u201c", "\u00a9", "\U0001f600", "\u2022", "\u00bf", "\u3002"]
    others = ["\u00e9", "\uff21", "\u00a0", "\u4e2d"]
    for extra in ([], others):
        for _ in range(500):
            pool = deleted + extra
            t = "".join(rng.choice(pool) if rng.random() < 0.3 else rng.choice("aBc dE,'\n") for _ in range(rng.randrange(1, 60)))
            got = [w for w in normalized_bytes(t).split(b"\x00") if w]
            assert got == [w.encode("utf-8", "surrogatepass") for w in normalized_words(t)], repr(t)
    assert normalized_bytes("don\u2019t \ufffd\ufffdstop\u2014now") == b"dont\x00stopnow"


def test_the_bmp_translation_table_is_built_as_each_character_translates():
    """The table built on first use of non-ASCII text (by ranges, for speed) says for every BMP character what
    the one-character rule says."""
    from torchdataguard.decontam import normalize as N

    assert N._bmp_table() == [N._translation(c) for c in range(0x10000)]


def test_a_run_that_differs_in_one_word_is_verified_n_gram_by_n_gram():
    """Hits that continue one item word after word are compared as one span; when the span differs (a hash
    collision, simulated here by changing one word of the index's copy of the item), each n-gram of the run is
    compared on its own: exactly the n-grams covering the changed word fail, the others still count."""
    from torchdataguard.decontam.index import EvalIndex

    item = " ".join(f"w{i}" for i in range(30))
    ix = EvalIndex.build([[item]], ngram=5)
    doc = "intro words here " + item + " and an ending"
    keys = ngram_hashes([doc], 5)
    found, rejected = verify_hits(ix, keys)
    assert found[0].size == 26 and rejected.tolist() == [0]
    words = ix.words[0].split(b" ")
    words[12] = b"changed"  # the item's word 12: n-grams starting at words 8..12 hold it
    ix.words[0] = b" ".join(words)
    found, rejected = verify_hits(ix, keys)
    assert rejected.tolist() == [5]
    kept_starts = sorted(int(ix.rep_pos[gram]) for gram in found[0])
    assert kept_starts == [s for s in range(26) if not 8 <= s <= 12]


def test_a_format_character_between_any_composition_pair_is_deleted_before_nfkc():
    """Every canonical composition (``e`` + U+0301, alef + hamza above, Hangul jamo ...) with every format
    character (category Cf) between its two parts normalises like the pair: the fast bytes and the words."""
    import unicodedata
    pairs = []
    for c in range(0x110000):
        d = unicodedata.decomposition(chr(c))
        if d and not d.startswith("<") and len(d.split()) == 2:
            a, b = (chr(int(x, 16)) for x in d.split())
            if unicodedata.normalize("NFC", a + b) == chr(c):
                pairs.append((a, b))
    pairs += [("\u1100", "\u1161"), ("\uac00", "\u11a8")]
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(pairs) > 900 and len(cf) > 150
    bad = []
    for x in cf:
        for a, b in pairs:
            t, want = "x " + a + x + b + " y", "x " + a + b + " y"
            if normalized_bytes(t) != normalized_bytes(want) or normalized_words(t) != normalized_words(want):
                bad.append((a, x, b))
    assert not bad, [ascii("".join(t)) for t in bad[:10]]
    assert Reference({"s": [(0, "x " + "e\u0301 " * 13)]}).dirty("x " + "e\u200b\u0301 " * 13)


def test_text_with_an_emoji_is_normalised_quickly():
    """The class of the invisible characters beyond the BMP was written one code point at a time: with the 4,096
    default-ignorable ones of plane 14 (2026-12-07) it cost about 4 us a character of any text holding an emoji,
    on the plain path (evaluation items, ``normalized_words``) and on the bytes path of text taking it (a Greek or
    Cyrillic message with an emoji: 28 -> 400 us for 100 characters). Now a few ranges (the timings are in
    docs/decontamination.md; tests check what the code is, not how fast it runs)."""
    from torchdataguard.decontam.normalize import _format_res, drop_format

    text = "Hello there, write to me at the office tomorrow about the plan \U0001f600. " * 30
    greek = "\u039f\u0394\u039f\u03a3 " * 20 + "\U0001f600"
    assert drop_format(text) == text and normalized_words(greek) == ["\u03bf\u03b4\u03bf\u03c2"] * 20
    astral = _format_res()[2].pattern
    assert len(astral) < 500  # a few ranges, not 4,200 code points one by one (42,000 characters of pattern)
    for c in (0x1BCA0, 0x1D173, 0xE0001, 0xE0041, 0xE0100, 0xE0FFF):  # and still every one of them
        assert drop_format("a" + chr(c) + "b") == "ab", hex(c)
    assert drop_format("a\U0001f600b") == "a\U0001f600b"
