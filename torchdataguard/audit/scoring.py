"""Per-canary losses: the default ``score_fn`` of each canary kind (lower loss: the model fits the canary better).

A ``score_fn(model, records) -> sequence of floats`` returns one loss per record. The defaults run the model in
evaluation mode without gradients, in batches, on the device of its parameters, and put back its training mode.

* ``label``: the cross-entropy of the model's logits against the canary's (random) label.
* ``tokens`` / ``text``: the mean negative log-likelihood of the secret's tokens given what comes before them
  (the log-perplexity of the secret, as in "The Secret Sharer"); text is tokenized with the audit's tokenizer.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .canaries import LabelCanaries, TextCanaries, TokenCanaries

__all__ = ["ScoreFn", "check_losses", "default_score_fn", "logits_of", "text_secret_spans"]

ScoreFn = Callable[[Any, Sequence[Any]], Sequence[float]]


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model's output: a tensor, an object with ``.logits``, or a mapping with ``"logits"``."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise ConfigError(f"the model returned a {type(output).__name__} without logits; pass score_fn= to score canaries")


def _device(model: Any) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _takes_kwargs(model: Any, name: str) -> bool:
    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    n = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (n - len(r)) for r in rows], dtype=torch.long)


def _secret_nll(model: Any, ids: List[List[int]], spans: List[Tuple[int, int]], device: torch.device) -> List[float]:
    """Mean NLL of ``ids[i][a:b]`` given the tokens before them, for a causal language model."""
    x = _pad(ids, 0).to(device)
    mask = _pad([[1] * len(r) for r in ids], 0).to(device)
    out = model(input_ids=x, attention_mask=mask) if _takes_kwargs(model, "input_ids") else model(x)
    logp = F.log_softmax(logits_of(out).float(), dim=-1)
    losses = []
    for i, (a, b) in enumerate(spans):
        a = max(a, 1)  # the first token has nothing before it to be predicted from
        pos = torch.arange(a, b, device=device)
        losses.append(float(-logp[i, pos - 1, x[i, pos]].mean()))
    return losses


def _token_losses(kind: TokenCanaries, model: Any, records: Sequence[Any], device: torch.device) -> List[float]:
    a, b = kind.secret_span()
    ids = [[int(t) for t in (r["input_ids"].tolist() if isinstance(r["input_ids"], torch.Tensor) else r["input_ids"])]
           for r in records]
    return _secret_nll(model, ids, [(a, b)] * len(ids), device)


def text_secret_spans(kind: TextCanaries, records: Sequence[Any], tokenizer: Any
                      ) -> Tuple[List[List[int]], List[Tuple[int, int]]]:
    """The token ids of text canaries and, for each, the span ``(a, b)`` of its secret: the tokens after those
    it shares with the template's prefix, without the special tokens the tokenizer appends (a BERT-style
    ``[SEP]``, an end-of-text token), which are the same for every secret and would dilute its score.

    Example:
        >>> kind = TextCanaries(["x"], template="pin {secret}")
        >>> tok = lambda text: {"input_ids": [101] + [ord(c) for c in text] + [102]}
        >>> tok.all_special_ids = [101, 102]
        >>> ids, spans = text_secret_spans(kind, ["pin 12"], tok)
        >>> [chr(i) for i in ids[0][spans[0][0]:spans[0][1]]]
        [' ', '1', '2']
    """
    if tokenizer is None:
        raise ConfigError("text canaries are scored with the model's tokenizer: pass PrivacyAudit(tokenizer=...) "
                          "(GuardCallback passes the Trainer's processing_class), or score_fn=")
    special = set(getattr(tokenizer, "all_special_ids", None) or ()) - {getattr(tokenizer, "unk_token_id", None)}
    head = list(tokenizer(kind.prefix)["input_ids"])
    while head and head[-1] in special:  # the prefix's own closing token is not part of the text that follows
        head.pop()
    ids, spans = [], []
    for r in records:
        full = [int(t) for t in tokenizer(kind.text_of(r))["input_ids"]]
        common = 0
        while common < min(len(head), len(full)) and head[common] == full[common]:
            common += 1
        end = len(full)
        while end > common + 1 and full[end - 1] in special:
            end -= 1
        ids.append(full)
        spans.append((common, end))
    return ids, spans


def _text_losses(kind: TextCanaries, model: Any, records: Sequence[Any], device: torch.device,
                 tokenizer: Any) -> List[float]:
    ids, spans = text_secret_spans(kind, records, tokenizer)
    return _secret_nll(model, ids, spans, device)


def _label_losses(kind: LabelCanaries, model: Any, records: Sequence[Any], device: torch.device,
                  tokenizer: Any) -> List[float]:
    y = torch.tensor([kind.label_of(r) for r in records], dtype=torch.long, device=device)
    if kind.pair:
        out = model(torch.stack([r[0] for r in records]).to(device))
    elif all(isinstance(r.get(kind.text_field), str) for r in records) and "input_ids" not in records[0]:
        if tokenizer is None:
            raise ConfigError("text classifier canaries are scored with the model's tokenizer: pass "
                              "PrivacyAudit(tokenizer=...) or score_fn=")
        enc = tokenizer([r[kind.text_field] for r in records], padding=True, truncation=True, return_tensors="pt")
        out = model(**{k: v.to(device) for k, v in enc.items()})
    else:
        feats: Dict[str, torch.Tensor] = {}
        for k, v in records[0].items():
            if k == kind.key or not isinstance(v, (torch.Tensor, list)):
                continue
            rows = [r[k].tolist() if isinstance(r[k], torch.Tensor) else r[k] for r in records]
            feats[k] = _pad(rows, 0).to(device)
        out = model(**feats)
    return F.cross_entropy(logits_of(out).float(), y, reduction="none").tolist()


def default_score_fn(kind: Any, *, tokenizer: Any = None, batch_size: int = 32) -> ScoreFn:
    """The default ``score_fn`` for canaries of ``kind`` (see the module docstring)."""

    def score(model: Any, records: Sequence[Any]) -> List[float]:
        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"run(model=...) got a {type(model).__name__}; expected a torch.nn.Module, or pass "
                              f"score_fn= to score canaries with something else")
        device = _device(model)
        was_training = model.training
        model.eval()
        out: List[float] = []
        try:
            with torch.no_grad():
                for i in range(0, len(records), batch_size):
                    chunk = records[i:i + batch_size]
                    if isinstance(kind, TokenCanaries):
                        out.extend(_token_losses(kind, model, chunk, device))
                    elif isinstance(kind, TextCanaries):
                        out.extend(_text_losses(kind, model, chunk, device, tokenizer))
                    else:
                        out.extend(_label_losses(kind, model, chunk, device, tokenizer))
        finally:
            model.train(was_training)
        return out

    return score


def check_losses(losses: Any, n: int, what: str) -> List[float]:
    """``losses`` as a list of ``n`` finite floats, or a ``ConfigError`` that says what ``score_fn`` returned."""
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().cpu().reshape(-1).tolist()
    try:
        vals = [float(x) for x in losses]
    except (TypeError, ValueError):
        raise ConfigError(f"score_fn returned {type(losses).__name__} for the {what}; expected one float per "
                          f"record (its loss)") from None
    if len(vals) != n:
        raise ConfigError(f"score_fn returned {len(vals)} losses for {n} {what}; expected one per record")
    bad = [i for i, v in enumerate(vals) if v != v or v in (float("inf"), float("-inf"))]
    if bad:
        raise ConfigError(f"score_fn returned {len(bad)} non-finite losses for the {what} (first at position "
                          f"{bad[0]}); a NaN or infinite loss cannot be ranked")
    return vals

