"""Refuse an ``id_field`` that no record holds a usable id in, instead of dropping every record one by one.

A mapping record whose ``id_field`` is missing or ``None`` is dropped as ``invalid/missing_id``, one whose id is
not a ``str`` or an ``int`` (a float, a bool, a list) as ``invalid/id_type``. When that happens to *every one*
of the first :data:`~torchdataguard.core.textcheck.PROBE_RECORDS` records of a data source, the setting is wrong,
not the records (a wrong field name; ids read as floats, as a pandas column with a missing value is): the guard
raises :class:`~torchdataguard.errors.ConfigError` with the fix before the chunk is counted, as it does for a
text field that no record has (:mod:`.textcheck`). Once one record has a usable id, later bad ids stay counted drops.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any, Dict, List, Tuple

from ..errors import ConfigError
from .textcheck import PROBE_RECORDS

__all__ = ["check_id_field"]

_BAD = ("invalid/missing_id", "invalid/id_type")
#: per guard: its ``sources`` dict when the counts began (``reset()`` and a loaded state replace that dict, and
#: the check starts again), and per source ``[missing, wrong type, done]``
_STATE: "weakref.WeakKeyDictionary[Any, Tuple[Dict[str, int], Dict[str, List[Any]]]]" = weakref.WeakKeyDictionary()


def check_id_field(guard: Any, plan: Any, source: str) -> None:
    """Raise ``ConfigError`` if the first :data:`PROBE_RECORDS` records of ``source`` all lack a usable id."""
    if guard.id_field is None or not plan.pre_drop:
        return
    entry = _STATE.get(guard)
    if entry is None or entry[0] is not guard.sources:
        entry = _STATE[guard] = (guard.sources, {})
    st = entry[1].setdefault(source, [0, 0, False])
    if st[2]:
        return
    _warn_email_ids(guard, plan)
    for pre in plan.pre_drop:
        reason = pre[1].reason if pre is not None else None
        if reason not in _BAD:
            st[2] = True
            return
        st[_BAD.index(reason)] += 1
        if st[0] + st[1] >= PROBE_RECORDS:
            st[2] = True
            src = f" of source {source!r}" if source else ""
            raise ConfigError(
                f"id_field={guard.id_field!r} holds no usable id in any of the first {st[0] + st[1]} records{src} "
                f"(missing or None in {st[0]}, dropped as invalid/missing_id; not a str or int, e.g. a float or a "
                f"bool, in {st[1]}, dropped as invalid/id_type): every record would be dropped. Name the field that "
                f"holds each record's id, make the ids str or int first (a column read as floats: "
                f"ds.map(lambda r: {{{guard.id_field!r}: int(r[{guard.id_field!r}])}})), or pass id_field=None to "
                f"number the records by position")


#: guards already warned that their ids look like e-mail addresses
_WARNED: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _warn_email_ids(guard: Any, plan: Any) -> None:
    """Warn once per guard when the first ids of a source hold an ``@`` and are stored in clear (no
    ``hash_ids``): they reach the report (duplicates' matches), the quarantine file and the saved state, which
    the Trainer callback writes next to the model. ``torchdataguard scan`` says the same on stderr. The warning
    names the field, never a value."""
    if guard in _WARNED or getattr(guard, "id_hasher", None) is not None:
        return
    for ex in plan.examples[:PROBE_RECORDS]:
        if isinstance(ex.id, str) and "@" in ex.id and not ex.id.startswith("h:"):
            _WARNED.add(guard)
            warnings.warn(f"the ids in id_field={guard.id_field!r} hold an '@', like e-mail addresses; they are "
                          f"written in clear into the report (the duplicates' matches), the quarantine file and the "
                          f"saved state: pass Guard(..., hash_ids=<a secret of 16 bytes or more>) to store keyed hashes "
                          f"instead (docs/guarantees.md, Hashed ids)", UserWarning, stacklevel=2)
            return
