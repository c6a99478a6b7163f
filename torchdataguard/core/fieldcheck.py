"""Refuse a field that a stage was told to read (``PIIScrubber(fields=("subject",))``) when no record holds it.

A stage that reads fields besides the text (:attr:`Stage.extra_fields <torchdataguard.core.stage.Stage.extra_fields>`)
passes a record that lacks one of them as it is: for ``PIIScrubber`` that field is simply not scrubbed. A field name
that none of the records holds (a typo, another casing, a column renamed upstream) therefore scrubbed nothing, and
nothing said so. As the text field is (:mod:`torchdataguard.core.textcheck`), each such field is checked on the first
:data:`~torchdataguard.core.textcheck.PROBE_RECORDS` mapping records of a data source (the whole first chunk they
arrive in, or every record when the source has fewer): a field none of them holds raises
:class:`~torchdataguard.errors.ConfigError` naming the field, the stage, the fields the records hold and the fix. A
field that some records hold and others lack is fine: those records have nothing there to read.

The planner counts (:func:`probe_fields`) wherever it runs, DataLoader workers included; the guard checks the
counts in the main process.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from .textcheck import PROBE_RECORDS, TextFieldCheck, looks_like_data, merge_fields

__all__ = ["ExtraFieldCheck", "FieldChecks", "FieldProbe", "probe_fields", "wanted_fields"]

#: ``(mapping records, {field: records holding it}, {field name of those records: held a string})`` of a chunk
FieldProbe = Tuple[int, Dict[str, int], Dict[str, bool]]
#: field names are taken from this many mapping records of a chunk (enough to name the columns)
_NAMED_RECORDS = 8


def wanted_fields(stages: Sequence[Any]) -> Dict[str, List[str]]:
    """``{field: [names of the stages that read it]}`` for the record stages' :attr:`extra_fields`."""
    out: Dict[str, List[str]] = {}
    for st in stages:
        if getattr(st, "kind", "") == "record":
            for f in getattr(st, "extra_fields", ()) or ():
                out.setdefault(f, []).append(getattr(st, "name", type(st).__name__))
    return out


def probe_fields(records: Sequence[Any], fields: Sequence[str]) -> Optional[FieldProbe]:
    """Count the mapping records of a chunk and those holding each of ``fields`` (``None`` without fields).

    Example:
        >>> probe_fields([{"text": "a", "title": "b"}, {"text": "c"}, "plain"], ["title", "subject"])
        (2, {'title': 1}, {'text': True, 'title': True})
    """
    if not fields:
        return None
    n = 0
    held: Dict[str, int] = {}
    names: Dict[str, bool] = {}
    for rec in records:
        if not isinstance(rec, Mapping):
            continue
        n += 1
        if n <= _NAMED_RECORDS:
            merge_fields(names, rec)
        for f in fields:
            if f in rec:
                held[f] = held.get(f, 0) + 1
    return n, held, names


class ExtraFieldCheck:
    """Watches one data source's mapping records for fields the stages read and none of the records holds.

    Example:
        >>> check = ExtraFieldCheck({"subject": ["pii"]}, limit=2)
        >>> check.observe((3, {}, {"text": True, "Subject": True}))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        torchdataguard.errors.ConfigError: stage 'pii' reads the field 'subject' (fields=), which none of the first 3 records holds: ...
    """

    def __init__(self, wanted: Dict[str, List[str]], *, limit: int = PROBE_RECORDS, source: str = "",
                 text_field: Optional[str] = None) -> None:
        self.wanted = dict(wanted)
        self.text_field = text_field  # read anyway: never the field suggested
        self.limit = limit
        self.source = source
        self.records = 0
        self.found: set = set()
        self.fields: Dict[str, bool] = {}
        self.done = not self.wanted
        self._failed: Optional[str] = None

    def observe(self, probe: Optional[FieldProbe]) -> None:
        """Account for a chunk's counts, in stream order; raises once ``limit`` records lacked a field."""
        if self._failed is not None:
            raise ConfigError(self._failed)
        if self.done or not probe:
            return
        n, held, names = probe
        self.records += int(n)
        self.found.update(f for f, c in held.items() if c)
        for k, v in names.items():
            if len(self.fields) < 30 or k in self.fields:
                self.fields[k] = self.fields.get(k, False) or bool(v)
        if all(f in self.found for f in self.wanted):
            self.done = True
        elif self.records >= self.limit:
            self._fail(f"the first {self.records}")

    def check(self, plan: Any, *, end: bool = False) -> None:
        """Observe a plan's counts (if any); ``end``: the source ended, judge what was seen."""
        if plan is not None:
            self.observe(getattr(plan, "field_probe", None))
        if end:
            self.finish()

    def finish(self) -> None:
        if self._failed is not None:
            raise ConfigError(self._failed)
        if not self.done and self.records:
            self._fail(f"the {self.records}")

    def _fail(self, how_many: str) -> None:
        missing = [f for f in self.wanted if f not in self.found]
        shown = sorted(k for k in self.fields if not looks_like_data(k))
        hidden = len(self.fields) - len(shown)
        src = f" of source {self.source!r}" if self.source else ""
        stages = sorted({s for f in missing for s in self.wanted[f]})
        what = f"the field {missing[0]!r}" if len(missing) == 1 else f"the fields {missing}"
        others = [k for k in shown if k != self.text_field and self.fields[k]]  # string fields, the text aside
        guess = {f: c[0] for f in missing for c in [difflib.get_close_matches(f, others, n=1, cutoff=0.6)] if c}
        named = tuple(f for f in self.wanted if f in self.found) + tuple(guess.values())
        fix = (f"Did you mean {', '.join(f'{a!r} (not {b!r})' for b, a in guess.items())}? " if guess else "")
        fix += (f"Pass the fields that hold text to read, e.g. fields={named!r}" if named else
                f"Pass the fields that hold text to read (string fields besides the text: {others})" if others else
                "Leave fields= out: no field but the text holds a string")
        self._failed = (f"stage {stages[0] if len(stages) == 1 else stages!r} reads {what} (fields=), which none of "
                        f"{how_many} records{src} holds: nothing would be read or scrubbed there. The records have the "
                        f"fields {shown}" + (f" (and {hidden} whose names look like data)" if hidden else "") +
                        f". {fix}")
        self.done = True
        raise ConfigError(self._failed)


class FieldChecks:
    """The checks of one data source's fields: the text field (:class:`~torchdataguard.core.textcheck.TextFieldCheck`)
    first, then the fields the stages read besides it (:class:`ExtraFieldCheck`)."""

    def __init__(self, text: TextFieldCheck, extra: ExtraFieldCheck) -> None:
        self.text = text
        self.extra = extra

    @classmethod
    def for_stages(cls, text_field: Optional[str], stages: Sequence[Any], *, source: str = "") -> "FieldChecks":
        return cls(TextFieldCheck.for_stages(text_field, stages, source=source),
                   ExtraFieldCheck(wanted_fields(stages), source=source, text_field=text_field))

    def check(self, plan: Any, *, end: bool = False) -> None:
        """Both checks on a :class:`~torchdataguard.core.plan.Plan` (``None``: no new chunk); ``end``: the source ended."""
        self.text.check(plan, end=end)
        self.extra.check(plan, end=end)

    def finish(self) -> None:
        self.text.finish()
        self.extra.finish()
