"""The :class:`Guard`: an ordered list of stages that wraps data and accounts for every example."""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

from ..device import DeviceLike, resolve_device
from ..errors import ConfigError, StateError
from .alldups import end_of_source
from .decider import DEFAULT_CHUNK, STREAM_CHUNK, Decider, LocalDecider
from .fieldcheck import FieldChecks
from .guard_state import apply_guard_state, check_guard_state, guard_state_dict
from .hooks import hook
from .ids import FINGERPRINTS, IdHasher, id_record_hook
from .idtag import IdTag
from .jsonable import to_jsonable
from .ledger import Ledger, Outcome
from .plan import Plan, Planner
from .progress import progress_bar
from .quarantine import QuarantineSink
from .stage import BatchStage, IndexStage, RecordStage, Stage
from .state import JSON_FILE, load_state, save_state
from .tokens import TokenSync, text_rewriters

__all__ = ["Guard", "Outcome"]


class Guard:
    """An ordered pipeline of stages that wraps your data and accounts for every example.

    Args:
        stages: record stages (filters, rewriters), index stages (dedup), batch stages (augmentation), in order.
        text_field: the field holding the text of mapping records (a plain ``str`` record is its own text).
        id_field: a field holding a stable ``str`` or ``int`` id; by default the dataset index or stream position.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; where index stages
            keep their tables and where batch stages run.
        strict: raise :class:`~torchdataguard.errors.GuardInputError` on a malformed record instead of
            dropping it with an ``invalid/...`` reason.
        max_chars: longer texts are dropped as ``invalid/too_long``.
        quarantine: a path; dropped records are written there as JSON lines. When the guard has a PII stage,
            records dropped before it scrubbed them (or by it, reason ``pii/...``) are written without their
            content unless ``quarantine_pii=True``.
        chunk_size: examples per chunk (index stages decide a chunk at a time, on the device); decisions do
            not depend on it. ``None`` (automatic): a stream (``process``, ``filter``, lists, iterable datasets)
            is cut at 16,384 examples or 2M characters of text, whichever comes first; a wrapped stream starts
            at 64 and grows, and in DataLoader workers its chunks take about 50 ms each (``data/pacing.py``);
            map-style and Hugging Face datasets and the distributed guard take 1,024 at a time
            (``benchmarks/chunk_size.py``). A number: that many everywhere (streams still cut at 2M characters).
        progress: show progress bars for long work (main process only).
        tokenizer: for records that are already tokenised (hold ``input_ids`` next to the text): a callable
            ``text -> {"input_ids": ..., ...}`` (a Hugging Face tokenizer, or ``functools.partial(tok,
            truncation=True, max_length=128)`` with the settings you tokenised with) that re-tokenises every
            record whose text a stage rewrote (PII scrubbing, normalisation, text augmentation). Without it,
            such records are refused with a ``ConfigError``: the tokens would still hold what the stage removed.
            Better still, wrap the data before tokenising it (see :mod:`torchdataguard.core.tokens`).
        hash_ids: ``True`` replaces ids from ``id_field`` by a plain hash, a secret key (str or bytes, at least
            16 bytes) by a keyed hash, before the ledger, reports, the quarantine file or the saved state see
            them (:class:`~torchdataguard.core.ids.IdHasher`). Records handed to training are unchanged.

    Example:
        >>> import torchdataguard as tdg
        >>> guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False)
        >>> kept = guard.wrap(["a cat sat on the mat", "A cat sat on the mat", "dogs bark"])
        >>> kept
        ['a cat sat on the mat', 'dogs bark']
        >>> guard.report()["dropped_by_reason"]
        {'duplicate/exact': 1}
    """

    def __init__(self, stages: Sequence[Stage], *, text_field: Optional[str] = "text", id_field: Optional[str] = None,
                 device: DeviceLike = "auto", strict: bool = False, max_chars: int = 2_000_000,
                 quarantine: str | os.PathLike | None = None, quarantine_pii: bool = False, chunk_size: Optional[int] = None,
                 progress: bool = True, hash_ids: bool | str | bytes | IdHasher = False,
                 tokenizer: Optional[Callable[[str], Any]] = None) -> None:
        problems = []
        stages = list(stages) if stages is not None else []
        for i, st in enumerate(stages):
            if not isinstance(st, Stage):
                problems.append(f"stages[{i}] is {st!r} ({type(st).__name__}); expected a torchdataguard Stage "
                                f"such as tdg.ExactDedup()")
        if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1):
            problems.append(f"chunk_size={chunk_size!r}: expected a positive integer, e.g. 1024, or None (automatic)")
        if not isinstance(max_chars, int) or isinstance(max_chars, bool) or max_chars < 1:
            problems.append(f"max_chars={max_chars!r}: expected a positive integer")
        if tokenizer is not None and not callable(tokenizer):
            problems.append(f"tokenizer={type(tokenizer).__name__}: expected a callable text -> mapping with "
                            f"'input_ids', such as a Hugging Face tokenizer")
        names = [getattr(s, "name", None) for s in stages if isinstance(s, IndexStage)]
        if len(names) != len(set(names)):
            problems.append(f"index stages {names} repeat a name; each dedup stage may appear once")
        #: replaces ids from ``id_field`` by their hash (``hash_ids``), or ``None``
        self.id_hasher = IdHasher.from_option(hash_ids, id_field=id_field, problems=problems)
        if problems:
            raise ConfigError.collect(problems, "Guard settings")
        self.stages: List[Stage] = stages
        self.text_field = text_field
        self.id_field = id_field
        self.device = resolve_device(device)
        self.strict = bool(strict)
        self.max_chars = max_chars
        #: examples per chunk where chunks are counted in advance; streams cut at ``stream_chunk`` (or 2M chars)
        self.chunk_size = DEFAULT_CHUNK if chunk_size is None else chunk_size
        self.stream_chunk = STREAM_CHUNK if chunk_size is None else chunk_size
        self.chunk_auto = chunk_size is None  # wrapped streams pace their chunks (data/pacing.py)
        self.progress = bool(progress)
        #: re-tokenises rewritten text of records that hold ``input_ids`` (``None``: such records are refused)
        self.tokenizer = tokenizer
        self.quarantine_path = os.fspath(quarantine) if quarantine is not None else None
        sink = (QuarantineSink(self.quarantine_path, include_pii=quarantine_pii,
                               record_hook=id_record_hook(id_field, self.id_hasher)) if self.quarantine_path else None)
        self.ledger = Ledger(quarantine=sink)
        #: held while a chunk is decided, a report made or the state read or changed (also by the decision service)
        self.lock = threading.RLock()
        #: source name -> how many times data under that name was wrapped (saved with the state)
        self.sources: Dict[str, int] = {}
        #: source -> the number of DataLoader workers its positional stream ids were numbered across
        self.splits: Dict[str, int] = {}
        #: sources already warned about records repeated across DataLoader workers (core/workercopies.py)
        self.copies_warned: set = set()
        #: where chunks are decided (:mod:`torchdataguard.core.decider`); a DistributedGuard sets a sharded one
        self.decider: Decider = LocalDecider()
        #: the worker decision service (data/service.py), started by the first wrapped stream, stopped by :meth:`close`
        self.service: Any = None
        #: adds each served example's ledger id to its record while its key is set (training dynamics)
        self.id_tag = IdTag()
        #: position of the first stage that scrubs personal data (``scrubs_personal_data``), or ``None``: records
        #: dropped at or before it are written to the quarantine file without their content
        self.scrub_step: Optional[int] = next(
            (i for i, st in enumerate(self.stages) if getattr(st, "scrubs_personal_data", False)), None)
        #: record fingerprint -> counter of records every stage passes untouched (:meth:`protect`)
        self.protected: Dict[int, str] = {}
        self._wraps = 0
        self._text_checks: Dict[str, FieldChecks] = {}
        for st in self.stages:
            if isinstance(st, IndexStage):
                st.to(self.device)

    # -- structure -------------------------------------------------------------------------------------
    @property
    def record_stages(self) -> List[RecordStage]:
        return [s for s in self.stages if isinstance(s, RecordStage)]

    @property
    def index_stages(self) -> List[IndexStage]:
        return [s for s in self.stages if isinstance(s, IndexStage)]

    @property
    def batch_stages(self) -> List[BatchStage]:
        return [s for s in self.stages if isinstance(s, BatchStage)]

    def stage(self, name: str) -> Stage:
        """The first stage called ``name`` (``"exact"``, ``"near"`` ...)."""
        for s in (s for s in self.stages if s.name == name):
            return s
        raise ConfigError(f"this guard has no stage {name!r}; it has {[s.name for s in self.stages]}")

    def planner(self) -> Planner:
        """The picklable phase-one half of the pipeline (record stages and keyers)."""
        steps: List[Tuple[str, Any]] = []
        for st in self.stages:
            if isinstance(st, RecordStage):
                steps.append(("record", st))
            elif isinstance(st, IndexStage):
                steps.append(("index", st.keyer()))
            else:
                steps.append(("batch", None))
        needs_text = any(getattr(s, "needs_text", False) for s in self.stages if not isinstance(s, BatchStage))
        rewriters = text_rewriters(self.stages)
        tokens = (TokenSync(self.tokenizer, text_field=self.text_field, stages=rewriters, strict=self.strict)
                  if rewriters else None)
        return Planner(steps, text_field=self.text_field, id_field=self.id_field, strict=self.strict,
                       max_chars=self.max_chars, needs_text=needs_text, fingerprints=self.ledger.remember,
                       id_hasher=self.id_hasher, protected=self.protected, tokens=tokens,
                       fingerprint=FINGERPRINTS[self.ledger.memo.scheme])

    def protect(self, marks: Mapping[int, str]) -> None:
        """Pass the records with these fingerprints (:func:`~torchdataguard.core.ids.record_fingerprint`) through
        every stage untouched, counting each under its mark in the ledger (``{fingerprint: "audit/canary"}``).

        A protected record is never dropped (not even as invalid), rewritten, scrubbed or put into a dedup index,
        so a later copy of it is not a duplicate of it. Data that carries a ``tdg_protected`` mapping (what
        :meth:`PrivacyAudit.wrap <torchdataguard.PrivacyAudit.wrap>` returns) is protected by :meth:`wrap`.

        Example:
            >>> import torchdataguard as tdg
            >>> from torchdataguard.core.ids import record_fingerprint
            >>> guard = tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False)
            >>> guard.protect({record_fingerprint("x"): "audit/canary"})
            >>> guard.wrap(["x", "x", "y", "y"]), guard.report()["counts"]
            (['x', 'x', 'y'], {'audit/canary': 2})
        """
        problems = [f"{k!r}: {v!r}" for k, v in marks.items()
                    if isinstance(k, bool) or not isinstance(k, int) or not isinstance(v, str) or not v]
        if problems:
            raise ConfigError(f"protect() takes {{record fingerprint (int): counter name (str)}}; got {problems[:3]}")
        with self.lock:
            self.protected.update(marks)

    # -- deciding --------------------------------------------------------------------------------------
    def decide(self, plan: Plan, source: str = "", *, split: Optional[int] = None) -> List[Outcome]:
        """Decide a planned chunk with the guard's decider and account for every example (``split``: how many
        DataLoader workers numbered the chunk's positional stream ids). Main process only; collective under
        a :class:`~torchdataguard.DistributedGuard`."""
        if plan.scheme is not None and self.ledger.remember and plan.scheme != self.ledger.memo.scheme:
            # workers pickled before a state was loaded (a DataLoader with persistent_workers=True iterated
            # before guard.load()) fingerprint with another hash: their replays would not be found
            raise StateError(
                f"this chunk's records were fingerprinted with {plan.scheme!r} but the guard's remembered "
                f"decisions use {self.ledger.memo.scheme!r}: the DataLoader's workers started before the guard's "
                f"state was loaded. Load the state before the first iteration, or start a new iterator (with "
                f"persistent_workers=True, a new DataLoader)")
        return self.decider.decide(self, plan, source, split=split)

    def check_text_field(self, plan: Optional[Plan], source: str = "", *, end: bool = False) -> None:
        """Raise ``ConfigError`` if no record of ``source`` so far has the text field or a field a stage reads
        (core/fieldcheck.py; ``end``: it ended, and core/alldups.py warns if all its new records were duplicates)."""
        with self.lock:
            check = self._text_checks.get(source) or FieldChecks.for_stages(self.text_field, self.stages, source=source)
            self._text_checks.setdefault(source, check).check(plan, end=end)
            if end:  # every new record of the source dropped as a duplicate of earlier data: warned about
                end_of_source(self, source)

    def new_source(self, source: Optional[str]) -> str:
        """The source name of the next wrapped data: ``source``, else ``""`` for the first and ``data1``,
        ``data2`` ... for later ones (of this process, not of a loaded state: a resumed run that wraps its
        training data first gets the same plain ids as the run that saved the state)."""
        if source is None:
            source = "" if self._wraps == 0 else f"data{self._wraps}"
        self._wraps += 1
        self.sources[source] = self.sources.get(source, 0) + 1
        return source

    def progress_bar(self, total: Optional[int], desc: str) -> Any:
        """A progress bar counting examples when ``progress`` is on (main process only), else ``None``."""
        return progress_bar(total, desc) if self.progress else None

    # -- streaming ---------------------------------------------------------------------------------------
    def process(self, records: Iterable[Any], *, ids: Optional[Iterable[Any]] = None, source: str = "",
                total: Optional[int] = None, desc: str = "guard") -> Iterator[Outcome]:
        """Stream ``records`` through every stage, chunk by chunk, yielding ``(example, drop, replayed)``;
        ``drop`` is ``None`` for kept examples. Ids default to the position in the stream."""
        return self.decider.process(self, records, ids=ids, source=source, total=total, desc=desc)

    def filter(self, records: Iterable[Any], *, source: str = "") -> List[Any]:
        """The kept records of ``records`` (rewritten by rewriting stages), as a list.

        Example:
            >>> import torchdataguard as tdg
            >>> tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False).filter(["a", "a", "b"])
            ['a', 'b']
        """
        return [ex.record for ex, drop, _ in self.process(records, source=source) if drop is None]

    # -- wrapping ----------------------------------------------------------------------------------------
    def wrap(self, data: Any, *, source: Optional[str] = None, num_workers: int = 0) -> Any:
        """Wrap ``data`` so that it yields only kept (and rewritten) examples; same kind out as in.

        * ``torch.utils.data.Dataset`` (map-style): scanned once now (with a progress bar; ``num_workers``
          parallelises the record stages), then a map-style dataset of the kept examples with the filtered
          ``len``. Examples are fetched from the original dataset, unchanged unless a stage rewrites them.
        * ``torch.utils.data.IterableDataset``: filtered as it streams; works in DataLoader workers (the
          workers compute keys, the main process decides, so duplicates across workers are found).
        * ``torch.utils.data.DataLoader``: the same loader settings around the wrapped dataset.
        * ``datasets.Dataset`` / ``datasets.IterableDataset``: the same kind, filtered (``select``) or
          streaming (``map``).
        * ``list`` / ``tuple``: a list of the kept records.

        ``source`` names the data in ids (``"test:12"``); the first wrapped dataset keeps plain ids, later
        ones get ``data1``, ``data2`` ... so that duplicates across them (train/test leakage) are found.
        Records named by a ``tdg_protected`` attribute of ``data`` (audit canaries) pass untouched (:meth:`protect`).
        """
        for holder in (data, getattr(data, "dataset", None)):  # a DataLoader's dataset may carry them
            marks = getattr(holder, "tdg_protected", None)
            if isinstance(marks, Mapping) and marks:
                self.protect(marks)
                break
        return hook("wrap")(self, data, source=source, num_workers=num_workers)

    def collator(self, collate_fn: Optional[Callable] = None) -> Callable:
        """A collate function that collates with ``collate_fn`` and then applies the batch stages."""
        return hook("collator")(self, collate_fn)

    def apply_batch(self, batch: Dict[str, Any]) -> Dict[str, Any]:
        """Apply the batch stages (augmentation) to a collated batch, on the batch's device."""
        for st in self.batch_stages:
            batch = st(batch)
        return batch

    # -- reports -----------------------------------------------------------------------------------------
    def report(self) -> Dict[str, Any]:
        """Counts by reason, per-stage settings and memory, score summaries and duplicate matches."""
        with self.lock:
            summary = self.ledger.summary()
            stages = []
            for st in self.stages:
                entry: Dict[str, Any] = {"name": st.name, "kind": st.kind, "class": type(st).__name__,
                                         "config": to_jsonable(st.config())}
                if isinstance(st, IndexStage):
                    nbytes = st.memory_bytes()
                    entry["index_bytes"] = nbytes
                    counter = getattr(st, "indexed_count", None)
                    stored = counter() if callable(counter) else getattr(getattr(st, "index", None), "n", None)
                    if stored:
                        entry["indexed_examples"] = stored
                        entry["index_bytes_per_example"] = round(nbytes / stored, 1)
                if isinstance(st, BatchStage):
                    entry["counters"] = st.counters()
                stages.append(entry)
            for st in self.batch_stages:
                for k, v in st.counters().items():
                    summary["counts"][k] = summary["counts"].get(k, 0) + v
            summary["stages"] = stages
            summary["score_values"] = {k: [round(x, 5) for x in v] for k, v in self.ledger.score_values().items()}
            summary["matches"] = [
                {"id": m[0], "matched": m[1], "reason": m[2], "score": m[3]} for m in self.ledger.matches]
            summary["matches_truncated"] = self.ledger.matches_truncated
            for st in self.stages:
                for key, value in st.report_entries().items():
                    if key in summary:
                        raise ConfigError(f"stage {st.name!r} adds the report entry {key!r}, which the report "
                                          f"already has; rename it")
                    summary[key] = to_jsonable(value)
            summary["settings"] = {"text_field": self.text_field, "id_field": self.id_field,
                                   "device": str(self.device), "strict": self.strict, "max_chars": self.max_chars,
                                   "chunk_size": self.chunk_size, "stream_chunk": self.stream_chunk}
            if self.tokenizer is not None:
                summary["settings"]["tokenizer"] = type(getattr(self.tokenizer, "func", self.tokenizer)).__name__
            return summary

    def clean_eval_ids(self, name: str, *, include_unchecked: bool = False) -> List[Any]:
        """Ids of the items of evaluation set ``name`` that no training document seen so far overlaps (the
        ``decontaminate`` stage's :meth:`~torchdataguard.Decontaminate.clean_eval_ids`): score on these."""
        with self.lock:
            return self.stage("decontaminate").clean_eval_ids(name, include_unchecked=include_unchecked)

    def save_report(self, directory: str | os.PathLike, *, extra: Optional[Dict[str, Any]] = None) -> str:
        """Write ``report.json`` and ``report.html`` into ``directory``; returns the JSON path."""
        return hook("save_report")({**self.report(), **(extra or {})}, directory)["json"]

    # -- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """Settings, stage states, the ledger (counters and decisions) and the sources; tensors + JSON only."""
        with self.lock:
            return guard_state_dict(self)

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Restore :meth:`state_dict`. Refused with a :class:`StateError` listing every problem, before
        anything changes, when the state is malformed or inconsistent or the guard differs in stages or in
        a setting that changes decisions (see :mod:`torchdataguard.core.guard_state`)."""
        with self.lock:
            check_guard_state(self, state)
            apply_guard_state(self, state)

    def save(self, directory: str | os.PathLike) -> None:
        """Save :meth:`state_dict` into ``directory`` atomically: ``guard_state.json`` (commit record) names
        ``guard_state.<sha256 prefix>.safetensors`` and holds its SHA-256 (no pickle)."""
        save_state(directory, self.state_dict())

    def load(self, directory: str | os.PathLike) -> None:
        """Load what :meth:`save` wrote, verified; any problem is a :class:`StateError` naming the file."""
        state = load_state(directory)
        try:
            self.load_state_dict(state)
        except StateError as exc:
            raise StateError(f"{os.path.join(os.fspath(directory), JSON_FILE)}: {exc}") from None

    def reset(self) -> None:
        """Forget every decision and counter (a fresh run with the same settings)."""
        with self.lock:
            for st in self.stages:
                st.reset()
            sink = self.ledger.quarantine
            if sink is not None:
                sink.restart()
            self.ledger = Ledger(quarantine=sink)
            self.sources = {}
            self._text_checks = {}
            self.splits = {}
            self.copies_warned = set()
            self.decider.reset()

    def close(self) -> None:
        """Flush and close the quarantine file and stop the worker decision service."""
        if self.ledger.quarantine is not None:
            self.ledger.quarantine.close()
        if self.service is not None:
            self.service.close()
            self.service = None

    def __getstate__(self):
        raise TypeError("a Guard holds the dedup index and lives in the main process; pass guard.planner() "
                        "to other processes instead, or wrap your data with guard.wrap(...)")

    def __repr__(self) -> str:
        inner = ", ".join(repr(s) for s in self.stages)
        return f"Guard([{inner}], device={str(self.device)!r})"
