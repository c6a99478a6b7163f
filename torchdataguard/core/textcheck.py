"""Refuse a text field that the records do not have, instead of dropping every record one by one.

A record that should hold text (a mapping, when a stage reads text or the record has no ``input_ids``) but
lacks ``text_field`` is dropped as ``invalid/missing_field``. When that happens to *every one* of the first
:data:`PROBE_RECORDS` such records of a data source (or to all of them, when the source has fewer), the field
name is wrong, not the records: :class:`TextFieldCheck` raises :class:`~torchdataguard.errors.ConfigError`
naming the field and the fields the records do have. Once one record with the field is met, later records
that lack it stay counted drops.

The planner marks each record (:data:`NOT_PROBED`, :data:`MISSING` or :data:`PRESENT`) wherever it runs
(DataLoader workers included); the guard checks the marks in the main process, in stream order.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

from ..errors import ConfigError

__all__ = ["MISSING", "NOT_PROBED", "PRESENT", "PROBE_RECORDS", "TextFieldCheck", "looks_like_data"]

#: how many records that should hold text are looked at before the field is trusted
PROBE_RECORDS = 100
#: marks per record: not meant to hold text (tensors, token ids, unreadable lines), text field missing, present
NOT_PROBED, MISSING, PRESENT = 0, 1, 2
#: at most this many field names are remembered and shown
_MAX_FIELDS = 30


#: a field name holding this many digits (or an '@') is taken for data, not a column name, and never shown
_DATA_DIGITS = 5


def looks_like_data(name: str) -> bool:
    """Whether a field name looks like a value (an e-mail address, a phone or card number), as the names of a
    CSV file without a header row do: such names are left out of messages and reports.

    Example:
        >>> [looks_like_data(n) for n in ("body", "col_2024", "jane@example.org", "+1 415 555 0142")]
        [False, False, True, True]
    """
    return "@" in name or sum(c.isdigit() for c in name) >= _DATA_DIGITS


def merge_fields(into: Dict[str, bool], record: Mapping, *, cap: int = _MAX_FIELDS) -> None:
    """Remember the field names of ``record`` (never values), and whether each held a string."""
    for k, v in record.items():
        if len(into) >= cap and k not in into:
            break
        name = str(k)[:60]
        into[name] = into.get(name, False) or isinstance(v, (str, bytes))


class TextFieldCheck:
    """Watches one data source's records for a text field that none of them has.

    Example:
        >>> check = TextFieldCheck("body")
        >>> check.observe([MISSING] * 3, {"sentence": True, "label": False})
        >>> check.finish()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: text_field='body' is missing from all 3 records that should hold text ...
    """

    def __init__(self, text_field: Optional[str], *, limit: int = PROBE_RECORDS, source: str = "") -> None:
        self.text_field = text_field
        self.limit = limit
        self.source = source
        self.missing = 0
        self.done = False
        self.fields: Dict[str, bool] = {}
        self._failed: Optional[str] = None

    def observe(self, flags: Sequence[int], fields: Mapping[str, bool]) -> None:
        """Account for the marks of a chunk, in stream order; raises once ``limit`` records all lacked the field."""
        if self._failed is not None:
            raise ConfigError(self._failed)
        if self.done:
            return
        for k, v in fields.items():
            if len(self.fields) < _MAX_FIELDS or k in self.fields:
                self.fields[k] = self.fields.get(k, False) or bool(v)
        for f in flags:
            if f == PRESENT:
                self.done = True
                return
            if f == MISSING:
                self.missing += 1
                if self.missing >= self.limit:
                    self._fail(f"all of the first {self.missing}")

    def check(self, plan: Any, *, end: bool = False) -> None:
        """Observe a :class:`~torchdataguard.core.plan.Plan`'s marks (if any), then :meth:`finish` when ``end``."""
        if plan is not None and plan.text_flags:
            self.observe(plan.text_flags, plan.missing_fields)
        if end:
            self.finish()

    def finish(self) -> None:
        """The source ended: raise if every record that should hold text lacked the field."""
        if self._failed is not None:
            raise ConfigError(self._failed)
        if not self.done and self.missing:
            self._fail(f"all {self.missing}")

    def _fail(self, how_many: str) -> None:
        tf = self.text_field
        hidden = [k for k in self.fields if looks_like_data(k)]
        names = sorted(k for k in self.fields if k not in hidden)
        texts = [k for k in names if self.fields[k]]
        src = f" of source {self.source!r}" if self.source else ""
        if len(texts) == 1:
            fix = f"text_field={texts[0]!r} (CLI: --text-field {texts[0]})"
        elif texts:
            fix = f"text_field= one of {texts} (the fields holding strings; CLI: --text-field NAME)"
        else:
            fix = "text_field=NAME (CLI: --text-field NAME)"
        self._failed = (f"text_field={tf!r} is missing from {how_many} records{src} that should hold text (each "
                        f"would be dropped as invalid/missing_field); the records have the fields {names}. Pass the "
                        f"field that holds the text: {fix}, or text_field=None for records without text")
        if hidden:
            self._failed += (f". {len(hidden)} more field name(s) hold an '@' or {_DATA_DIGITS}+ digits, like personal "
                             f"data rather than column names, and are not shown: is the first row of a CSV file data "
                             f"instead of a header row?")
        self.done = True
        raise ConfigError(self._failed)
