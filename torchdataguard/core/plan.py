"""Phase one of the pipeline: validate records, run record stages, compute index keys.

A :class:`Planner` holds only picklable, stateless things (record stages and keyers), so it runs in
DataLoader workers, ``datasets`` map processes or the main process alike. Its output, a :class:`Plan`,
goes to :meth:`torchdataguard.Guard.decide` in the main process, which runs the stateful index stages.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from collections.abc import Mapping  # isinstance against typing.Mapping costs about 1 us more per call
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import GuardInputError
from .arrays import is_tensor, loaded_torch
from .ids import FINGERPRINT_TAGS, IdHasher, bad_id_reason, plain_id, record_fingerprint
from .stage import Drop, Example
from .fieldcheck import FieldProbe, probe_fields
from .textcheck import MISSING, NOT_PROBED, PRESENT, looks_like_data, merge_fields, type_mark
from .tokenids import token_ids_problem
from .tokens import TokenSync, sync_tokens

__all__ = ["BadRecord", "Plan", "Planner", "take_keys"]


class BadRecord:
    """Stands for a record a reader could not parse; the guard drops it as ``invalid/<reason>``."""

    def __init__(self, reason: str, where: str = "", line: Optional[int] = None) -> None:
        self.reason = reason
        self.where = where
        #: the record's 1-based line in the file (every line counted), when a reader knows it: ``line``, else
        #: read from a ``where`` of ``"line N ..."``
        self.line = line if line is not None else _line_of(where)


def _line_of(where: str) -> Optional[int]:
    """The line number in a reader's ``where`` (``"line 7 (Expecting value)"`` -> 7), else ``None``."""
    head, _, rest = where.partition(" ")
    num = rest.split(" ", 1)[0]
    return int(num) if head == "line" and num.isdigit() else None

    def __repr__(self) -> str:
        return f"BadRecord({self.reason!r}, {self.where!r})"


def take_keys(keys: Any, idx: Sequence[int]) -> Any:
    """Select rows ``idx`` of a keyer's output: a NumPy array or tensor, an object with a ``take(idx)`` method,
    a list, or an object whose array (NumPy or tensor) attributes are row-aligned."""
    if isinstance(keys, np.ndarray):
        return keys[np.asarray(idx, dtype=np.int64)] if len(idx) else keys[:0]
    if is_tensor(keys):
        return keys[keys.new_tensor(list(idx), dtype=loaded_torch().long)] if len(idx) else keys[:0]
    if hasattr(keys, "take") and not isinstance(keys, list):
        return keys.take(list(idx))
    if isinstance(keys, list):
        return [keys[i] for i in idx]
    out = copy.copy(keys)
    rows = np.asarray(idx, dtype=np.int64)
    for name, val in vars(keys).items():
        if isinstance(val, np.ndarray):
            setattr(out, name, val[rows] if len(idx) else val[:0])
        elif is_tensor(val):
            setattr(out, name, val[val.new_tensor(rows, dtype=loaded_torch().long)] if len(idx) else val[:0])
    return out


@dataclass
class Plan:
    """What phase one learned about a chunk of examples."""

    examples: List[Example]
    #: (step index, Drop) of the first record-stage or validation drop (-1 = validation), else None.
    pre_drop: List[Optional[Tuple[int, Drop]]]
    #: step index -> (rows alive at that step, keys for those rows)
    keys: Dict[int, Tuple[List[int], Any]] = field(default_factory=dict)
    #: per example: does it have the text field (see :mod:`~torchdataguard.core.textcheck`); empty = not marked
    text_flags: List[int] = field(default_factory=list)
    #: field names of the records that lacked the text field (name -> held a string)
    missing_fields: Dict[str, bool] = field(default_factory=dict)
    #: the hash the examples' fingerprints were made with (a tag of ``FINGERPRINTS``); None when none were made
    scheme: Optional[str] = None
    #: counts of the fields the stages read besides the text (:func:`~torchdataguard.core.fieldcheck.probe_fields`)
    field_probe: Optional[FieldProbe] = None

    def without_records(self) -> "Plan":
        """A copy whose examples carry no record (to send decisions requests cheaply)."""
        exs = [Example(e.id, None, None, e.text_field, e.counts, e.scores, e.fingerprint, e.protected)
               for e in self.examples]
        return Plan(exs, self.pre_drop, self.keys, self.text_flags, self.missing_fields, self.scheme, self.field_probe)


def _utf8_text(value: str) -> bool:
    """True when ``value`` holds no lone surrogate (UTF-8 can encode it): what the full checks of
    :meth:`Planner.make_example` conclude, for its fast paths (ASCII text without encoding it)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _holds_no_tokens(ids: Any) -> bool:
    """True for a token-id field of length 0: ``[]``, ``()``, an empty tensor or array (``None``/absent: False)."""
    if ids is None:
        return False
    numel = getattr(ids, "numel", None)  # a torch tensor, of any shape
    if callable(numel):
        return numel() == 0
    size = getattr(ids, "size", None)  # a numpy array
    if isinstance(size, int):
        return size == 0
    try:
        return len(ids) == 0
    except TypeError:  # a scalar: not a token list, left to the stages as before
        return False


class Planner:
    """Validation, record stages and key computation; picklable."""

    def __init__(self, steps: Sequence[Tuple[str, Any]], *, text_field: Optional[str], id_field: Optional[str],
                 strict: bool, max_chars: int, needs_text: bool, token_field: str = "input_ids",
                 fingerprints: bool = True, id_hasher: Optional[IdHasher] = None,
                 protected: Optional[Mapping[int, str]] = None, tokens: Optional[TokenSync] = None,
                 fingerprint: Callable[[Any], int] = record_fingerprint) -> None:
        self.steps = list(steps)
        #: the content fingerprint the ledger's decisions are remembered under (this version's, or the hash of a
        #: resumed older state: :data:`~torchdataguard.core.ids.FINGERPRINTS`); protected records are always
        #: named by :func:`~torchdataguard.core.ids.record_fingerprint`
        self.fingerprint = fingerprint
        #: refuses records holding ``input_ids`` that a stage would rewrite, or re-tokenises them
        #: (:mod:`~torchdataguard.core.tokens`); ``None`` when no stage rewrites text
        self.tokens = tokens
        self.text_field = text_field
        self.id_field = id_field
        #: compute a content fingerprint per example (needed when the ledger remembers decisions)
        self.fingerprints = fingerprints
        #: replaces ids from ``id_field`` by their hash (``Guard(hash_ids=...)``)
        self.id_hasher = id_hasher
        self.strict = strict
        self.max_chars = max_chars
        self.needs_text = needs_text
        self.token_field = token_field
        #: record fingerprint -> counter of the records that pass untouched (``Guard.protect``)
        self.protected: Dict[int, str] = dict(protected or {})
        #: fields the record stages read besides the text (``PIIScrubber(fields=...)``), counted per chunk
        #: token-id fields a keyer reads from records without text (``NearDedup``), checked by make_example
        self.token_fields = tuple(dict.fromkeys(f for kind, obj in self.steps if kind == "index"
                                                for f in [getattr(obj, "token_ids_field", None)] if f))
        #: ... and from records with text too (``NearDedup(shingles="tokens")``): the fast paths below then skip dicts
        self.text_token_fields = tuple(dict.fromkeys(f for kind, obj in self.steps if kind == "index"
                                                     for f in [getattr(obj, "token_ids_field_with_text", None)] if f))
        self.extra_fields = tuple(dict.fromkeys(f for kind, obj in self.steps if kind == "record"
                                                for f in getattr(obj, "extra_fields", ()) or ()))

    # -- validation -------------------------------------------------------------------------------
    def _invalid(self, id_: Any, what: str, why: str) -> Drop:
        if self.strict:
            raise GuardInputError(
                f"record {id_!r}: {what} is invalid: {why}. Fix or remove the record, or pass strict=False to drop such "
                f"records with reason 'invalid/...' and a count in the report.")
        return Drop("invalid/" + why.split(" ", 1)[0])

    def make_example(self, record: Any, default_id: Any) -> Tuple[Example, Optional[Drop]]:
        """Build an :class:`Example`, extracting and validating the text; bad input becomes a Drop."""
        id_ = default_id
        # the common case first: a plain str, or a plain dict holding a str text that UTF-8 can encode, positional ids
        # (exactly what the checks below conclude for such a record, at a fraction of their cost)
        kind = type(record)
        if kind is str or (kind is dict and self.id_field is None and not self.text_token_fields):
            tf = None if kind is str else self.text_field
            value = record if kind is str else record.get(tf) if tf is not None else None
            if (type(value) is str and value and len(value) <= self.max_chars and _utf8_text(value)
                    and not value.isspace()):
                return Example(id_, record, value, tf), None
        elif kind is dict and self.id_hasher is None and not self.text_token_fields:  # ... or a plain str/int id
            v = record.get(self.id_field)
            value = record.get(self.text_field) if self.text_field is not None else None
            if ((type(v) is int or type(v) is str) and type(value) is str and value and len(value) <= self.max_chars
                    and _utf8_text(value) and not value.isspace()):
                return Example(v, record, value, self.text_field), None
        if record is None:
            return Example(id_, None), self._invalid(id_, "the record", "none")
        if isinstance(record, BadRecord):
            drop = self._invalid(id_, f"the record at {record.where}", record.reason)
            return Example(id_, None), drop if record.line is None else Drop(drop.reason, line=record.line)
        if self.id_field is not None and isinstance(record, Mapping):
            v = plain_id(record.get(self.id_field))  # NumPy and 0-d tensor integers (a torch-format stream)
            why = bad_id_reason(v) if self.id_field in record else f"missing_id (no field {self.id_field!r})"
            if why is not None:  # never str(v): None and True would become ids "None"/"True" of other records
                if self.strict:
                    raise GuardInputError(
                        f"record at position {default_id!r}: its id field {self.id_field!r} is invalid: {why}. Give "
                        f"every record a str or int id, or pass strict=False to drop such records with reason "
                        f"'invalid/{why.split(' ', 1)[0]}' and a count in the report.")
                return Example(None, record), Drop("invalid/" + why.split(" ", 1)[0])
            id_ = self.id_hasher(v) if self.id_hasher is not None else v
        tf = self.text_field
        value: Any
        if isinstance(record, (str, bytes, bytearray)):
            value, tf = record, None
        elif isinstance(record, Mapping):
            if tf is None or tf not in record:
                if self.needs_text or (tf is not None and record.get(self.token_field) is None):
                    what = f"field {tf!r}"
                    if self.strict:
                        shown = [str(k) for k in list(record)[:30]]  # names that look like data are not shown
                        what += f" (the record has the fields {sorted(k for k in shown if not looks_like_data(k))})"
                    return Example(id_, record, None, tf), self._invalid(id_, what, "missing_field")
                if _holds_no_tokens(record.get(self.token_field)):  # {"input_ids": []}: nothing to train on
                    return Example(id_, record, None, tf), self._invalid(id_, f"field {self.token_field!r}", "empty")
                for f in self.token_fields:  # read by a stage (NearDedup): floats, strings, 2-D ... are refused
                    why = token_ids_problem(record.get(f))
                    if why is not None:
                        return Example(id_, record, None, tf), self._invalid(id_, f"field {f!r}", why)
                return Example(id_, record, None, tf), None
            value = record[tf]
        else:
            if self.needs_text:
                return Example(id_, record), self._invalid(
                    id_, f"record of type {type(record).__name__}", "no_text (expected a str or a mapping with a text field)")
            return Example(id_, record), None
        what = f"field {tf!r}" if tf is not None else "the text"
        if value is None:
            return Example(id_, record, None, tf), self._invalid(id_, what, "none")
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                return Example(id_, record, None, tf), self._invalid(id_, what, "not_utf8")
        if not isinstance(value, str):
            return Example(id_, record, None, tf), self._invalid(id_, what, f"not_string (got {type(value).__name__})")
        if len(value) > self.max_chars:
            return Example(id_, record, None, tf), self._invalid(
                id_, what, f"too_long ({len(value)} characters, max_chars={self.max_chars})")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return Example(id_, record, None, tf), self._invalid(id_, what, "not_utf8 (lone surrogates)")
        if not value or value.isspace():  # what `not value.strip()` says, without copying the text
            return Example(id_, record, None, tf), self._invalid(id_, what, "empty")
        if isinstance(record, (bytes, bytearray)):
            record = value
        for f in self.text_token_fields if isinstance(record, Mapping) else ():  # read instead of the text
            why = token_ids_problem(record.get(f))  # (None: no token ids, no problem)
            if why is not None:
                return Example(id_, record, value, tf), self._invalid(id_, f"field {f!r}", why)
        return Example(id_, record, value, tf), None

    # -- phase one --------------------------------------------------------------------------------
    def plan(self, records: Sequence[Any], ids: Sequence[Any]) -> Plan:
        exs: List[Example] = []
        pre: List[Optional[Tuple[int, Drop]]] = []
        flags: List[int] = []
        missing: Dict[str, bool] = {}
        fps = [self.fingerprint(rec) for rec in records] if self.fingerprints or self.protected else None
        marks = fps  # what protected records are named by
        if self.protected and self.fingerprint is not record_fingerprint:
            marks = [record_fingerprint(rec) for rec in records]
        old_texts: List[Optional[str]] = []
        protected, tokens, tf, make = self.protected, self.tokens, self.text_field, self.make_example
        late: List[int] = []
        if not protected and tokens is None:  # the loop below without its protected and token steps
            self._plain_rows(records, ids, exs, pre, flags, missing)
        for j, (rec, i) in enumerate(zip(records, ids) if protected or tokens is not None else ()):
            ex, drop = make(rec, i)
            mark = protected.get(marks[j]) if protected and marks is not None else None
            if mark is not None:  # passes untouched: never dropped (not even as invalid), counted under its mark
                drop = None
                ex.protected = mark
                ex.count(mark)
            elif drop is None and tokens is not None and tokens.check(ex):  # refused without a tokenizer, but
                late.append(j)  # after the first chunk: dropped below if a stage rewrites its text
            exs.append(ex)
            old_texts.append(ex.text)
            pre.append((-1, drop) if drop is not None else None)
            kind = type(rec)
            if kind is str or (kind is dict and tf is not None and tf in rec and drop is None):  # _text_flag's answers
                flags.append(PRESENT)
            else:
                flags.append(self._text_flag(rec, drop, missing))
        plan = Plan(exs, pre, text_flags=flags, missing_fields=missing,
                    scheme=FINGERPRINT_TAGS.get(self.fingerprint) if self.fingerprints else None,
                    field_probe=probe_fields(records, self.extra_fields) if self.extra_fields else None)
        n = len(exs)
        for si, (kind, obj) in enumerate(self.steps):
            if not protected and pre.count(None) == n:  # nothing dropped or protected (the usual chunk)
                alive = list(range(n))
            else:
                alive = [i for i, p in enumerate(pre) if p is None and exs[i].protected is None]
            if kind == "record":
                for i in alive:
                    r = obj.process(exs[i])
                    if isinstance(r, Drop):
                        pre[i] = (si, r)
                    else:
                        exs[i] = r
            elif kind == "index":
                plan.keys[si] = (alive, obj(exs[:] if len(alive) == n else [exs[i] for i in alive]))
        sync_tokens(self.tokens, old_texts, exs, pre, late)
        if tokens is not None:
            tokens.started = True
        if fps is not None:  # of the records as read: stages may have returned new examples
            for ex, fp in zip(exs, fps):
                ex.fingerprint = fp
        return plan

    def _plain_rows(self, records: Sequence[Any], ids: Sequence[Any], exs: List[Example],
                    pre: List[Optional[Tuple[int, Drop]]], flags: List[int], missing: Dict[str, bool]) -> None:
        """:meth:`plan`'s loop over the records of a chunk when no record is protected and no token field is
        checked: each record's example, validation drop and text flag, appended."""
        make, tf, text_flag = self.make_example, self.text_field, self._text_flag
        for rec, i in zip(records, ids):
            ex, drop = make(rec, i)
            exs.append(ex)
            if drop is None:
                pre.append(None)
                kind = type(rec)
                if kind is str or (kind is dict and tf is not None and tf in rec):  # _text_flag's answers
                    flags.append(PRESENT)
                else:
                    flags.append(text_flag(rec, None, missing))
            else:
                pre.append((-1, drop))
                flags.append(text_flag(rec, drop, missing))

    def _text_flag(self, record: Any, drop: Optional[Drop], missing: Dict[str, bool]) -> int:
        """Whether ``record`` has the text field (for :class:`~torchdataguard.core.textcheck.TextFieldCheck`)."""
        tf = self.text_field
        if isinstance(record, Mapping) and tf is not None and tf in record:
            if drop is not None and drop.reason == "invalid/not_string":  # a list, a number ...: the wrong field?
                merge_fields(missing, record)
                mark = type_mark(record[tf], held=True)
                if mark not in missing and len(missing) < 40:
                    missing[mark] = False
                return MISSING
            return PRESENT
        if isinstance(record, (str, bytes, bytearray)):
            return PRESENT
        if not isinstance(record, Mapping):
            if drop is not None and drop.reason == "invalid/no_text":  # a stage reads text; this holds none
                mark = type_mark(record)
                if mark not in missing and len(missing) < 30:
                    missing[mark] = False
                return MISSING
            return NOT_PROBED
        if drop is not None and drop.reason == "invalid/missing_field":
            merge_fields(missing, record)
            return MISSING
        return NOT_PROBED

    def rewrite(self, record: Any, id_: Any) -> Any:
        """Apply only the rewriting record stages to one record (map-style ``__getitem__``); a protected record
        comes back as it is."""
        if self.protected and record_fingerprint(record) in self.protected:
            return record
        ex, drop = self.make_example(record, id_)
        if drop is not None:
            return record
        late = self.tokens is not None and self.tokens.check(ex)
        old_text = ex.text
        for kind, obj in self.steps:
            if kind == "record" and getattr(obj, "rewrites", False):
                r = obj.process(ex)
                if isinstance(r, Drop):
                    # fail closed: never hand on a record that a rewriting stage (PII scrubbing) did not finish
                    raise GuardInputError(
                        f"record {id_!r}: stage {obj.name!r} dropped it when it was fetched ({r.reason}) although it "
                        f"was kept when the data was scanned; the stage is not deterministic (e.g. a failing NER "
                        f"backend). Fix the stage or re-wrap the data")
                ex = r
        if late and ex.text != old_text:  # kept when scanned, so its text was not rewritten then
            raise GuardInputError(f"record {id_!r}: a stage rewrote its text when it was fetched although it did not "
                                  f"when it was scanned, and it holds tokens no tokenizer can re-make")
        if self.tokens is not None and self.tokens.tokenizer is not None:
            r = self.tokens.sync(old_text, ex)
            if isinstance(r, Drop):  # kept when scanned, so its tokens were re-made then: not deterministic
                raise GuardInputError(f"record {id_!r}: its tokens could not be re-made from its rewritten text "
                                      f"when it was fetched ({r.reason}), although they were when it was scanned")
            ex = r
        return ex.record

    @property
    def has_rewriters(self) -> bool:
        return any(kind == "record" and getattr(obj, "rewrites", False) for kind, obj in self.steps)

