"""Refuse a text field that the records do not have, instead of dropping every record one by one.

A record that should hold text (a mapping, when a stage reads text or the record has no ``input_ids``) but
lacks ``text_field`` is dropped as ``invalid/missing_field``. When that happens to *every one* of the first
:data:`PROBE_RECORDS` such records of a data source (or to all of them, when the source has fewer), the field
name is wrong, not the records: :class:`TextFieldCheck` raises :class:`~torchdataguard.errors.ConfigError`
naming the field and the fields the records do have. Records that cannot hold text at all (tuples, tensors,
numbers: dropped as ``invalid/no_text`` when a stage reads text) count the same way, and the error names their
type. Once one record with the field is met, later records that lack it stay counted drops.

The planner marks each record (:data:`NOT_PROBED`, :data:`MISSING` or :data:`PRESENT`) wherever it runs
(DataLoader workers included); the guard checks the marks in the main process, in stream order.
"""
from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional, Sequence

from ..errors import ConfigError

__all__ = ["MISSING", "NOT_PROBED", "PRESENT", "PROBE_RECORDS", "TextFieldCheck", "looks_like_data", "type_mark"]

#: how many records that should hold text are looked at before the field is trusted
PROBE_RECORDS = 100
#: marks per record: not meant to hold text (tensors, token ids, unreadable lines), text field missing, present
NOT_PROBED, MISSING, PRESENT = 0, 1, 2
#: at most this many field names are remembered and shown
_MAX_FIELDS = 30


def type_mark(value: Any, *, held: bool = False) -> str:
    """The entry that stands, among field names, for a record of a type that holds no text (``"<tuple>"``), or
    with ``held`` for a text field holding a value of another type than ``str`` (``"<=list>"``)."""
    return f"<{'=' if held else ''}{type(value).__name__[:40]}>"


def _is_type_mark(name: str) -> bool:
    return len(name) > 2 and name[0] == "<" and name[-1] == ">"


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
        if isinstance(v, Mapping) and _nameable(k):  # a nested record: its string fields go in the advice
            for sk, sv in list(v.items())[:8]:
                if isinstance(sv, (str, bytes)) and _nameable(sk) and len(into) < cap:
                    into[f"<.{k}{_SEP}{sk}>"] = True


#: between the two names of a nested field's mark (``"<.doc\x1fbody>"``): a name may hold dots itself
_SEP = "\x1f"


def _nameable(key: Any) -> bool:
    """Whether a nested field's key can be named in advice: a string key (the advice indexes with it) of at
    most 60 characters that does not look like data (an e-mail address, a number: never shown)."""
    return isinstance(key, str) and len(key) <= 60 and _SEP not in key and not looks_like_data(key)


def _jq_path(name: str) -> str:
    """``.name`` for a plain identifier, else ``."name"`` (jq's quoted form)."""
    return f".{name}" if name.isidentifier() and name.isascii() else f".{json.dumps(name)}"


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

    def __init__(self, text_field: Optional[str], *, limit: int = PROBE_RECORDS, source: str = "",
                 text_stages: Sequence[str] = ()) -> None:
        self.text_field = text_field
        #: names of the guard's stages that read text (records without text cannot pass them): the fix named
        #: for records without text is then to leave those stages out, not ``text_field=None``
        self.text_stages = list(text_stages)
        self.limit = limit
        self.source = source
        self.missing = 0
        self.done = False
        self.fields: Dict[str, bool] = {}
        self._failed: Optional[str] = None

    @classmethod
    def for_stages(cls, text_field: Optional[str], stages: Sequence[Any], *, source: str = "") -> "TextFieldCheck":
        """A check whose advice names the record and index stages of ``stages`` that read text (``needs_text``)."""
        readers = [s.name for s in stages if getattr(s, "kind", "") != "batch" and getattr(s, "needs_text", False)]
        return cls(text_field, source=source, text_stages=readers)

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
        hidden = [k for k in self.fields if not _is_type_mark(k) and looks_like_data(k)]
        names = sorted(k for k in self.fields if not _is_type_mark(k) and k not in hidden)
        marks = sorted(k[1:-1] for k in self.fields if _is_type_mark(k))
        kinds = [k for k in marks if not k.startswith(("=", "."))]
        nested = [k[1:].split(_SEP, 1) for k in marks if k.startswith(".") and _SEP in k]
        held = [k[1:] for k in marks if k.startswith("=")]
        texts = [k for k in names if self.fields[k]]
        src = f" of source {self.source!r}" if self.source else ""
        stages = f"the stages that read text ({self.text_stages})" if self.text_stages else "the stages that read text"
        if kinds and not names:  # tuples, tensors, numbers: no field name can help
            self._failed = (f"{how_many} records{src} are records of type {', '.join(kinds)}, which hold no text, but "
                            f"{stages} need it: each would be dropped as invalid/no_text. Give the guard records that "
                            f"hold their text: plain strings, or mappings such as {{{tf or 'text'!r}: ..., 'label': ...}} "
                            f"(a Dataset whose __getitem__ returns a dict), or leave out {stages}")
            self.done = True
            raise ConfigError(self._failed)
        if kinds:
            names = names + [f"(and records of type {', '.join(kinds)})"]
        if nested:  # before the top-level strings, which are then most likely ids or labels
            top, sub = nested[0]
            jq = _jq_path(top) + _jq_path(sub)
            jq = "" if "'" in jq else f", or for a JSON Lines file jq -c '. + {{text: {jq}}}' IN > OUT"
            fix = (f"text_field=NAME (CLI: --text-field NAME); the strings are inside a mapping "
                   f"({', '.join('.'.join(n) for n in nested[:4])}), "
                   f"and fields are read at the top level only: flatten the records first, e.g. "
                   f"ds.map(lambda r: {{'text': r[{top!r}][{sub!r}]}}){jq}, then text_field='text'"
                   + (f" (or one of the top-level fields holding strings, {texts})" if texts else ""))
        elif len(texts) == 1:
            fix = f"text_field={texts[0]!r} (CLI: --text-field {texts[0]})"
        elif texts:
            fix = f"text_field= one of {texts} (the fields holding strings; CLI: --text-field NAME)"
        else:
            fix = "text_field=NAME (CLI: --text-field NAME)"
        # records without text pass a guard without text-reading stages only; text_field=None helps only then
        other = (f"or, for records without text, leave out {stages}" if self.text_stages
                 else "or text_field=None for records without text")
        what = (f"text_field={tf!r} is missing from" if tf is not None
                else f"text_field=None, but {stages} need text: it is missing from")
        why = "invalid/missing_field"
        if held:  # the field is there but holds lists, numbers ...: a list of strings is not one text
            what = f"text_field={tf!r} holds {', '.join(held)} values, not strings, in"
            why = "invalid/not_string"
            other = (f"or make it one string per record first (e.g. ds.map(lambda r: {{{tf!r}: ' '.join(r[{tf!r}])}}) "
                     f"for lists of strings)")
        self._failed = (f"{what} {how_many} records{src} that should hold text (each would be dropped as {why}); the "
                        f"records have the fields {names}. Pass the field that holds the text: {fix}, {other}")
        if hidden:
            self._failed += (f". {len(hidden)} more field name(s) hold an '@' or {_DATA_DIGITS}+ digits, like personal "
                             f"data rather than column names, and are not shown: is the first row of a CSV file data "
                             f"instead of a header row?")
        self.done = True
        raise ConfigError(self._failed)
