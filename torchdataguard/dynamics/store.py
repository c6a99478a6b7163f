"""Per-example, per-epoch training statistics, kept as tensors on the training device and keyed by ledger id.

For each example and epoch the store holds the mean over the epoch's forward passes of: the probability of
the given label, whether the prediction was correct, the margin (given-label logit minus the largest other
logit) and the loss. An example met several times in one epoch (augmentation copies, Poisson sampling)
contributes the mean of its passes; one not met in an epoch has ``nan`` there. For classification the store
also sums the predicted class probabilities, so the class the model prefers can be suggested.

Example:
    >>> import torch
    >>> s = StatStore()
    >>> s.update(["a", "b"], torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
    2
    >>> s.end_epoch()
    >>> s.epochs, [round(v, 3) for v in s.view()[:, 0, MARGIN].tolist()]
    (1, [2.0, -2.0])
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from ..errors import ConfigError, StateError

__all__ = ["CORRECT", "LOSS", "MARGIN", "PROB", "StatStore", "example_stats"]

PROB, CORRECT, MARGIN, LOSS = 0, 1, 2, 3
_FIELDS = 4


def _as_key(id_: Any) -> Any:
    if isinstance(id_, torch.Tensor):
        id_ = id_.item()
    if isinstance(id_, bool) or not isinstance(id_, (int, str)):
        raise ConfigError(f"example ids must be int or str (the ledger ids the wrapped data carries), got "
                          f"{type(id_).__name__}")
    return id_


def example_stats(logits: torch.Tensor, labels: torch.Tensor, *, shift: bool = False) -> Dict[str, torch.Tensor]:
    """Per-row statistics of one forward pass: ``prob``, ``correct``, ``margin``, ``loss``, ``valid`` (rows
    with at least one labelled position) and, for 2-D logits, ``probs`` (the softmax).

    ``logits`` ``[B, C]`` with ``labels`` ``[B]`` (classification), or ``[B, T, V]`` with ``[B, T]`` (token
    level: the mean over labelled positions; ``shift`` for causal LMs, whose position t predicts label t+1).
    Labels below 0 (``-100``) are ignored.
    """
    logits = logits.detach().float()
    labels = labels.detach().long().to(logits.device)
    if logits.dim() == 3:
        if labels.dim() != 2 or labels.shape[0] != logits.shape[0]:
            raise ConfigError(f"token-level logits {tuple(logits.shape)} need labels of shape [batch, positions]; "
                              f"got {tuple(labels.shape)}")
        if shift:
            logits, labels = logits[:, :-1], labels[:, 1:]
        if logits.shape[1] != labels.shape[1]:
            raise ConfigError(f"logits have {logits.shape[1]} positions, labels {labels.shape[1]}")
        valid = labels >= 0
        safe = labels.clamp(min=0)
        logp = torch.log_softmax(logits, dim=-1)
        lp = logp.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        given = logits.gather(-1, safe.unsqueeze(-1)).squeeze(-1)
        other = logits.scatter(-1, safe.unsqueeze(-1), float("-inf")).amax(-1)
        correct = (logits.argmax(-1) == safe).float()
        n = valid.sum(1).clamp(min=1).float()
        w = valid.float()
        return {"prob": (lp.exp() * w).sum(1) / n, "correct": (correct * w).sum(1) / n,
                "margin": ((given - other) * w).sum(1) / n, "loss": (-lp * w).sum(1) / n, "valid": valid.any(1)}
    if logits.dim() != 2 or labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ConfigError(f"classification needs logits [batch, classes] and labels [batch]; got "
                          f"{tuple(logits.shape)} and {tuple(labels.shape)}")
    if logits.shape[1] < 2:
        raise ConfigError("training dynamics need at least two classes (a single logit is a regression or a "
                          "binary score; give two-class logits)")
    valid = labels >= 0
    safe = labels.clamp(min=0)
    if bool((safe >= logits.shape[1]).any()):
        raise ConfigError(f"a label is >= the number of classes {logits.shape[1]}")
    logp = torch.log_softmax(logits, dim=-1)
    lp = logp.gather(1, safe[:, None]).squeeze(1)
    given = logits.gather(1, safe[:, None]).squeeze(1)
    other = logits.scatter(1, safe[:, None], float("-inf")).amax(1)
    return {"prob": lp.exp(), "correct": (logits.argmax(1) == safe).float(), "margin": given - other,
            "loss": -lp, "valid": valid, "probs": logp.exp()}


class StatStore:
    """Rows keyed by example id; ``history[row, epoch, field]`` (fields :data:`PROB`, :data:`CORRECT`,
    :data:`MARGIN`, :data:`LOSS`) holds the epoch means, ``nan`` where the example was not met."""

    def __init__(self, device: Optional[torch.device | str] = None) -> None:
        self.device = torch.device(device) if device is not None else None
        self.rows: Dict[Any, int] = {}
        self.ids: List[Any] = []
        self.epochs = 0
        self._acc = torch.zeros(0, _FIELDS + 1, dtype=torch.float64)  # sums of the current epoch + count
        self.history = torch.zeros(0, 0, _FIELDS)
        self.given = torch.zeros(0, dtype=torch.int64)
        self.prob_sum: Optional[torch.Tensor] = None  # [rows, classes], classification only
        self.passes = torch.zeros(0, dtype=torch.int64)
        self._lut = torch.zeros(0, dtype=torch.int64)  # small int id -> row (-1: none), on the CPU

    def __len__(self) -> int:
        return len(self.ids)

    def _place(self, device: torch.device) -> None:
        if self.device is None:
            self.device = device
        if self._acc.device != self.device:
            self._acc, self.history = self._acc.to(self.device), self.history.to(self.device)
            self.given, self.passes = self.given.to(self.device), self.passes.to(self.device)
            if self.prob_sum is not None:
                self.prob_sum = self.prob_sum.to(self.device)

    def _grow(self, n: int, classes: Optional[int]) -> None:
        cap = self._acc.shape[0]
        if n > cap:
            new = max(n, cap * 2, 1024)
            d = self.device

            def pad(t: torch.Tensor, fill: float) -> torch.Tensor:
                out = torch.full((new,) + tuple(t.shape[1:]), fill, dtype=t.dtype, device=d)
                out[:cap] = t
                return out

            self._acc, self.history = pad(self._acc, 0.0), pad(self.history, float("nan"))
            self.given, self.passes = pad(self.given, -1), pad(self.passes, 0)
            if self.prob_sum is not None:
                self.prob_sum = pad(self.prob_sum, 0.0)
        if classes is not None:
            if self.prob_sum is None:
                self.prob_sum = torch.zeros(self._acc.shape[0], classes, device=self.device)
            elif self.prob_sum.shape[1] != classes:
                raise ConfigError(f"logits changed from {self.prob_sum.shape[1]} to {classes} classes between "
                                  f"updates; one TrainingDynamics tracks one classification head")

    def rows_for_tensor(self, ids: torch.Tensor) -> Optional[torch.Tensor]:
        """Row numbers of integer ids given as a tensor, through a lookup table (``None``: ids too large or
        negative; use :meth:`rows_for`)."""
        ids = ids.reshape(-1).to("cpu", torch.int64)
        if not ids.numel():
            return torch.zeros(0, dtype=torch.int64, device=self.device)
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= (1 << 24):
            return None
        if self._lut.numel() <= hi:
            lut = torch.full((max(hi + 1, 2 * self._lut.numel()),), -1, dtype=torch.int64)
            lut[: self._lut.numel()] = self._lut
            self._lut = lut
        rows = self._lut[ids]
        if bool((rows < 0).any()):
            for k in ids[rows < 0].tolist():  # new ids, in order of first appearance
                if self._lut[k] < 0:
                    r = self.rows.get(k)
                    if r is None:
                        r = self.rows[k] = len(self.ids)
                        self.ids.append(k)
                    self._lut[k] = r
            rows = self._lut[ids]
        return rows.to(self.device)

    def rows_for(self, ids: Sequence[Any]) -> torch.Tensor:
        """Row numbers of ``ids`` (new ids get new rows)."""
        out = []
        for i in ids:
            k = _as_key(i)
            r = self.rows.get(k)
            if r is None:
                r = self.rows[k] = len(self.ids)
                self.ids.append(k)
            out.append(r)
        return torch.tensor(out, dtype=torch.int64, device=self.device)

    def update(self, ids: Sequence[Any], logits: torch.Tensor, labels: torch.Tensor, *, shift: bool = False) -> int:
        """Add one forward pass; returns the number of rows with a label (ignored rows are skipped)."""
        tensor_ids = ids if isinstance(ids, torch.Tensor) and not ids.is_floating_point() and ids.dtype != torch.bool else None
        if tensor_ids is None:
            if isinstance(ids, torch.Tensor):
                ids = ids.reshape(-1).tolist()
            ids = list(ids)
        if len(ids) != logits.shape[0]:
            raise ConfigError(f"{len(ids)} ids for a batch of {logits.shape[0]} rows: the ids must be the batch's "
                              f"own (pop them from the batch the model got)")
        self._place(logits.device)
        st = example_stats(logits.to(self.device), labels.to(self.device), shift=shift)
        valid = st["valid"]
        if not bool(valid.any()):
            return 0
        sel = valid.nonzero().flatten()
        rows = self.rows_for_tensor(tensor_ids.reshape(-1)[sel.cpu()]) if tensor_ids is not None else None
        if rows is None:
            listed = ids.reshape(-1).tolist() if isinstance(ids, torch.Tensor) else ids
            rows = self.rows_for([listed[i] for i in sel.tolist()])
        probs = st.get("probs")
        self._grow(len(self.ids), None if probs is None else probs.shape[1])
        vals = torch.stack([st["prob"], st["correct"], st["margin"], st["loss"], torch.ones_like(st["prob"])], 1)
        self._acc.index_add_(0, rows, vals[sel].double())
        self.passes.index_add_(0, rows, torch.ones_like(rows))
        if probs is not None and self.prob_sum is not None:
            self.prob_sum.index_add_(0, rows, probs[sel])
            self.given[rows] = labels.to(self.device).long()[sel]
        return int(sel.numel())

    def end_epoch(self) -> None:
        """Close the epoch: its means become a column of :attr:`history`."""
        n = self._acc.shape[0]
        count = self._acc[:, _FIELDS:]
        mean = torch.where(count > 0, self._acc[:, :_FIELDS] / count.clamp(min=1), torch.full_like(count, float("nan")))
        col = mean.float().reshape(n, 1, _FIELDS)
        self.history = torch.cat([self.history.reshape(n, -1, _FIELDS), col], 1) if self.epochs else col
        self._acc.zero_()
        self.epochs += 1

    def current_has_data(self) -> bool:
        return bool((self._acc[:, _FIELDS] > 0).any()) if self._acc.numel() else False

    def view(self) -> torch.Tensor:
        """``[examples, epochs, fields]``: the closed epochs, plus the open one when it has data."""
        n = len(self.ids)
        hist = self.history[:n] if self.epochs else torch.zeros(n, 0, _FIELDS, device=self._acc.device)
        if self.current_has_data():
            count = self._acc[:n, _FIELDS:]
            cur = torch.where(count > 0, self._acc[:n, :_FIELDS] / count.clamp(min=1),
                              torch.full_like(count, float("nan"))).float()
            hist = torch.cat([hist, cur.reshape(n, 1, _FIELDS)], 1)
        return hist

    # -- state ---------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """``{"tensors": {...}, "meta": {...}}``: tensors for safetensors, JSON-able metadata."""
        n = len(self.ids)
        tensors = {"acc": self._acc[:n].cpu().contiguous(), "given": self.given[:n].cpu().contiguous(),
                   "passes": self.passes[:n].cpu().contiguous()}
        if self.epochs:
            tensors["history"] = self.history[:n].cpu().contiguous()
        if self.prob_sum is not None:
            tensors["prob_sum"] = self.prob_sum[:n].cpu().contiguous()
        return {"tensors": tensors, "meta": {"ids": list(self.ids), "epochs": self.epochs}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        meta, tensors = state["meta"], state["tensors"]
        ids = list(meta["ids"])
        n, epochs = len(ids), int(meta["epochs"])
        acc = tensors["acc"]
        if tuple(acc.shape) != (n, _FIELDS + 1):
            raise StateError(f"training dynamics state: {n} ids but accumulators of shape {tuple(acc.shape)}")
        if epochs and tuple(tensors["history"].shape) != (n, epochs, _FIELDS):
            raise StateError(f"training dynamics state: history of shape {tuple(tensors['history'].shape)} for "
                             f"{n} ids and {epochs} epochs")
        if len(set(ids)) != n:
            raise StateError("training dynamics state: repeated ids")
        d = self.device or torch.device("cpu")
        self.device = d
        self.ids, self.rows, self.epochs = ids, {k: i for i, k in enumerate(ids)}, epochs
        self._lut = torch.zeros(0, dtype=torch.int64)
        small = [k for k in ids if isinstance(k, int) and 0 <= k < (1 << 24)]
        if small:
            self._lut = torch.full((max(small) + 1,), -1, dtype=torch.int64)
            self._lut[torch.tensor(small)] = torch.tensor([self.rows[k] for k in small])
        self._acc = acc.to(d, torch.float64).clone()
        self.history = tensors["history"].to(d).clone() if epochs else torch.zeros(n, 0, _FIELDS, device=d)
        self.given = tensors["given"].to(d).clone()
        self.passes = tensors["passes"].to(d).clone()
        self.prob_sum = tensors["prob_sum"].to(d).clone() if "prob_sum" in tensors else None
