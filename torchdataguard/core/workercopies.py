"""Spotting an iterable dataset that every DataLoader worker reads whole.

A torch ``IterableDataset`` is copied into each DataLoader worker, and unless it splits its records by
``torch.utils.data.get_worker_info()`` every worker yields all of them: each record reaches the training loop
once per worker. Plain PyTorch serves the copies silently; a guard without ``id_field`` numbers the stream's
records across workers (``position * workers + worker``), so the copies are distinct examples to it, and a
dedup stage then drops them as ``duplicate/exact``, which reads as duplicates in the data. The guard can see
the cause: the record one worker yields at a position has the content the other worker yielded at the same
position. :func:`worker_copies` counts such rows in a chunk; the guard counts them under
:data:`WORKER_COPIES` and warns once per stream (a warning, not an error: a stream whose records come in
pairs, split round-robin, looks the same).

Example:
    >>> from torchdataguard.core.ledger import Ledger
    >>> from torchdataguard.core.stage import Example
    >>> led = Ledger()
    >>> for p in range(3):  # worker 0 of 2 met positions 0, 1, 2 (ids 0, 2, 4)
    ...     led.record(Example(2 * p, f"r{p}", fingerprint=100 + p), None)
    >>> rows = [Example(2 * p + 1, f"r{p}", fingerprint=100 + p) for p in range(3)]  # worker 1: the same
    >>> worker_copies(led, rows, [2 * p + 1 for p in range(3)], [0, 0, 0], 2, "", at_least=2)
    3
"""
from __future__ import annotations

from typing import Any, Sequence, Set

from .alldups import warn_at_user
from .ids import qualify_id

__all__ = ["WORKER_COPIES", "WORKER_COPY_BLOCK", "WORKER_COPY_MIN", "note_worker_copies", "worker_copies",
           "worker_copies_message"]

#: the ledger counter of records equal to the record another DataLoader worker yielded at the same position
WORKER_COPIES = "stream/copies_across_workers"
#: rows of one block that must be such copies (holding at least two different contents) before they count
WORKER_COPY_MIN = 16
#: rows of a chunk judged together: a stream's chunk holds up to 16,384 rows, and a fixed count over all of them
#: would flag a correctly split stream in which one record in a thousand repeats the one before it (a page
#: scraped twice in a row); 1,024 rows per block is the evidence the count asked for when chunks held 1,024
WORKER_COPY_BLOCK = 1024


def worker_copies(ledger: Any, exs: Sequence[Any], positions: Sequence[Any], replay: Sequence[int], split: int,
                  source: str, *, at_least: int = WORKER_COPY_MIN, block: int = WORKER_COPY_BLOCK) -> int:
    """Rows of a chunk of a positional stream read by ``split`` workers whose content (fingerprint) equals what
    another worker met at the same position; ``positions``: the rows' ids before :func:`qualify_id`. The chunk is
    judged ``block`` rows at a time: a block's copies count only when there are at least ``at_least`` of them with
    at least two different contents (a stream of one repeated record is not evidence), so the answer does not
    grow with the chunk size. Returns the total over the blocks that count."""
    if split < 2 or ledger.memo is None:
        return 0
    total = 0
    for a in range(0, len(exs), block):
        found = 0
        contents: Set[int] = set()
        for e, pos, r in zip(exs[a : a + block], positions[a : a + block], replay[a : a + block]):
            if r != 0 or type(pos) is not int or not e.fingerprint:
                continue
            worker = pos % split
            base = pos - worker
            for other in range(split):
                if other != worker:
                    code, fp = ledger.memo.first(qualify_id(base + other, source))
                    if code and fp == e.fingerprint:
                        found += 1
                        contents.add(fp)
                        break
        if found >= at_least and len(contents) >= 2:
            total += found
    return total


def worker_copies_message(source: str, split: int) -> str:
    """The warning for a stream whose workers yield the same records."""
    return (f"the stream {source or '(the first wrapped data)'} is read by {split} DataLoader workers and each of them "
            f"yields the same records in the same order: the dataset does not split its records across workers, so "
            f"every record reaches training {split} times (a dedup stage drops the copies as duplicate/exact, which is "
            f"not duplication in the data). Split the records by torch.utils.data.get_worker_info() in __iter__ (for a "
            f"datasets.IterableDataset with enough shards this happens by itself), or use num_workers=0. Counted in "
            f"the report under {WORKER_COPIES!r}")


def note_worker_copies(guard: Any, n: int, source: str, split: int) -> None:
    """Count ``n`` such records of ``source`` in the guard's ledger (:data:`WORKER_COPIES`) and warn once per
    source (``guard.copies_warned``)."""
    if not n:
        return
    guard.ledger.counts[WORKER_COPIES] += n
    if source not in guard.copies_warned:
        guard.copies_warned.add(source)
        warn_at_user(worker_copies_message(source, split))  # from the decision service's thread: the user's line
