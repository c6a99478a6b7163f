"""The datasketch peer of ``torchdataguard scan --stages exact,near``: the same work, done the way datasketch's
documentation shows it.

Per record: an exact hash set (BLAKE2b of the text lower-cased with whitespace collapsed, the normalisation
ExactDedup uses), then shingles, ``MinHash.bulk`` over a block of
1,024 records (128 permutations, datasketch's default hash), and keep-first against ``MinHashLSH(threshold,
num_perm=128)``: ``lsh.query(m)``; no candidate -> ``lsh.insert(key, m)`` and keep, else drop. No option
beyond threshold and num_perm is set.

Shingles (``--shingles``):

* ``words`` (the default): word 5-grams (the words of NearDedup's earlier shingling: lower case, runs of
  ASCII letters and digits or non-ASCII characters; a text under 5 words is one shingle);
* ``script``: the script-aware shingles NearDedup uses by default (``docs/multilingual.md``), written here
  again in plain Python (``re``, ``unicodedata``; this module imports neither torch nor torchdataguard, so
  the peer pays no import it would not pay on its own): NFKC for non-ASCII text, lower case; punctuation,
  spaces, control and format characters (ASCII: all but letters and digits; others: Unicode categories
  ``P*``, ``Z*``, ``Cc``, ``Cf``) separate tokens and are left out; each other character of a script written
  without spaces (Han, kana, Bopomofo, Yi, Thai, Lao, Khmer, Myanmar, Tai, Balinese, Javanese blocks:
  :data:`UNSPACED_BLOCKS`) is a token of its own, and a maximal run of the remaining characters is a word;
  a shingle is the window of 5 tokens starting at each token (character 5-grams on Chinese, word 5-grams on
  English, both on mixed text); a text without a complete window is one shingle of all its tokens, a text
  without tokens one shingle of its normalised characters.

As a script it reads JSONL and writes ``kept.jsonl`` and ``dropped.jsonl`` (``{"id", "reason", "matched",
"record"}``, ``matched`` being the list of LSH candidates) into OUT, and prints a JSON line with its own
seconds (after imports)::

    python benchmarks/_datasketch_pipeline.py INPUT.jsonl OUT_DIR [--threshold 0.8] [--text-field text] [--id-field id]
        [--shingles words|script]
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import unicodedata
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

WORD = re.compile(r"[a-z0-9\u0080-\U0010ffff]+")
NGRAM = 5
NUM_PERM = 128
BLOCK = 1024


def shingles(text: str) -> List[bytes]:
    """Word 5-gram shingles, encoded (what ``MinHash.update_batch`` takes)."""
    t = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()
    ws = WORD.findall(t)
    if len(ws) < NGRAM:
        return [" ".join(ws).encode("utf-8")]
    return [" ".join(ws[i:i + NGRAM]).encode("utf-8") for i in range(len(ws) - NGRAM + 1)]


#: Unicode blocks (inclusive code point ranges) of the scripts written without spaces between words
UNSPACED_BLOCKS = (
    (0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3021, 0x3029), (0x3038, 0x303B), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF), (0x20000, 0x2FA1F), (0x30000, 0x323AF),  # Han
    (0x3040, 0x309F), (0x1B001, 0x1B11F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F),
    (0x1B000, 0x1B000),  # kana
    (0x3100, 0x312F), (0x31A0, 0x31BF), (0xA000, 0xA4CF),  # Bopomofo, Yi
    (0x0E00, 0x0E7F), (0x0E80, 0x0EFF), (0x1780, 0x17FF), (0x19E0, 0x19FF),  # Thai, Lao, Khmer
    (0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F),  # Myanmar
    (0x1950, 0x197F), (0x1980, 0x19DF), (0x1A20, 0x1AAF), (0xAA80, 0xAADF),  # Tai Le, New Tai Lue, Tai Tham, Tai Viet
    (0x1B00, 0x1B7F), (0xA980, 0xA9DF),  # Balinese, Javanese
)
UNSPACED = re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in UNSPACED_BLOCKS) + "]")
#: the blocks above from Thai on: scripts whose vowel signs and tone marks are code points of their own get longer
#: character n-grams (``ABUGIDA_NGRAM``, NearDedup's ``abugida_ngram``)
ABUGIDA = re.compile("[" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in UNSPACED_BLOCKS[18:]) + "]")
ABUGIDA_NGRAM = 8
#: visible format characters (prepended number signs), which are separators; every other ``Cf`` is left out
PREPENDED = frozenset(map(chr, (0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x6DD, 0x70F, 0x890, 0x891, 0x8E2,
                                0x110BD, 0x110CD)))
SEPARATOR_CATEGORIES = frozenset(("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Zl", "Zp", "Cc", "Cf"))


class _SpacedOut(dict):
    """``str.translate`` table, filled as characters are met: an invisible format character, Arabic tatweel or
    haraka or Hebrew point is deleted, a separator becomes a space, a character of a script written without
    spaces gets a space on each side, any other character stays."""

    def __missing__(self, cp: int) -> Any:
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cp < 0x80:
            out: Any = cp if ch.isalnum() else " "
        elif ((cat == "Cf" and ch not in PREPENDED) or cp == 0x640 or 0x64B <= cp <= 0x65F or cp == 0x670
              or (0x591 <= cp <= 0x5C7 and cat == "Mn")):
            out = None
        elif unicodedata.category(ch) in SEPARATOR_CATEGORIES:
            out = " "
        else:
            out = f" {ch} " if UNSPACED.match(ch) else cp
        self[cp] = out
        return out


_SPACED_OUT = _SpacedOut()


def script_tokens(text: str) -> List[str]:
    """Script-aware tokens: each character of a script written without spaces, and words of the rest."""
    t = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).lower()
    return t.translate(_SPACED_OUT).split()


def script_shingles(text: str, ngram: int = NGRAM, char_ngram: int = NGRAM) -> List[bytes]:
    """Script-aware shingles, encoded: ``char_ngram`` tokens from a character token, ``ngram`` from a word."""
    toks = script_tokens(text)
    if not toks:
        t = text if text.isascii() else "".join(
            c for c in unicodedata.normalize("NFKC", text).lower() if _SPACED_OUT[ord(c)] is not None)
        return [t.encode("utf-8", "surrogatepass")]
    m = len(toks)
    if ngram == char_ngram and not any(ABUGIDA.match(t) for t in toks):
        out = [" ".join(toks[i:i + ngram]) for i in range(m - ngram + 1)]
    else:
        out = []
        for i, tok in enumerate(toks):
            k = (ABUGIDA_NGRAM if ABUGIDA.match(tok) else char_ngram) if UNSPACED.match(tok) else ngram
            if i + k <= m:
                out.append(" ".join(toks[i:i + k]))
    return [s.encode("utf-8", "surrogatepass") for s in out or [" ".join(toks)]]


#: ``--shingles`` choices
SHINGLERS = {"words": shingles, "script": script_shingles}


def exact_key(text: str) -> bytes:
    t = text if text.isascii() else unicodedata.normalize("NFKC", text)
    return hashlib.blake2b(" ".join(t.lower().split()).encode("utf-8", "surrogatepass"), digest_size=16).digest()


def dedup(records: Iterable[Any], *, text_of: Callable[[Any], str], id_of: Callable[[int, Any], Any],
          threshold: float = 0.8, shingles_of: Optional[Callable[[str], List[bytes]]] = None
          ) -> Iterator[Tuple[Any, Any, Optional[str], Any]]:
    """Yield ``(id, record, reason or None, matched)`` for every record, keep-first, in order (``shingles_of``:
    another shingling, e.g. the script-aware one of ``benchmarks/dedup_zh.py``; default word 5-grams)."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    seen = {}
    block: List[Any] = []
    pos = 0

    def flush(block: List[Any], start: int):
        texts = [text_of(r) for r in block]
        mhs = MinHash.bulk([(shingles_of or shingles)(t) for t in texts], num_perm=NUM_PERM)
        for j, (rec, text, mh) in enumerate(zip(block, texts, mhs)):
            key = id_of(start + j, rec)
            h = exact_key(text)
            first = seen.get(h)
            if first is not None:
                yield key, rec, "duplicate/exact", first
                continue
            seen[h] = key
            cands = lsh.query(mh)
            if cands:
                yield key, rec, "duplicate/near", cands
                continue
            lsh.insert(key, mh)
            yield key, rec, None, None

    for rec in records:
        block.append(rec)
        if len(block) >= BLOCK:
            yield from flush(block, pos)
            pos += len(block)
            block = []
    if block:
        yield from flush(block, pos)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--text-field", default="text")
    ap.add_argument("--id-field", default="id")
    ap.add_argument("--shingles", choices=sorted(SHINGLERS), default="words")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    os.makedirs(a.out, exist_ok=True)

    def read() -> Iterator[Any]:
        with open(a.input, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    kept = dropped = 0
    with open(os.path.join(a.out, "kept.jsonl"), "w", encoding="utf-8") as ko, \
            open(os.path.join(a.out, "dropped.jsonl"), "w", encoding="utf-8") as do:
        for key, rec, reason, matched in dedup(read(), text_of=lambda r: r[a.text_field],
                                               id_of=lambda i, r: r.get(a.id_field, i), threshold=a.threshold,
                                               shingles_of=SHINGLERS[a.shingles]):
            if reason is None:
                ko.write(json.dumps(rec, ensure_ascii=False) + "\n")
                kept += 1
            else:
                do.write(json.dumps({"id": key, "reason": reason, "matched": matched, "record": rec},
                                    ensure_ascii=False) + "\n")
                dropped += 1
    with open(os.path.join(a.out, "report.json"), "w") as fh:
        json.dump({"kept": kept, "dropped": dropped}, fh)
    print(json.dumps({"seconds": time.perf_counter() - t0, "kept": kept, "dropped": dropped}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
