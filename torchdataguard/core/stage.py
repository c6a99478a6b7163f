"""The stage contract every torchdataguard stage implements.

There are three kinds of stage:

* :class:`RecordStage` judges or rewrites one example. It is pure and cheap to pickle, so it can run in
  DataLoader workers or a ``datasets`` map. Subclass :class:`Filter` (answer "keep?" and, if not, "why?")
  or :class:`Rewriter` (return a new example).
* :class:`IndexStage` keeps state across examples (the dedup indexes). Its work is split in two: a
  picklable :meth:`IndexStage.keyer` computes keys (hashes, signatures) anywhere, including workers;
  :meth:`IndexStage.decide` runs only in the main process, on the stage's device, query-then-insert.
* :class:`BatchStage` transforms a collated batch of tensors on the training device (augmentation).

The :class:`~torchdataguard.core.guard.Guard` owns the loop, the counters and where dropped items go.
Stages never count for themselves: they return :class:`Drop` objects, and add per-example counts and
scores to :attr:`Example.counts` / :attr:`Example.scores`, which the guard merges into its ledger.
"""
from __future__ import annotations

import abc
from collections.abc import Mapping  # isinstance against typing.Mapping costs about 1 us more per call
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

from ..errors import ConfigError
from ..registry import Registry

__all__ = [
    "BatchStage",
    "Drop",
    "Example",
    "Filter",
    "IndexStage",
    "Keyer",
    "RecordStage",
    "Rewriter",
    "STAGES",
    "Stage",
    "register_stage",
]

#: Registry of stage classes by their short name (``exact``, ``near``, ``quality``, ``pii`` ...).
STAGES: Registry[type] = Registry("stage")


def register_stage(name: str):
    """Class decorator: register a stage class under ``name`` (used by ``torchdataguard scan --stages``)."""

    def deco(cls):
        STAGES.register(name)(cls)
        cls.stage_name = name
        return cls

    return deco


@dataclass
class Example:
    """One example as it flows through the stages.

    Attributes:
        id: stable identity (dataset index, stream position, or the value of ``id_field``).
        record: the user's record, unchanged unless a :class:`Rewriter` replaced it.
        text: the text view of the record (``None`` for records without text, such as images).
        text_field: the field the text came from (``None`` when the record is itself a string).
        counts: per-example counters added by stages (``"pii/email": 2``); merged into the ledger.
        scores: per-example scores (``"quality/gopher_quality/mean_word_length": 4.7``).
        fingerprint: a hash of the record as it was read (0 = unknown), set by the planner; the ledger
            replays a remembered decision only to an example with the same id *and* fingerprint.
        protected: ``None``, or the counter (``"audit/canary"``) of a record the guard was told to pass through
            untouched (:meth:`~torchdataguard.Guard.protect`): no stage sees it, it is never dropped, rewritten
            or put into a dedup index, and the ledger counts it under that counter.
    """

    id: Any
    record: Any
    text: Optional[str] = None
    text_field: Optional[str] = None
    counts: Dict[str, int] = field(default_factory=dict)
    scores: Dict[str, float] = field(default_factory=dict)
    fingerprint: int = 0
    protected: Optional[str] = None

    def with_text(self, new_text: str) -> "Example":
        """Return a copy whose text (and the record's text field) is ``new_text``; ``self`` is not mutated."""
        rec = self.record
        if self.text_field is None:
            if isinstance(rec, str):
                rec = new_text
        elif isinstance(rec, Mapping):
            rec = dict(rec)
            rec[self.text_field] = new_text
        return Example(self.id, rec, new_text, self.text_field, dict(self.counts), dict(self.scores), self.fingerprint,
                       self.protected)

    def with_record(self, record: Any) -> "Example":
        """Return a copy with another record (the text view is kept in sync when possible)."""
        text = self.text
        if self.text_field is not None and isinstance(record, Mapping) and isinstance(record.get(self.text_field), str):
            text = record[self.text_field]
        elif self.text_field is None and isinstance(record, str):
            text = record
        return Example(self.id, record, text, self.text_field, dict(self.counts), dict(self.scores), self.fingerprint,
                       self.protected)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to the per-example counter ``key``."""
        self.counts[key] = self.counts.get(key, 0) + n


@dataclass(frozen=True)
class Drop:
    """A decision to drop an example.

    Attributes:
        reason: slash-separated, most general first: ``duplicate/exact``, ``quality/c4/lorem_ipsum``,
            ``pii/email``, ``invalid/not_string``.
        matched: for duplicates, the id of the earlier example this one duplicates.
        score: optional figure behind the decision (estimated Jaccard, a quality score ...).
        line: for a line of the input a reader could not read (``invalid/json``, ``invalid/not_utf8`` ...), its
            1-based number in the file, counting every line (blank ones too): the quarantine file's ``line``.
    """

    reason: str
    matched: Any = None
    score: Optional[float] = None
    line: Optional[int] = field(default=None, repr=False)  # repr as before the field was added


class Stage(abc.ABC):
    """Base class of all stages. Subclass one of :class:`RecordStage`, :class:`IndexStage`, :class:`BatchStage`."""

    #: short registry name, set by :func:`register_stage`.
    stage_name: ClassVar[str] = "stage"
    #: one of ``"record"``, ``"index"``, ``"batch"``.
    kind: ClassVar[str] = "record"
    #: True when the stage reads ``Example.text`` (the guard validates the text field first).
    needs_text: ClassVar[bool] = False
    #: True for a stage that removes personal data (:class:`~torchdataguard.PIIScrubber`): a record dropped
    #: at or before the first such stage was never scrubbed, so the guard's quarantine file gets its id and
    #: reason but not its content (unless ``quarantine_pii=True``).
    scrubs_personal_data: ClassVar[bool] = False
    #: fields of mapping records the stage reads besides the text field (``PIIScrubber(fields=...)``): a field that
    #: none of a source's first records holds is refused (:mod:`torchdataguard.core.fieldcheck`)
    extra_fields: Tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.stage_name

    def config(self) -> Dict[str, Any]:
        """JSON-able settings, written into reports."""
        return {}

    def decision_settings(self) -> Dict[str, Any]:
        """The settings that change what this stage decides or produces.

        A saved guard state records them, and loading it into a guard whose stage has other ones is refused
        (:class:`~torchdataguard.errors.StateError`). By default :meth:`config`; a stage leaves out settings
        its state restores (an augmentation seed, thresholds changed during the run) or that cannot change
        a decision (a cache size), and adds what :meth:`config` only summarises.

        Example:
            >>> import torchdataguard as tdg
            >>> tdg.ExactDedup(normalize=False).decision_settings()
            {'normalize': False}
        """
        return self.config()

    def report_entries(self) -> Dict[str, Any]:
        """Top-level entries this stage adds to the guard's report (``{"contamination": {...}}``); none by
        default. Keys must not clash with the report's own (``seen``, ``counts`` ...) or another stage's."""
        return {}

    def saved_settings(self, saved: Mapping[str, Any]) -> Dict[str, Any]:
        """The :meth:`decision_settings` a saved state was written with, as this version names them.

        A stage that gained a setting since states were first saved fills in, for a state without it, the value
        the older version acted on (so the state resumes in a stage built that way and is refused by others).
        By default ``saved`` as it is.

        Example:
            >>> import torchdataguard as tdg
            >>> tdg.ExactDedup().saved_settings({"normalize": True})
            {'normalize': True}
        """
        return dict(saved)

    def state_dict(self) -> Dict[str, Any]:
        """Everything needed to make the same decisions after a restart.

        Values are tensors (saved with safetensors) or JSON-able objects. Never pickled.
        """
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        if state:
            raise ConfigError(f"stage {self.name!r} is stateless but got a non-empty state with keys {sorted(state)}")

    def reset(self) -> None:
        """Forget all state (a fresh run)."""

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({cfg})"


class RecordStage(Stage):
    """A pure stage that judges or rewrites one example. Subclasses implement :meth:`process`."""

    kind: ClassVar[str] = "record"
    #: True when the stage changes examples (re-applied when a map-style example is fetched).
    rewrites: ClassVar[bool] = False
    #: True when the stage may change the *text* of an example: on records that already hold ``input_ids``
    #: the guard then refuses, or re-tokenises the rewritten text (``Guard(tokenizer=...)``, see
    #: :mod:`torchdataguard.core.tokens`), so that stale tokens never reach training.
    rewrites_text: ClassVar[bool] = False

    @abc.abstractmethod
    def process(self, ex: Example) -> Example | Drop:
        """Return the (possibly new) example to keep, or a :class:`Drop`. Never mutate ``ex.record``."""


class Filter(RecordStage):
    """A record stage that only answers "keep?" and, if not, "why?".

    Subclasses implement :meth:`judge`, returning ``None`` to keep or a short rule name to drop. The
    drop reason becomes ``"<stage name>/<rule>"``.

    Example:
        >>> class Short(Filter):
        ...     stage_name = "short"
        ...     needs_text = True
        ...     def judge(self, ex):
        ...         return "too_short" if len(ex.text) < 3 else None
        >>> Short().process(Example(0, "hi", "hi"))
        Drop(reason='short/too_short', matched=None, score=None)
    """

    def process(self, ex: Example) -> Example | Drop:
        rule = self.judge(ex)
        if rule is None:
            return ex
        if isinstance(rule, Drop):
            return rule
        return Drop(f"{self.name}/{rule}")

    @abc.abstractmethod
    def judge(self, ex: Example) -> Optional[str | Drop]:
        """Return ``None`` to keep ``ex``, else the rule that fired (or a full :class:`Drop`)."""


class Rewriter(RecordStage):
    """A record stage that returns a rewritten example (see :meth:`Example.with_text`).

    ``rewrites_text`` is True by default (fail closed: tokens made before the rewrite are never passed on);
    a rewriter that changes only other fields sets it to False.
    """

    rewrites: ClassVar[bool] = True
    rewrites_text: ClassVar[bool] = True

    def process(self, ex: Example) -> Example | Drop:
        return self.rewrite(ex)

    @abc.abstractmethod
    def rewrite(self, ex: Example) -> Example | Drop:
        """Return a new example (or a :class:`Drop`); do not mutate ``ex``."""


class Keyer(abc.ABC):
    """Computes an index stage's keys for a list of examples. Picklable and stateless (runs in workers)."""

    @abc.abstractmethod
    def __call__(self, exs: Sequence[Example]) -> Any:
        """Return keys for ``exs`` in order (any picklable object the stage's ``decide`` understands)."""


class IndexStage(Stage):
    """A stateful stage (dedup): keys anywhere, decisions in the main process on the stage's device.

    The guard calls ``decide(exs, keys)`` with examples in stream order; the stage must behave as if it
    saw them one at a time (query-then-insert, keep-first), duplicates inside one call included.
    """

    kind: ClassVar[str] = "index"

    @abc.abstractmethod
    def keyer(self) -> Keyer:
        """A picklable object that computes keys for a list of examples."""

    @abc.abstractmethod
    def decide(self, exs: Sequence[Example], keys: Any) -> List[Optional[Drop]]:
        """For each example, ``None`` (keep, and remember it) or a :class:`Drop`."""

    def to(self, device) -> "IndexStage":
        """Move the stage's state to ``device`` (returns self)."""
        return self

    def memory_bytes(self) -> int:
        """Bytes held by the index (tensors), for the report."""
        return 0


class BatchStage(Stage):
    """A stage that transforms a collated batch (a mapping of tensors) on the training device.

    Subclasses implement :meth:`forward`; they never mutate the input batch in place.
    """

    kind: ClassVar[str] = "batch"

    @abc.abstractmethod
    def forward(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Return a new batch (same device and dtypes as the input)."""

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        return self.forward(batch)

    def counters(self) -> Dict[str, int]:
        """Counts accumulated by this batch stage since the last call to :meth:`reset_counters`."""
        return {}

