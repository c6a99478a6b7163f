"""The one ``wrap`` dispatcher: what :meth:`Guard.wrap` (and :meth:`DistributedGuard.wrap`) does with each kind of data.

Handlers are registered by data type (``register(DataLoader)``, or ``register("datasets:Dataset")`` for a type
of an optional library, resolved only once that library is imported, so registering costs no import) and,
optionally, for one decider (``decider="sharded"``: the handlers :mod:`torchdataguard.distributed` registers
where a distributed guard behaves differently). The most specific registered type in the data's MRO wins; at
each type, a handler registered for the guard's decider comes before one registered for every decider.

A handler is ``handler(guard, data, *, source, num_workers)`` where ``source`` is the data's name as the
user gave it (``None``: the default names); it calls :meth:`Guard.new_source` once it accepts the data, so a
refused call never uses up a name. Modules that register handlers: :mod:`torchdataguard.data.torch`,
:mod:`torchdataguard.data.hf`, :mod:`torchdataguard.distributed.wrap`.

Example:
    >>> import torchdataguard as tdg
    >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
    >>> find_handler(["a"], guard.decider.name).__name__
    'wrap_sequence'
"""
from __future__ import annotations

import sys
import warnings
import weakref
from array import array
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import xxhash

from ..core.alldups import check_wrapped, drops_since, user_stacklevel
from ..core.hooks import HOOKS
from ..core.ids import FINGERPRINT, record_fingerprint
from ..errors import ConfigError, GuardInputError
from .lineage import note_wrap

__all__ = ["Handler", "find_handler", "map_style_length", "permutation_ids", "register", "wrap", "wrapped_lengths"]

#: ``handler(guard, data, *, source, num_workers) -> wrapped data``
Handler = Callable[..., Any]

_HANDLERS: Dict[Tuple[Optional[str], Any], Handler] = {}  # (decider or None, type or "module:Name") -> handler


def register(data_type: type | str, *, decider: Optional[str] = None) -> Callable[[Handler], Handler]:
    """Decorator: handle data of ``data_type`` (a type, or ``"module:Name"`` resolved lazily) for ``decider``
    (a :attr:`Decider.name <torchdataguard.core.decider.Decider.name>`; ``None``: every decider)."""
    if isinstance(data_type, str) and ":" not in data_type:
        raise ConfigError(f"data type {data_type!r}: expected a type or 'module:Name'")

    def deco(fn: Handler) -> Handler:
        key = (decider, data_type)
        if key in _HANDLERS:
            raise ConfigError(f"a wrap handler for {data_type!r} (decider {decider!r}) is already registered by "
                              f"{_HANDLERS[key].__module__}.{_HANDLERS[key].__name__}")
        _HANDLERS[key] = fn
        return fn

    return deco


def _resolved() -> Dict[Tuple[Optional[str], type], Handler]:
    """The handlers whose type is known in this process (a lazy ``module:Name`` once its module is imported)."""
    out: Dict[Tuple[Optional[str], type], Handler] = {}
    for (decider, key), fn in _HANDLERS.items():
        if isinstance(key, str):
            mod, _, name = key.partition(":")
            if mod not in sys.modules:  # no object of this type can exist before its module is imported
                continue
            key = getattr(sys.modules[mod], name, None)
            if key is None:
                continue
        out[(decider, key)] = fn
    return out


def find_handler(data: Any, decider: str) -> Handler:
    """The handler for ``data`` under a guard whose decider is named ``decider``."""
    table = _resolved()
    for cls in type(data).__mro__:
        for who in (decider, None):
            fn = table.get((who, cls))
            if fn is not None:
                return fn
    raise ConfigError(f"cannot wrap a {type(data).__name__}: no handler is registered for it")  # object has one


#: per guard, the data objects it wrapped (held weakly): ``id(data) -> (weakref to data, source name)``
_WRAPPED: "weakref.WeakKeyDictionary[Any, Dict[int, Tuple[Any, str]]]" = weakref.WeakKeyDictionary()


#: per guard, the lists and tuples it wrapped, by content: ``(length, digest of the records' sorted fingerprints)
#: -> (source name, the fingerprints in the order first wrapped)`` (a list takes no weak reference, and an epoch
#: loop may build an equal one each time, or shuffle it in place)
_WRAPPED_CONTENT: "weakref.WeakKeyDictionary[Any, Dict[Tuple[int, int], Tuple[str, np.ndarray]]]" = \
    weakref.WeakKeyDictionary()

_Content = Tuple[Tuple[int, int], np.ndarray]
#: how many lists (by content) a guard remembers, the latest ones: an epoch loop needs the last few
REMEMBERED_LISTS = 32


def _content_key(data: Any) -> Optional[_Content]:
    """``((len, XXH3 of the records' sorted fingerprints), fingerprints)`` of a list or tuple: the same key for the
    same records in any order; ``None`` for other data, or records that cannot be fingerprinted (they are then
    dropped with their reason, and the list is not remembered)."""
    if not isinstance(data, (list, tuple)):
        return None
    try:
        fps = np.frombuffer(array("Q", map(record_fingerprint, data)), dtype=np.uint64)
    except (TypeError, ValueError, GuardInputError):
        return None
    return (len(data), xxhash.xxh3_64_intdigest(np.sort(fps).tobytes())), fps


def permutation_ids(first: np.ndarray, now: np.ndarray) -> Optional[List[int]]:
    """The position each record of ``now`` had in ``first`` (records with equal fingerprints paired in the order
    they come), or ``None`` when ``now`` is ``first`` in the same order; ``ValueError`` if they are not the same
    records.

    Example:
        >>> import numpy as np
        >>> permutation_ids(np.array([5, 7, 5], dtype=np.uint64), np.array([7, 5, 5], dtype=np.uint64))
        [1, 0, 2]
    """
    if first.shape == now.shape and np.array_equal(first, now):
        return None
    a, b = np.argsort(first, kind="stable"), np.argsort(now, kind="stable")
    if first.shape != now.shape or not np.array_equal(first[a], now[b]):
        raise ValueError("not the same records")
    ids = np.empty(len(now), dtype=np.int64)
    ids[b] = a
    return ids.tolist()


def _earlier_source(guard: Any, data: Any, content: Optional[_Content]) -> Tuple[Optional[str], Optional[List[int]]]:
    """The source name ``guard`` gave ``data`` when it wrapped it before (this very object, or a list or tuple with
    the same records), and for a list in another order the positions its records had then (their ids)."""
    if content is not None:
        entry = _WRAPPED_CONTENT.get(guard, {}).get(content[0]) or _saved_order(guard, content)
        if entry is None:
            return None, None
        try:
            return entry[0], permutation_ids(entry[1], content[1])
        except ValueError:  # another list whose sorted fingerprints hash alike: a new source
            return None, None
    found = _WRAPPED.get(guard, {}).get(id(data))
    return (found[1] if found is not None and found[0]() is data else None), None


def _saved_order(guard: Any, content: _Content) -> Optional[Tuple[str, np.ndarray]]:
    """A list that this process did not wrap yet, whose records are those the ledger holds under the plain
    positions ``0 .. len-1`` (the first data of a run resumed from a saved state, shuffled since): the first
    source's name and the fingerprints in the order they were saved (remembered, as a list wrapped here is)."""
    memo = getattr(getattr(guard, "ledger", None), "memo", None)
    if (_WRAPPED.get(guard) or _WRAPPED_CONTENT.get(guard)  # data wrapped in this process: not a resumed run's first
            or getattr(guard, "id_field", None) is not None or "" not in getattr(guard, "sources", {}) or memo is None
            or getattr(memo, "scheme", None) != FINGERPRINT):
        return None
    first = memo.positions(content[0][0])
    if first is None:
        return None
    first = first.astype(np.uint64)
    if xxhash.xxh3_64_intdigest(np.sort(first).tobytes()) != content[0][1]:
        return None
    entry = _WRAPPED_CONTENT.setdefault(guard, {}).setdefault(content[0], ("", first))
    return entry


def _remember(guard: Any, data: Any, before: Dict[str, int], content: Optional[_Content]) -> None:
    """Remember the source name the handler just gave ``data``."""
    named = [k for k, v in guard.sources.items() if v != before.get(k, 0)]
    if len(named) != 1:
        return
    if content is not None:
        lists = _WRAPPED_CONTENT.setdefault(guard, {})
        lists.setdefault(content[0], (named[0], content[1]))
        for key in list(lists)[:-REMEMBERED_LISTS]:  # 8 bytes a record each: the latest lists only
            del lists[key]
        return
    try:
        ref = weakref.ref(data)
    except TypeError:
        return
    seen = _WRAPPED.setdefault(guard, {})
    for key in [k for k, (r, _) in seen.items() if r() is None]:
        del seen[key]
    seen[id(data)] = (ref, named[0])


#: per guard, ``(len(data), len(wrapped))`` of every sized (map-style) data it wrapped: what the Trainer callback
#: compares its training set with, to tell the wrapped data from the data given to ``wrap``
_LENGTHS: "weakref.WeakKeyDictionary[Any, List[Tuple[int, int]]]" = weakref.WeakKeyDictionary()


def map_style_length(obj: Any) -> Optional[int]:
    """``len(obj)`` for map-style data (a DataLoader's length counts batches: ``None``)."""
    if type(obj).__name__ == "DataLoader" or not hasattr(obj, "__len__") or hasattr(obj, "__next__"):
        return None
    try:
        return len(obj)
    except TypeError:  # an IterableDataset class that defines __len__ to raise
        return None


def wrapped_lengths(guard: Any) -> List[Tuple[int, int]]:
    """``(length given, length returned)`` of each map-style dataset, list or ``datasets.Dataset`` that
    ``guard`` wrapped, in order."""
    return list(_LENGTHS.get(guard, ()))


def wrap(guard: Any, data: Any, *, source: Optional[str] = None, num_workers: int = 0) -> Any:
    """Wrap ``data`` for ``guard``: the handler registered for its type (see the module docstring).

    The same object wrapped again by the same guard with ``source=None`` (a loop that wraps its data each epoch),
    or a list or tuple holding the same records (in any order: a list shuffled each epoch), keeps the source
    name it got the first time, so its examples replay their decisions; as a new source, each would have been
    dropped as a duplicate of itself. A list in another order keeps its records' first positions as their ids."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError.bad("num_workers", num_workers, "a non-negative integer")
    content = _content_key(data)
    ids = None
    if source is None:
        source, ids = _earlier_source(guard, data, content)
    elif content is not None:  # a named list shuffled since it was wrapped under that name: its first positions
        earlier, ids = _earlier_source(guard, data, content)
        ids = ids if earlier == source else None
    before = dict(guard.sources)
    handler = find_handler(data, guard.decider.name)
    led = getattr(guard, "ledger", None)
    counts = (led.seen, led.kept, dict(led.by_reason)) if led is not None else None
    wraps = getattr(guard, "_wraps", None)
    try:
        if ids is None:
            out = handler(guard, data, source=source, num_workers=num_workers)
        else:  # a list or tuple in another order: its handlers take the ids
            out = handler(guard, data, source=source, num_workers=num_workers, ids=ids)
    except BaseException:
        _unname(guard, before, wraps)
        raise
    _remember(guard, data, before, content)
    note_wrap(guard, data, out)  # what the Trainer callback tells given data from returned data by (.lineage)
    if counts is not None:
        check_wrapped(guard, [k for k, v in guard.sources.items() if v != before.get(k, 0)], *counts)
    given, returned = map_style_length(data), map_style_length(out)
    if given is not None and returned is not None:
        _LENGTHS.setdefault(guard, []).append((given, returned))
        if given and not returned and counts is not None:
            _warn_nothing_kept(guard, given, counts[2])
    return out


def _unname(guard: Any, before: Dict[str, int], wraps: Optional[int]) -> None:
    """Give back the source name a wrap that raised took (a refused text field, a dataset failing on a row): the
    data wrapped next, the same data fixed, gets the name the failed wrap had (``''`` for the first), not the
    next one (``data1``), so its ids are those a resumed run gives it. Before, a run whose first wrap raised
    named its training data ``data1``, and the resumed run, which wraps it first, dropped every record as a
    duplicate of ``data1``'s, without a warning (``tests/data/test_data_failed_wrap.py``)."""
    if wraps is not None:
        guard._wraps = wraps
    for name in [k for k in guard.sources if k not in before]:
        del guard.sources[name]  # in place: core/alldups.py keys its counts by this very dict
        getattr(guard, "_text_checks", {}).pop(name, None)  # what the failed wrap's records taught the check
    guard.sources.update(before)


def _warn_nothing_kept(guard: Any, given: int, by_reason: Optional[Dict[str, int]]) -> None:
    """Warn when a wrap kept none of its records, with the reasons and, for the length rules of ``QualityFilter``
    (which chat turns, titles and queries all fail), what to use instead: an empty dataset used to come back
    without a word (``[]`` from a list; the Trainer then failed on ``num_samples=0``). Drops that are all
    duplicates are explained by :mod:`torchdataguard.core.alldups`."""
    before = by_reason or {}
    dropped = drops_since(guard.ledger, before)
    if dropped and all(r.startswith("duplicate/") for r in dropped):
        return
    reasons = sorted(dropped.items(), key=lambda kv: -kv[1])[:3]
    listed = ", ".join(f"{r} {n:,}" for r, n in reasons) or "see guard.report()"
    hint = ""
    length_rule = next((r for r, _ in reasons if r.startswith("quality/") and r.endswith(("word_count", "char_count"))), None)
    if length_rule is not None:
        rule = length_rule.split("/", 1)[1]
        hint = (f"; short texts (chat turns, titles, queries) fail the document rules of Gopher and C4 (length, stop "
                f"words, symbol ratios): for such data leave QualityFilter out, or choose sets and thresholds that "
                f"fit it, e.g. QualityFilter(sets=['gopher_repetition'], thresholds={{{rule!r}: {{'min': 1}}}})")
    warnings.warn(f"guard.wrap kept none of the {given:,} records (dropped: {listed}){hint}", UserWarning,
                  stacklevel=user_stacklevel())


HOOKS.register("wrap")(wrap)
