"""``TrainingDynamics``: per-example training statistics from one training run, label issues, a data map,
and an optional next-epoch action on the flagged examples (drop through the ledger, or a smaller loss weight).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Set

import torch

from ..core.idtag import ID_KEY
from ..core.stage import Drop
from ..core.state import make_dir, read_state_file, remove_stale, write_state_files
from ..errors import ConfigError, StateError
from .measures import DETECTORS, data_map_measures, regions
from .store import StatStore

__all__ = ["ACTIONS", "DROP_REASON", "TASKS", "TrainingDynamics"]

ACTIONS = ("report", "drop", "downweight")
TASKS = ("auto", "classification", "causal_lm", "token")
#: the ledger reason of an example dropped by ``action="drop"``
DROP_REASON = "quality/label_issue"
_JSON = "dynamics.json"
_FORMAT = "torchdataguard.dynamics/1"


class TrainingDynamics:
    """Per-example training dynamics from one run: data map, label issues, and a next-epoch filter.

    Every forward pass in training adds, per example, the probability of its given label, whether the
    prediction was right, the margin (given-label logit minus the largest other) and the loss, keyed by the
    example's ledger id (the wrapped data carries it under ``"tdg_id"``), so shuffling, DataLoader workers,
    gradient accumulation and Poisson sampling do not matter. With the Trainer, pass it to
    ``tdg.GuardCallback(guard, dynamics=dyn)``; in a plain loop call :meth:`attach` once, pop the ids from each
    batch (:func:`torchdataguard.pop_example_ids`), and call :meth:`update` after each forward pass and
    :meth:`end_epoch` after each epoch.

    Args:
        action: ``"report"`` (default: flag only), ``"drop"`` (flagged examples leave training from epoch
            ``from_epoch`` on: the ledger records them as dropped, reason ``quality/label_issue``, a stream
            replays the drop, and their loss weight is 0), or ``"downweight"`` (their loss is multiplied by
            ``downweight``). Actions need classification logits ``[batch, classes]``.
        from_epoch: the first epoch (counted from 0) the action applies to; flags come from the epochs before.
        detector: ``"auto"`` (default: standardised margins over the epochs that separate most clearly, cut by
            Otsu's method), ``"aum"`` (mean margin below ``threshold``, default 0) or ``"confidence"`` (mean
            probability of the given label below ``threshold``, default 0.2). See :mod:`.measures`.
        threshold: the detector's threshold (``None``: its default; for ``"auto"``, Otsu's cut).
        downweight: the loss weight of flagged examples under ``action="downweight"`` (0 < w < 1).
        task: ``"auto"`` (2-D logits: classification; 3-D: causal LM, labels shifted by one), ``"classification"``,
            ``"causal_lm"`` or ``"token"`` (3-D logits, labels not shifted).
        allow_with_dp: these statistics come from the private data and are not covered by a DP guarantee; under
            DP-SGD the callback refuses them unless this is True (the report then says so).
        device: where the statistics live (default: the device of the first logits).
        id_key: the record/batch key that carries the ids.

    Example:
        >>> import torch, torchdataguard as tdg
        >>> dyn = tdg.TrainingDynamics(detector="aum")  # the default, auto, needs more than 3 examples to split
        >>> logits = torch.tensor([[3.0, 0.0], [0.0, 3.0], [3.0, 0.0]])
        >>> for epoch in range(2):
        ...     dyn.update([0, 1, 2], logits, torch.tensor([0, 1, 1]))   # example 2 looks mislabelled
        ...     dyn.end_epoch()
        >>> [(i["id"], i["given"], i["suggested"]) for i in dyn.label_issues()]
        [(2, 1, 0)]
        >>> dyn.data_map()[0]["region"]
        'easy'
    """

    def __init__(self, *, action: str = "report", from_epoch: int = 1, detector: str = "auto",
                 threshold: Optional[float] = None, downweight: float = 0.1, task: str = "auto",
                 allow_with_dp: bool = False, device: Optional[torch.device | str] = None,
                 id_key: str = ID_KEY) -> None:
        problems = []
        if action not in ACTIONS:
            problems.append(f"action={action!r}: expected one of {ACTIONS}")
        if detector not in DETECTORS:
            problems.append(f"detector={detector!r}: expected one of {DETECTORS.names()}")
        if task not in TASKS:
            problems.append(f"task={task!r}: expected one of {TASKS}")
        if isinstance(from_epoch, bool) or not isinstance(from_epoch, int) or from_epoch < 1:
            problems.append(f"from_epoch={from_epoch!r}: expected an int >= 1 (flags come from earlier epochs)")
        if not isinstance(downweight, (int, float)) or not 0.0 < float(downweight) < 1.0:
            problems.append(f"downweight={downweight!r}: expected a number strictly between 0 and 1")
        if threshold is not None and not isinstance(threshold, (int, float)):
            problems.append(f"threshold={threshold!r}: expected a number or None")
        if not isinstance(id_key, str) or not id_key:
            problems.append(f"id_key={id_key!r}: expected a non-empty string")
        if problems:
            raise ConfigError.collect(problems, "TrainingDynamics settings")
        self.action = action
        self.from_epoch = from_epoch
        self.detector = detector
        self.threshold = threshold
        self.downweight = float(downweight)
        self.task = task
        self.allow_with_dp = bool(allow_with_dp)
        self.id_key = id_key
        self.store = StatStore(device)
        #: ids the action applies to (fixed at the end of each epoch from ``from_epoch - 1`` on)
        self.flagged: Set[Any] = set()
        #: flagged ids the guard's ledger recorded as dropped (``action="drop"``)
        self.revoked = 0
        #: set by the callback when DP-SGD runs (the report says the statistics are not private)
        self.under_dp = False
        self.guard: Any = None
        #: what the detector decided last (e.g. the epochs it used and its cut)
        self.last_detection: Dict[str, Any] = {}

    # -- wiring ---------------------------------------------------------------------------------------
    def attach(self, guard: Any) -> "TrainingDynamics":
        """Make the data ``guard`` wraps carry each example's ledger id (under :attr:`id_key`), and let
        ``action="drop"`` record drops in its ledger. Returns ``self``."""
        guard.id_tag.key = self.id_key
        self.guard = guard
        return self

    def config(self) -> Dict[str, Any]:
        return {"action": self.action, "from_epoch": self.from_epoch, "detector": self.detector,
                "threshold": self.threshold, "downweight": self.downweight, "task": self.task,
                "allow_with_dp": self.allow_with_dp, "id_key": self.id_key}

    # -- recording ------------------------------------------------------------------------------------
    def _shift(self, logits: torch.Tensor) -> bool:
        if self.task == "classification" and logits.dim() != 2:
            raise ConfigError(f"task='classification' needs logits [batch, classes]; got {tuple(logits.shape)}")
        if self.task in ("causal_lm", "token") and logits.dim() != 3:
            raise ConfigError(f"task={self.task!r} needs logits [batch, positions, vocab]; got {tuple(logits.shape)}")
        return logits.dim() == 3 and self.task in ("auto", "causal_lm")

    def update(self, ids: Any, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one training forward pass: ``ids`` (the batch's ``"tdg_id"`` values, a tensor or a list),
        ``logits`` and ``labels`` of the same rows (labels below 0 are ignored)."""
        if ids is None:
            raise ConfigError(f"no example ids: the batch has no {self.id_key!r}. Wrap the training data with the "
                              f"guard and call dynamics.attach(guard) (GuardCallback(guard, dynamics=...) does) "
                              f"before training, then pop the ids from each batch with tdg.pop_example_ids")
        self.store.update(ids, logits, labels, shift=self._shift(logits))

    def end_epoch(self) -> None:
        """Close an epoch; from epoch ``from_epoch - 1`` on, refresh the flagged set the action applies to."""
        self.store.end_epoch()
        if self.action != "report" and self.store.epochs >= self.from_epoch:
            self._refresh_flags()

    @property
    def epochs(self) -> int:
        """Completed epochs."""
        return self.store.epochs

    def _refresh_flags(self) -> None:
        new = {i["id"] for i in self.label_issues()} - self.flagged
        self.flagged |= new
        if self.action == "drop" and self.guard is not None:
            issues = {i["id"]: i["score"] for i in self.label_issues()}
            with self.guard.lock:
                for id_ in sorted(new, key=str):
                    if self.guard.ledger.revoke_id(id_, Drop(DROP_REASON, score=issues.get(id_))):
                        self.revoked += 1

    # -- acting ---------------------------------------------------------------------------------------
    def loss_weights(self, ids: Any, device: Optional[torch.device] = None) -> Optional[torch.Tensor]:
        """Per-row loss weights for this batch under the action (``None``: all 1, nothing to change)."""
        if self.action == "report" or not self.flagged or ids is None:
            return None
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        hit = [i in self.flagged for i in ids]
        if not any(hit):
            return None
        low = 0.0 if self.action == "drop" else self.downweight
        return torch.tensor([low if h else 1.0 for h in hit], device=device)

    def weighted_loss(self, ids: Any, logits: torch.Tensor, labels: torch.Tensor) -> Optional[torch.Tensor]:
        """The batch's cross-entropy with the action's weights (a weighted mean over labelled rows), or
        ``None`` when no row of the batch is flagged. Classification logits only."""
        w = self.loss_weights(ids, logits.device)
        if w is None:
            return None
        if logits.dim() != 2:
            raise ConfigError(f"action={self.action!r} needs classification logits [batch, classes]; got "
                              f"{tuple(logits.shape)} (use action='report' for language models)")
        labels = labels.to(logits.device).long()
        valid = (labels >= 0).float()
        ce = torch.nn.functional.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")
        w = w * valid
        return (ce * w).sum() / w.sum().clamp(min=1e-12) if bool(w.sum() > 0) else (ce * 0.0).sum()

    # -- results --------------------------------------------------------------------------------------
    def _measures(self) -> Dict[str, torch.Tensor]:
        return data_map_measures(self.store.view())

    def label_issues(self, threshold: Optional[float] = None) -> List[Dict[str, Any]]:
        """Flagged examples, most suspicious first: ``{"id", "given", "suggested", "score"}`` (``given`` and
        ``suggested`` are ``None`` for token-level tasks)."""
        if not len(self.store):
            return []
        flag, score, self.last_detection = DETECTORS.get(self.detector).detect(
            self.store.view(), self.threshold if threshold is None else threshold)
        idx = flag.nonzero().flatten().tolist()
        given = self.store.given.tolist() if self.store.prob_sum is not None else None
        pref = self.store.prob_sum.argmax(1).tolist() if self.store.prob_sum is not None else None
        sc = score.tolist()
        out = [{"id": self.store.ids[i], "given": None if given is None else int(given[i]),
                "suggested": None if pref is None else int(pref[i]), "score": round(float(sc[i]), 4)} for i in idx]
        out.sort(key=lambda d: (-d["score"], str(d["id"])))
        return out

    def data_map(self) -> Dict[Any, Dict[str, Any]]:
        """Per id: ``confidence``, ``variability``, ``correctness``, ``aum``, ``loss``, ``epochs_seen`` and
        ``region`` (``easy`` / ``ambiguous`` / ``hard``)."""
        if not len(self.store):
            return {}
        m = self._measures()
        cols = {k: v.tolist() for k, v in m.items()}
        reg = regions(m)
        out = {}
        for row, id_ in enumerate(self.store.ids):
            d = {k: (round(float(v[row]), 4) if k != "epochs_seen" else int(v[row])) for k, v in cols.items()}
            d["region"] = reg[row]
            out[id_] = d
        return out

    def report(self, *, max_ids: int = 1000, max_points: int = 2000) -> Dict[str, Any]:
        """The report section: settings, counts by region, flagged ids (at most ``max_ids``, most suspicious
        first) and up to ``max_points`` data-map points ``[confidence, variability, flagged]`` for the plot."""
        issues = self.label_issues()
        out: Dict[str, Any] = {"config": self.config(), "epochs": self.epochs, "tracked": len(self.store),
                               "flagged": len(issues), "acted_on": len(self.flagged), "dropped_in_ledger": self.revoked,
                               "flagged_ids": [i["id"] for i in issues[:max_ids]],
                               "flagged_ids_truncated": max(0, len(issues) - max_ids),
                               "detection": dict(self.last_detection)}
        if self.under_dp:
            out["dp_note"] = ("these per-example statistics come from the private training data and are NOT "
                              "covered by the DP guarantee (allowed with allow_with_dp=True)")
        if len(self.store):
            m = self._measures()
            reg = regions(m)
            out["regions"] = {r: reg.count(r) for r in ("easy", "ambiguous", "hard")}
            flagged = set(i["id"] for i in issues)
            n = len(self.store)
            step = max(1, -(-n // max_points))
            conf, var = m["confidence"].tolist(), m["variability"].tolist()
            out["data_map"] = [[round(conf[r], 4), round(var[r], 4), int(self.store.ids[r] in flagged)]
                               for r in range(0, n, step) if conf[r] == conf[r]]
        return out

    def counters(self, prefix: str = "tdg") -> Dict[str, float]:
        """Numbers for the Trainer's logs: ``<prefix>/dynamics/tracked``, ``.../flagged``, ``.../acted_on``."""
        if not len(self.store):
            return {}
        return {f"{prefix}/dynamics/tracked": len(self.store), f"{prefix}/dynamics/flagged": len(self.label_issues()),
                f"{prefix}/dynamics/acted_on": len(self.flagged)}

    # -- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        st = self.store.state_dict()
        return {"format": _FORMAT, "config": self.config(), "store": st,
                "flagged": sorted(self.flagged, key=str), "revoked": self.revoked}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise StateError(f"not a training dynamics state (format {state.get('format') if isinstance(state, dict) else None!r}, "
                             f"expected {_FORMAT!r})")
        saved = state.get("config", {})
        for key in ("task", "id_key"):
            if saved.get(key) != getattr(self, key):
                raise StateError(f"training dynamics state was recorded with {key}={saved.get(key)!r}, this object has "
                                 f"{key}={getattr(self, key)!r}; use the settings of the run that saved it")
        self.store.load_state_dict(state["store"])
        self.flagged = set(state.get("flagged", []))
        self.revoked = int(state.get("revoked", 0))

    def save(self, directory: str | os.PathLike) -> None:
        """Write the state into ``directory`` (``dynamics.json`` + a safetensors file), atomically."""
        d = make_dir(directory)
        _, t_name, _ = write_state_files(d, self.state_dict(), "dynamics", json_name=_JSON)
        remove_stale(d, r"dynamics\.[0-9a-f]{16}\.safetensors", {t_name, _JSON}, tmp_tag="dynamics")

    def load(self, directory: str | os.PathLike) -> None:
        """Read what :meth:`save` wrote (verified: a damaged or foreign file raises :class:`StateError`)."""
        path = os.path.join(os.fspath(directory), _JSON)
        if not os.path.exists(path):
            raise StateError(f"no training dynamics state in {os.fspath(directory)!r}: {_JSON} is missing")
        self.load_state_dict(read_state_file(path))

    def __repr__(self) -> str:
        return f"TrainingDynamics(action={self.action!r}, detector={self.detector!r}, tracked={len(self.store)})"


