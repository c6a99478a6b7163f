"""Warn when a data source kept none of its new records, most of them dropped as duplicates of data wrapped before.

That is almost never what the user meant: most likely the same data was built again inside the epoch loop (a
``Dataset``, ``IterableDataset``, ``DataLoader`` or ``datasets.Dataset`` created anew each epoch), became a new
source, and every one of its records was dropped as a duplicate of the first epoch's, so the epoch trains on
nothing. The guard warns once per source, at the user's line, with the two fixes; it never changes a decision
(a test split that is wholly inside the training data is leakage, and is reported as such).

Two paths check it: :func:`torchdataguard.data.dispatch.wrap` after data decided at wrap time (a list, a map-style
dataset, a ``datasets.Dataset``; any decider), and the end of a stream (:meth:`Guard.check_text_field` with
``end=True``) from the counts :class:`~torchdataguard.core.decider.LocalDecider` keeps per source
(:func:`note_chunk`).

A guard's first pass that repeated a record's id and content is warned about here too (:func:`warn_repeats`,
called where a whole pass is seen: a list, a map-style dataset or ``datasets.Dataset``, a torch stream read in the
main process or shared by DataLoader workers).

Example:
    >>> import warnings, torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    >>> first = guard.wrap([f"text {i}" for i in range(20)])
    >>> with warnings.catch_warnings(record=True) as got:
    ...     warnings.simplefilter("always")
    ...     again = guard.filter([f"text {i}" for i in range(20)], source="epoch2")
    >>> len(again), "every one of the 20 records" in str(got[0].message)
    (0, True)
"""
from __future__ import annotations

import os
import sys
import sysconfig
import threading
import warnings
import weakref
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

__all__ = ["ALL_DUPLICATES_MIN", "check_wrapped", "drops_since", "end_of_source", "first_pass", "note_chunk",
           "user_stacklevel", "warn_all_duplicates", "warn_at_user", "warn_repeats", "worker_chunk", "worker_end",
           "worker_gone"]

#: a source that kept none of its new records and lost at least this many (and most) to duplicates is warned about
ALL_DUPLICATES_MIN = 10

#: per guard: its ``sources`` dict when the counts began (``reset()`` and a loaded state replace it: the counts
#: start again), per source ``[new records, kept, dropped for another reason, {duplicate reason: count}]``, and
#: the sources warned about
_STATE: "weakref.WeakKeyDictionary[Any, List[Any]]" = weakref.WeakKeyDictionary()


def _state(guard: Any) -> List[Any]:
    st = _STATE.get(guard)
    if st is None or st[0] is not guard.sources:
        st = _STATE[guard] = [guard.sources, {}, set()]
    return st


def note_chunk(guard: Any, source: str, outcomes: Sequence[Any]) -> None:
    """Count a decided chunk of ``source``: ``outcomes`` are ``(example, drop, replayed)``."""
    counts = _state(guard)[1].setdefault(source, [0, 0, 0, {}])
    for _, drop, replayed in outcomes:
        if replayed:
            continue
        counts[0] += 1
        if drop is None:
            counts[1] += 1
        elif drop.reason.startswith("duplicate/"):
            counts[3][drop.reason] = counts[3].get(drop.reason, 0) + 1
        else:
            counts[2] += 1


def end_of_source(guard: Any, source: str) -> None:
    """``source`` ended (a stream's pass, or one DataLoader worker's share of it): warn if no new record so far was
    kept, most of them dropped as duplicates."""
    counts = _state(guard)[1].get(source)
    if counts is not None and _mostly_duplicates(counts[0], counts[1], counts[3], counts[2]):
        warn_all_duplicates(guard, source, counts[0], counts[3], kept=counts[1])


def first_pass(ledger: Any) -> bool:
    """Whether nothing was decided yet: a replay in the pass that starts now can only be a repeated record."""
    return ledger.seen == 0 and ledger.replayed == 0


#: per guard, per source: the pass of a stream that DataLoader workers share, while it runs: ``[whether it began
#: with nothing decided (first_pass), the workers whose share ended, the tag of the DataLoader iterator whose
#: workers read it (their base seed)]``
_WORKER_PASSES: "weakref.WeakKeyDictionary[Any, Dict[str, List[Any]]]" = weakref.WeakKeyDictionary()
_WORKER_LOCK = threading.Lock()


def _worker_pass(guard: Any, source: str, tag: Any = None) -> List[Any]:
    passes = _WORKER_PASSES.setdefault(guard, {})
    p = passes.get(source)
    if p is not None and None not in (tag, p[2]) and tag != p[2]:  # another DataLoader iterator's workers (a loop
        p = None  # broken off before a worker had sent a chunk, or an iterator kept after a look): it ended unfinished
    if p is None:  # a pass of the workers begins (its first chunk, or a worker with nothing to send)
        ledger = getattr(guard, "ledger", None)
        p = passes[source] = [ledger is not None and first_pass(ledger), set(), tag]
    elif p[2] is None:
        p[2] = tag
    return p


def worker_chunk(guard: Any, source: str, split: Any = None, mine: Optional[Set[str]] = None) -> Any:
    """A DataLoader worker's chunk of ``source`` is about to be decided (by the decision service, in the main
    process): the first one of a pass notes whether the guard had decided nothing yet. ``split``: the number of
    workers, or ``(that, tag)`` (the tag of the worker's DataLoader iterator); the number is returned. ``mine``: the
    sources whose share this worker has not ended (see :func:`worker_gone`)."""
    split, tag = split if isinstance(split, tuple) else (split, None)
    with _WORKER_LOCK:
        _worker_pass(guard, source, tag)
    if mine is not None:
        mine.add(source)
    return split


def worker_gone(guard: Any, mine: Set[str]) -> None:
    """A worker left without ending its share of the sources ``mine`` (its DataLoader iterator was dropped: a loop
    broken off in its first epoch): those passes end unfinished, so the next pass's replays are not repeats."""
    with _WORKER_LOCK:
        for source in mine:
            _WORKER_PASSES.get(guard, {}).pop(source, None)


def worker_end(guard: Any, source: str, split: Any, mine: Optional[Set[str]] = None) -> None:
    """A DataLoader worker's share of ``source`` ended (``split``: its ``(worker id, number of workers, tag)``, the
    tag its DataLoader iterator's): the guard's end-of-stream checks, and when the last share of a guard's first pass
    ends, :func:`warn_repeats` as a stream read in the main process does. A chunk or an end with another tag than
    the pass's comes from another iterator's workers: that pass ended unfinished (a loop broken off before a worker
    had sent a chunk, so no connection closed with it; an iterator kept after a look at it). ``(worker id, 0)``: a
    persistent worker starts a new pass after leaving the last one unfinished, which then ends unfinished (as in
    :func:`worker_gone`), without the checks."""
    if mine is not None:
        mine.discard(source)
    if isinstance(split, tuple) and len(split) == 2 and split[1] == 0:
        worker_gone(guard, {source})
        return
    guard.check_text_field(None, source, end=True)
    if not (isinstance(split, tuple) and len(split) in (2, 3)):
        return
    with _WORKER_LOCK:
        p = _worker_pass(guard, source, split[2] if len(split) == 3 else None)
        p[1].add(split[0])
        if len(p[1]) < split[1]:
            return
        del _WORKER_PASSES[guard][source]
    if p[0] and guard.ledger.replayed:
        warn_repeats(guard.ledger.replayed, guard.id_field)


def warn_repeats(n: int, id_field: Any) -> None:
    """Warn that ``n`` records of a first pass repeated an earlier record's id and content (served again as the
    same example, never decided again): duplicate rows under one id would otherwise reach training unseen. Said
    when a pass that started with :func:`first_pass` ends whole (a pass broken off is no pass: the next one
    replays it): a list, a map-style dataset or ``datasets.Dataset``, a torch stream read in the main process, since
    the seventeenth session one that DataLoader workers share (:func:`worker_end`); until the fifteenth session only
    a list or ``guard.filter``."""
    where = f"the id field {id_field!r}" if id_field else "the ids given"
    warn_at_user(f"{n} {'record' if n == 1 else 'records'} repeated both the id ({where}) and the content of a record "
                 f"met earlier in this pass: each was served again as the same example, not decided again (the report "
                 f"counts them under 'replayed', not 'kept'). If they are duplicate rows, number records by position "
                 f"(id_field=None, CLI --id-field '') so that ExactDedup drops them, or give every row its own id",
                 UserWarning)


#: a source that kept some records is warned about when at least this share of its new records were duplicates
MOSTLY = 0.9


def _mostly_duplicates(new: int, kept: int, dropped: Mapping[str, int], other: int) -> bool:
    """Whether a source lost its new records to duplicates: at least :data:`ALL_DUPLICATES_MIN` of them, and either
    none kept and more duplicates than drops for other reasons (the junk records a quality filter drops again in each
    epoch do not hide the epoch that trains on nothing), or :data:`MOSTLY` of them duplicates (a list shuffled with
    one record changed, a split that leaks almost whole)."""
    dups = sum(dropped.values())
    return dups >= ALL_DUPLICATES_MIN and ((kept == 0 and dups > other) or dups >= MOSTLY * new)


def warn_all_duplicates(guard: Any, source: str, new: int, dropped: Mapping[str, int], *, kept: int = 0) -> None:
    """Warn, once per source, that the ``new`` records of ``source`` were all dropped as duplicates (``dropped``:
    their counts by reason, when known) of an earlier source; not about the first source (``guard.sources``' first
    key), whose later records can only repeat its own (a resumed run), nor without one (no data wrapped)."""
    first = next(iter(guard.sources), None)
    warned = _state(guard)[2]
    if first is None or source == first or source in warned:  # the first data (a resumed run's more of it): its own
        return
    warned.add(source)
    reasons = f" ({', '.join(f'{r}: {n}' for r, n in sorted(dropped.items()))})" if dropped else ""
    dups = sum(dropped.values())
    how = "as a duplicate" if not dropped or dups == new else f"({new - dups} for other reasons), {dups} as duplicates"
    said = (f"every one of the {new} records of source {source!r} was dropped {how}" if not kept else
            f"{dups} of the {new} records of source {source!r} ({dups / max(new, 1):.0%}) were dropped as duplicates")
    warn_at_user(
        f"{said} of data this guard wrapped before{reasons}: {'only %d' % kept if kept else 'nothing'} of it will "
        f"train. If it is the same data built again (a Dataset, IterableDataset, "
        f"DataLoader or datasets.Dataset created anew each epoch), build it once outside the loop and wrap that, or "
        f"wrap it with source={first!r} to replay the first wrap's decisions; if it is another split, it leaks into "
        f"the first (guard.report()['matches'])", UserWarning)


def drops_since(ledger: Any, by_reason: Mapping[str, int]) -> Dict[str, int]:
    """The ledger's drops by reason since its ``by_reason`` counts were ``by_reason``."""
    return {r: n - by_reason.get(r, 0) for r, n in ledger.by_reason.items() if n != by_reason.get(r, 0)}


def check_wrapped(guard: Any, named: List[str], seen: int, kept: int, by_reason: Dict[str, int]) -> None:
    """After a wrap that decided its data (ledger counts before it: ``seen``, ``kept``, ``by_reason``): warn if the
    one source it named lost :data:`ALL_DUPLICATES_MIN` or more of its new records to duplicates, and kept none or
    lost :data:`MOSTLY` of them so (:func:`_mostly_duplicates`)."""
    led = guard.ledger
    new = led.seen - seen
    dropped = drops_since(led, by_reason)
    dups = {r: n for r, n in dropped.items() if r.startswith("duplicate/")}
    got = led.kept - kept
    if len(named) == 1 and _mostly_duplicates(new, got, dups, new - got - sum(dups.values())):
        warn_all_duplicates(guard, named[0], new, dups, kept=got)


#: frames a warning skips to reach the user's line: torchdataguard's, and a DataLoader's that iterate a dataset
_SKIPPED = (os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
            os.path.join("torch", "utils", "data", ""))


def user_stacklevel() -> int:
    """The ``stacklevel`` of the first caller outside torchdataguard and the DataLoader (the user's line; in the
    decision service's thread, where no user frame is, the thread's entry)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename.startswith(_SKIPPED[0])
                                 or _SKIPPED[1] in frame.f_code.co_filename):
        frame, level = frame.f_back, level + 1
    return level


#: where Python's own modules are (a thread's frames in ``threading``, ``queue`` ... are never the user's line)
_STDLIB = tuple({os.path.normcase(os.path.abspath(sysconfig.get_paths()[k])) + os.sep for k in ("stdlib", "platstdlib")})
_INSTALLED = (os.sep + "site-packages" + os.sep, os.sep + "dist-packages" + os.sep)


def _library(filename: str, *, installed: bool) -> bool:
    """A frame of torchdataguard, the DataLoader or Python's own modules (``installed``: or any installed package)."""
    if filename.startswith(_SKIPPED[0]) or _SKIPPED[1] in filename or filename.startswith("<"):
        return True
    name = os.path.normcase(filename)
    if any(p in name for p in _INSTALLED):
        return installed
    return name.startswith(_STDLIB)


def warn_at_user(message: str, category: type = UserWarning) -> None:
    """``warnings.warn`` at the user's line (:func:`user_stacklevel`), also from a thread of the guard's own (the
    decision service that DataLoader workers ask, where no user frame is): there the line is the one the main
    thread is running, past torchdataguard, the DataLoader, Python's own modules (the queue the main thread waits
    on) and, where one is left, installed packages (the Trainer's loop); the warning stays in this module when the
    main thread runs no such line."""
    if threading.current_thread() is threading.main_thread():
        warnings.warn(message, category, stacklevel=user_stacklevel())
        return
    top = sys._current_frames().get(threading.main_thread().ident)
    frame = None
    for installed in (True, False):
        frame = top
        while frame is not None and _library(frame.f_code.co_filename, installed=installed):
            frame = frame.f_back
        if frame is not None:
            break
    if frame is None:
        warnings.warn(message, category, stacklevel=1)
        return
    glob = frame.f_globals
    warnings.warn_explicit(message, category, frame.f_code.co_filename, frame.f_lineno,
                           module=glob.get("__name__", "__main__"), registry=glob.setdefault("__warningregistry__", {}),
                           module_globals=glob)
