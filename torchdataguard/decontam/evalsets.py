"""Evaluation sets as items: an id and one text per item (several fields joined).

An evaluation set is a list or tuple, a ``datasets.Dataset`` or any other iterable of records: strings
(the item is the text) or mappings (the text is the named fields joined by a space; with no fields named,
every string field, or list of strings, except the id field). Files are read by the layers that read
files (``torchdataguard scan --eval NAME=PATH`` reads any format the scan reads).

Items that cannot be checked are counted with a reason and skipped (never silently): ``no_text`` (none of
the fields, or not a string or mapping), ``invalid/<why>`` (a record the file reader could not parse),
``shorter_than_ngram`` (fewer normalised words than the n-gram length; decided by the index).

Example:
    >>> s = read_eval_set("qa", [{"q": "What is two plus two?", "a": "four"}, "just text"], fields=["q", "a"])
    >>> s.ids, s.texts
    ([0, 1], ['What is two plus two? four', 'just text'])
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from ..errors import ConfigError

__all__ = ["EvalSet", "NAME_PATTERN", "read_eval_set"]

#: allowed benchmark names (they become drop reasons ``contamination/<NAME>``)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class EvalSet:
    """One evaluation set: ids and texts of its usable items, and the skipped ones by reason."""

    name: str
    ids: List[Any] = field(default_factory=list)
    texts: List[str] = field(default_factory=list)
    #: reason -> ids of the items skipped for it
    skipped: Dict[str, List[Any]] = field(default_factory=dict)
    #: the id of every item read (usable and skipped), in order
    all_ids: List[Any] = field(default_factory=list)
    fields: Optional[List[str]] = None

    @property
    def items(self) -> int:
        """Items read (usable and skipped)."""
        return len(self.all_ids)

    def skip(self, reason: str, item_id: Any) -> None:
        self.skipped.setdefault(reason, []).append(item_id)


def _text_of(value: Any, named: bool) -> Optional[str]:
    """A field's text: a string, strings of a list joined; with ``named`` fields numbers too."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        parts = [v for v in (_text_of(x, named) for x in value) if v]
        return " ".join(parts) if parts else None
    if named and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _records(name: str, data: Any) -> Iterable[Any]:
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        raise ConfigError(f"eval set {name!r} is a path ({str(data)!r}); pass its records (a list, a datasets.Dataset) "
                          f"or read the file first: list(torchdataguard.io.read_records(path)); the command line "
                          f"reads files itself: --eval {name}=PATH")
    if isinstance(data, Mapping):
        hint = (f"; pick a split, e.g. data['test']" if all(hasattr(v, "__iter__") for v in data.values()) else "")
        raise ConfigError(f"eval set {name!r} is a mapping with keys {sorted(map(str, data))[:5]}, not a set of "
                          f"items{hint}")
    if not hasattr(data, "__iter__"):
        raise ConfigError(f"eval set {name!r} is a {type(data).__name__}; expected a list, a datasets.Dataset or "
                          f"an iterable of strings or records")
    return data


def read_eval_set(name: str, data: Any, *, fields: Optional[Sequence[str]] = None,
                  id_field: Optional[str] = None) -> EvalSet:
    """Read ``data`` into an :class:`EvalSet` (ids: the ``id_field`` value, else the position).

    Raises:
        ConfigError: a bad name, a path or non-iterable, no item at all, a named field absent from every
            item, an id field missing from an item, or repeated ids.
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigError.bad("eval set name", name, "letters, digits, '_', '.' or '-' (it becomes the drop reason "
                              "contamination/<NAME>)")
    fields = [fields] if isinstance(fields, str) else (list(fields) if fields is not None else None)
    out = EvalSet(name, fields=fields)
    present: Dict[str, int] = {f: 0 for f in fields or []}
    keys_seen: List[str] = []
    seen_ids = set()
    for pos, rec in enumerate(_records(name, data)):
        item_id: Any = pos
        if id_field is not None:
            if not isinstance(rec, Mapping) or id_field not in rec:
                raise ConfigError(f"eval set {name!r}: item {pos} has no id field {id_field!r}; every item needs one "
                                  f"(or leave the id field unset: items are then numbered 0, 1, ...)")
            item_id = rec[id_field]
            if not isinstance(item_id, (str, int)) or isinstance(item_id, bool):
                raise ConfigError(f"eval set {name!r}: item {pos} has an id of type {type(item_id).__name__}; ids "
                                  f"must be strings or integers")
            if item_id in seen_ids:
                raise ConfigError(f"eval set {name!r}: the id {item_id!r} repeats (item {pos}); item ids must be "
                                  f"unique so that clean_eval_ids can name the clean items")
            seen_ids.add(item_id)
        out.all_ids.append(item_id)
        if isinstance(rec, str):
            text: Optional[str] = rec
        elif isinstance(rec, Mapping):
            if len(keys_seen) < 20:
                keys_seen.extend(str(k) for k in rec if str(k) not in keys_seen)
            names = fields if fields is not None else [k for k in rec if k != id_field]
            parts = []
            for f in names:
                if f in rec:
                    if f in present:
                        present[f] += 1
                    t = _text_of(rec[f], fields is not None)
                    if t:
                        parts.append(t)
            text = " ".join(parts) if parts else None
        else:
            reason = getattr(rec, "reason", None)
            out.skip(f"invalid/{reason}" if isinstance(reason, str) else "no_text", item_id)
            continue
        if text is None or not text.strip():
            out.skip("no_text", item_id)
            continue
        out.ids.append(item_id)
        out.texts.append(text)
    if out.items == 0:
        raise ConfigError(f"eval set {name!r} is empty: it has no items to check against")
    absent = [f for f, n in present.items() if n == 0]
    if absent:
        raise ConfigError(f"eval set {name!r}: the field(s) {absent} are absent from every item (its items have the "
                          f"fields {keys_seen[:20]}); set the fields with --eval-field / fields=")
    return out
