"""The datasketch peer of ``torchdataguard scan --stages exact,near``: the same work, done the way datasketch's
documentation shows it.

Per record: an exact hash set (BLAKE2b of the text lower-cased with whitespace collapsed, the normalisation
ExactDedup uses), then word 5-gram shingles (the same words as NearDedup: lower case, runs of ASCII letters
and digits or non-ASCII characters; a text under 5 words is one shingle), ``MinHash.bulk`` over a block of
1,024 records (128 permutations, datasketch's default hash), and keep-first against ``MinHashLSH(threshold,
num_perm=128)``: ``lsh.query(m)``; no candidate -> ``lsh.insert(key, m)`` and keep, else drop. No option
beyond threshold and num_perm is set.

As a script it reads JSONL and writes ``kept.jsonl`` and ``dropped.jsonl`` (``{"id", "reason", "matched",
"record"}``, ``matched`` being the list of LSH candidates) into OUT, and prints a JSON line with its own
seconds (after imports)::

    python benchmarks/_datasketch_pipeline.py INPUT.jsonl OUT_DIR [--threshold 0.8] [--text-field text] [--id-field id]
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
                                               id_of=lambda i, r: r.get(a.id_field, i), threshold=a.threshold):
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
