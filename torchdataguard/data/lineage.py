"""What a guard was given and what it returned: lets the Trainer callback tell, for sure, training data made from
the data given to ``guard.wrap`` (the wrap not assigned back) from data made from what it returned.

Lengths cannot tell them apart when the guard dropped nothing: ``Guard([PIIScrubber()]).wrap(train)`` returns as
many rows as it was given, rewritten, and a script that trains on ``train.map(tokenize)`` instead of on the wrapped
dataset trains on the unscrubbed text. Two marks that survive the usual steps after a wrap can:

* a ``datasets.Dataset`` or ``datasets.IterableDataset`` carries a :class:`DatasetInfo <datasets.DatasetInfo>`
  that ``datasets`` copies into whatever is made from it (``map``, ``remove_columns``, ``set_format`` and
  ``with_format``, ``select``, ``shuffle``, ``filter``, ``train_test_split``, ``rename_column``, ``cast`` ...).
  :func:`note_wrap` replaces the info of the data given and of the data returned by an equal one of the subclass
  ``GuardedInfo``, whose one more field ``tdg_lineage`` lists ``given:<guard token>`` and
  ``returned:<guard token>``. It is shown in ``ds.info`` and written by ``save_to_disk`` into
  ``dataset_info.json``; nothing else about the data changes (not its fingerprint, rows or features).
  Steps that build a new info lose the marks: ``concatenate_datasets`` of different datasets, ``map`` with
  ``num_proc``, ``save_to_disk``/``load_from_disk``, a round trip through lists or pandas; data made so is not told.
* any other object that takes a weak reference (a torch map-style ``Dataset``) is remembered by identity, and a
  ``Subset`` (anything with a ``dataset`` attribute) is followed to what it was made of.

:func:`unwrapped` answers for one training set: a reason when it is (or was made from) data given to this guard and
not from data it returned, else ``None`` (made from what it returned, or not known). Lists take no weak reference
and are not told.
"""
from __future__ import annotations

import copy
import dataclasses
import secrets
import weakref
from typing import Any, Dict, Optional, Tuple

__all__ = ["GuardedInfo", "guard_token", "note_wrap", "unwrapped"]

#: per guard, the token its marks carry
_TOKENS: "weakref.WeakKeyDictionary[Any, str]" = weakref.WeakKeyDictionary()
#: per guard, ``{"given" | "returned": {id(obj): weakref to obj}}`` of objects that are not ``datasets`` data
_SEEN: "weakref.WeakKeyDictionary[Any, Dict[str, Dict[int, Any]]]" = weakref.WeakKeyDictionary()
_INFO_CLASS: list = []
#: how many ``dataset`` attributes are followed from the training set (a Subset of a Subset ...)
_DEPTH = 8


def _guarded_info_class() -> type:
    """The ``datasets.DatasetInfo`` subclass with the ``tdg_lineage`` field (made once ``datasets`` is in use)."""
    if not _INFO_CLASS:
        from datasets import DatasetInfo

        @dataclasses.dataclass
        class GuardedInfo(DatasetInfo):
            """A ``DatasetInfo`` that also says which torchdataguard guards were given or returned the data."""

            tdg_lineage: Tuple[str, ...] = ()

        GuardedInfo.__module__ = __name__  # pickled by name (datasets' worker processes), found by __getattr__
        GuardedInfo.__qualname__ = "GuardedInfo"
        _INFO_CLASS.append(GuardedInfo)
    return _INFO_CLASS[0]


def __getattr__(name: str) -> Any:  # the class exists only once datasets is imported (no import cost otherwise)
    if name == "GuardedInfo":
        return _guarded_info_class()
    raise AttributeError(name)


def guard_token(guard: Any) -> str:
    """The token of ``guard``'s marks (random, per guard object)."""
    tok = _TOKENS.get(guard)
    if tok is None:
        tok = _TOKENS[guard] = secrets.token_hex(6)
    return tok


def _is_datasets(obj: Any) -> bool:
    return type(obj).__module__.split(".", 1)[0] == "datasets"


def _marks(obj: Any) -> Tuple[str, ...]:
    return tuple(getattr(getattr(obj, "_info", None), "tdg_lineage", ()) or ())


def _mark(ds: Any, mark: str) -> None:
    """Give ``ds`` an info equal to its own plus ``mark`` in ``tdg_lineage`` (nothing when it has no info)."""
    info = getattr(ds, "_info", None)  # where datasets' Dataset and IterableDataset keep their DatasetInfo
    if info is None or not dataclasses.is_dataclass(info):
        return
    marks = _marks(ds)
    if mark in marks:
        return
    cls = _guarded_info_class()
    if type(info) not in (cls, cls.__mro__[1]):  # a DatasetInfo of the data's own kind: left as it is (not told)
        return
    values = {f.name: copy.deepcopy(getattr(info, f.name)) for f in dataclasses.fields(info)
              if f.init and f.name != "tdg_lineage"}
    ds._info = cls(**values, tdg_lineage=marks + (mark,))


def note_wrap(guard: Any, data: Any, out: Any) -> None:
    """Remember that ``guard`` was given ``data`` and returned ``out`` (called by every wrap)."""
    if out is data:
        return
    tok = guard_token(guard)
    for obj, kind in ((data, "given"), (out, "returned")):
        if _is_datasets(obj):
            try:
                _mark(obj, f"{kind}:{tok}")
            except Exception:  # noqa: BLE001 - another datasets version: the data is then not told, never harmed
                pass
            continue
        try:
            ref = weakref.ref(obj)
        except TypeError:  # lists, tuples: not told
            continue
        seen = _SEEN.setdefault(guard, {"given": {}, "returned": {}})[kind]
        for key in [k for k, r in seen.items() if r() is None]:
            del seen[key]
        seen[id(obj)] = ref


def unwrapped(guard: Any, dataset: Any) -> Optional[str]:
    """How ``dataset`` is known to be data given to ``guard`` and not data it returned, else ``None``."""
    tok = guard_token(guard)
    seen = _SEEN.get(guard, {"given": {}, "returned": {}})
    obj = dataset
    for _ in range(_DEPTH):
        if obj is None:
            return None
        ref = seen["returned"].get(id(obj))
        if ref is not None and ref() is obj:
            return None
        ref = seen["given"].get(id(obj))
        if ref is not None and ref() is obj:
            return ("is the very dataset given to guard.wrap" if obj is dataset else
                    f"was made from the dataset given to guard.wrap (a {type(dataset).__name__} of it)")
        if _is_datasets(obj):
            marks = _marks(obj)
            if f"returned:{tok}" in marks:
                return None
            if f"given:{tok}" in marks:
                return ("was made from the datasets.Dataset given to guard.wrap, not from the one it returned (map, "
                        "remove_columns, with_format ... keep the dataset's info, where the guard marked both)")
            return None
        obj = vars(obj).get("dataset") if hasattr(obj, "__dict__") else None
    return None
