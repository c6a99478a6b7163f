"""Canaries: records shaped like the training data that the model can only fit by memorising them.

Three kinds, registered by name in :data:`CANARY_KINDS` (``kind="auto"`` asks each, in :data:`AUTO_ORDER`,
whether it fits a sample of the data):

* ``label``: for classifiers (records with a scalar ``label``/``labels``, or ``(input, label)`` pairs):
  real-looking inputs with random labels. Inputs come from a held-out ``pool`` when one is given, otherwise
  they are made like the data's: random tokens from the range the data uses, random words from the data's
  own words, or noise with the data's mean and spread for float tensors.
* ``tokens``: for language models trained on token records (``input_ids`` without a scalar label): a template
  of the model's own tokens (a fixed random context and prefix) followed by a random secret of
  ``secret_tokens`` tokens drawn from the ids the data uses.
* ``text``: for language models trained on text: ``template`` with a random secret of digit groups
  (``"my account number is 4839 2210 7731"``); digits are tokens of every tokenizer.

Every kind makes canaries and, for the language-model kinds, candidates: the same template with fresh
secrets, against which :func:`~torchdataguard.audit.stats.exposure` ranks each secret.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["AUTO_ORDER", "CANARY_KINDS", "CanaryKind", "LabelCanaries", "TextCanaries", "TokenCanaries",
           "detect_kind", "label_key"]

#: canary kinds by name
CANARY_KINDS: "Registry[type]" = Registry("canary kind")
#: the order in which ``kind="auto"`` asks the kinds whether they fit the data
AUTO_ORDER = ("label", "tokens", "text")
LABEL_KEYS = ("labels", "label")
_WORD = re.compile(r"[A-Za-z]{2,12}")


def label_key(record: Any) -> Optional[str]:
    """The key of a scalar class label in a mapping record (``labels`` or ``label``), else ``None``."""
    if not isinstance(record, Mapping):
        return None
    for k in LABEL_KEYS:
        v = record.get(k)
        if isinstance(v, int) and not isinstance(v, bool):
            return k
        if isinstance(v, torch.Tensor) and v.dim() == 0 and not v.is_floating_point():
            return k
    return None


def _is_pair(record: Any) -> bool:
    return (isinstance(record, (tuple, list)) and len(record) == 2 and isinstance(record[0], torch.Tensor)
            and (isinstance(record[1], int) or (isinstance(record[1], torch.Tensor) and record[1].dim() == 0)))


def _ids(record: Any) -> Optional[List[int]]:
    ids = record.get("input_ids") if isinstance(record, Mapping) else None
    if isinstance(ids, torch.Tensor) and ids.dim() == 1:
        return [int(x) for x in ids.tolist()]
    if isinstance(ids, (list, tuple)) and ids and all(isinstance(x, int) for x in ids):
        return list(ids)
    return None


def _like(template: Any, ids: List[int]) -> Any:
    """``ids`` in the container type of ``template`` (a tensor of its dtype, or a list)."""
    if isinstance(template, torch.Tensor):
        return torch.tensor(ids, dtype=template.dtype)
    return list(ids)


class CanaryKind:
    """A way of making canaries for one shape of data. Subclasses set ``name`` and implement the methods."""

    name = "kind"
    #: whether secrets can be ranked against candidates (exposure)
    has_secrets = False

    @classmethod
    def fits(cls, sample: Sequence[Any], text_field: str) -> bool:
        """Whether the records of ``sample`` have the shape this kind makes."""
        raise NotImplementedError

    def make(self, n: int, gen: torch.Generator) -> List[Any]:
        """``n`` new canary records (for language-model kinds, also the candidates: each has a fresh secret)."""
        raise NotImplementedError


def detect_kind(sample: Sequence[Any], text_field: str) -> str:
    """The first kind of :data:`AUTO_ORDER` that fits ``sample`` (``ConfigError`` naming the shape if none)."""
    if not sample:
        raise ConfigError("the dataset is empty: a privacy audit needs training data to put canaries into")
    for name in AUTO_ORDER:
        if CANARY_KINDS.get(name).fits(sample, text_field):
            return name
    first = sample[0]
    shape = sorted(map(str, first)) if isinstance(first, Mapping) else type(first).__name__
    raise ConfigError(f"PrivacyAudit(kind='auto') cannot tell how to make canaries for records like {shape}: "
                      f"expected text (str or a mapping with the text field {text_field!r}), token records "
                      f"('input_ids'), or classifier records (a scalar 'label'/'labels', or (input, label) pairs). "
                      f"Pass kind= one of {CANARY_KINDS.names()} or a score_fn with canaries of your own")


@CANARY_KINDS.register("text")
class TextCanaries(CanaryKind):
    """``template`` with a random secret of ``groups`` groups of four digits, as a str or ``{text_field: text}``."""

    name = "text"
    has_secrets = True

    def __init__(self, sample: Sequence[Any], *, text_field: str = "text",
                 template: str = "my account number is {secret}", groups: int = 3, **_: Any) -> None:
        if template.count("{secret}") != 1:
            raise ConfigError.bad("template", template, "text with exactly one '{secret}'",
                                  "e.g. 'my account number is {secret}'")
        self.mapping = isinstance(sample[0], Mapping)
        self.text_field = text_field
        self.template = template
        self.groups = groups
        #: the text before the secret (the part whose tokens are not scored)
        self.prefix = template.split("{secret}")[0].rstrip()

    @classmethod
    def fits(cls, sample: Sequence[Any], text_field: str) -> bool:
        return all(isinstance(r, str) or (isinstance(r, Mapping) and isinstance(r.get(text_field), str)
                                          and label_key(r) is None) for r in sample)

    def make(self, n: int, gen: torch.Generator) -> List[Any]:
        digits = torch.randint(0, 10, (n, 4 * self.groups), generator=gen).tolist()
        out = []
        for row in digits:
            secret = " ".join("".join(map(str, row[4 * g:4 * g + 4])) for g in range(self.groups))
            text = self.template.replace("{secret}", secret)
            out.append({self.text_field: text} if self.mapping else text)
        return out

    def text_of(self, record: Any) -> str:
        return record[self.text_field] if isinstance(record, Mapping) else record


@CANARY_KINDS.register("tokens")
class TokenCanaries(CanaryKind):
    """Token records: a fixed random context and prefix, then ``secret_tokens`` random tokens, all drawn from
    the token ids the data uses; as long as the data's records when they all have one length."""

    name = "tokens"
    has_secrets = True

    def __init__(self, sample: Sequence[Any], *, gen: torch.Generator, secret_tokens: int = 6, prefix_tokens: int = 4,
                 vocab_size: Optional[int] = None, **_: Any) -> None:
        all_ids = [i for r in sample for i in (_ids(r) or [])]
        self.low = min(all_ids) if vocab_size is None else 0
        self.high = (max(all_ids) + 1) if vocab_size is None else int(vocab_size)
        if self.high - self.low < 2:
            raise ConfigError(f"token canaries need at least 2 distinct token ids; the data uses ids "
                              f"{self.low}..{self.high - 1}. Pass vocab_size=")
        lengths = {len(_ids(r) or []) for r in sample}
        need = secret_tokens + prefix_tokens
        self.length = lengths.pop() if len(lengths) == 1 else need
        if self.length < need:
            raise ConfigError(f"the data's records hold {self.length} tokens; a token canary needs at least "
                              f"{need} (prefix_tokens={prefix_tokens} + secret_tokens={secret_tokens})")
        self.secret_tokens = secret_tokens
        #: the fixed part every canary starts with (context and prefix), of the data's own token ids
        self.head = torch.randint(self.low, self.high, (self.length - secret_tokens,), generator=gen).tolist()
        self.example = sample[0]

    @classmethod
    def fits(cls, sample: Sequence[Any], text_field: str) -> bool:
        return all(_ids(r) is not None and label_key(r) is None for r in sample)

    def make(self, n: int, gen: torch.Generator) -> List[Any]:
        secrets = torch.randint(self.low, self.high, (n, self.secret_tokens), generator=gen).tolist()
        out = []
        for s in secrets:
            ids = self.head + s
            rec: Dict[str, Any] = {"input_ids": _like(self.example["input_ids"], ids)}
            if "attention_mask" in self.example:
                rec["attention_mask"] = _like(self.example["attention_mask"], [1] * len(ids))
            if "labels" in self.example:
                rec["labels"] = _like(self.example["labels"], ids)
            out.append(rec)
        return out

    def secret_span(self) -> Tuple[int, int]:
        """Positions of the secret in every canary's ``input_ids``."""
        return self.length - self.secret_tokens, self.length


@CANARY_KINDS.register("label")
class LabelCanaries(CanaryKind):
    """Classifier records with random labels: held-out ``pool`` inputs, or inputs made like the data's."""

    name = "label"

    def __init__(self, sample: Sequence[Any], *, gen: torch.Generator, text_field: str = "text",
                 num_classes: Optional[int] = None, pool: Optional[Sequence[Any]] = None, **_: Any) -> None:
        self.pair = _is_pair(sample[0])
        self.key = None if self.pair else label_key(sample[0])
        labels = [int(r[1]) if self.pair else int(r[self.key]) for r in sample]
        self.num_classes = int(num_classes) if num_classes is not None else max(labels) + 1
        if self.num_classes < 2:
            raise ConfigError(f"random-label canaries need at least 2 classes; the data shows {self.num_classes}. "
                              f"Pass num_classes=")
        self.sample = list(sample)
        self.pool = list(pool) if pool is not None else None
        self.text_field = text_field
        if self.pair:
            xs = torch.stack([r[0].to(torch.float64) for r in sample])
            self.mean, self.std = float(xs.mean()), float(xs.std()) or 1.0
        all_ids = [i for r in sample for i in (_ids(r) or [])]
        self.id_range = (min(all_ids), max(all_ids) + 1) if all_ids else None
        words = [w for r in sample if isinstance(r, Mapping) and isinstance(r.get(text_field), str)
                 for w in _WORD.findall(r[text_field])]
        self.words = sorted(set(words))

    @classmethod
    def fits(cls, sample: Sequence[Any], text_field: str) -> bool:
        return all(_is_pair(r) for r in sample) or all(label_key(r) is not None for r in sample)

    def _input_like(self, template: Any, gen: torch.Generator) -> Any:
        if self.pair:
            x = template[0]
            noise = torch.randn(x.shape, generator=gen, dtype=torch.float64) * self.std + self.mean
            return noise.to(x.dtype) if x.is_floating_point() else torch.randint(
                int(x.min()), int(x.max()) + 1, x.shape, generator=gen, dtype=x.dtype)
        rec = dict(template)
        ids = _ids(template)
        if ids is not None and self.id_range is not None:
            rec["input_ids"] = _like(template["input_ids"],
                                     torch.randint(*self.id_range, (len(ids),), generator=gen).tolist())
        elif isinstance(template.get(self.text_field), str) and self.words:
            n = max(3, len(_WORD.findall(template[self.text_field])))
            picks = torch.randint(0, len(self.words), (n,), generator=gen).tolist()
            rec[self.text_field] = " ".join(self.words[i] for i in picks)
        else:
            raise ConfigError(f"cannot make a canary input like a record with fields {sorted(map(str, template))}: "
                              f"pass pool= (held-out records whose labels the audit replaces)")
        return rec

    def make(self, n: int, gen: torch.Generator) -> List[Any]:
        if self.pool is not None and len(self.pool) < n:
            raise ConfigError(f"pool holds {len(self.pool)} records but the audit needs {n} canaries; pass a "
                              f"larger pool or fewer num_canaries")
        labels = torch.randint(0, self.num_classes, (n,), generator=gen).tolist()
        picks = torch.randint(0, len(self.sample), (n,), generator=gen).tolist()
        out = []
        for i in range(n):
            if self.pool is not None:
                src = self.pool[i]
                x = src[0] if self.pair else dict(src)
            else:
                x = self._input_like(self.sample[picks[i]], gen)
            if self.pair:
                y0 = self.sample[0][1]
                out.append((x, torch.tensor(labels[i], dtype=y0.dtype) if isinstance(y0, torch.Tensor) else labels[i]))
            else:
                y0 = self.sample[0][self.key]
                x[self.key] = torch.tensor(labels[i], dtype=y0.dtype) if isinstance(y0, torch.Tensor) else labels[i]
                out.append(x)
        return out

    def label_of(self, record: Any) -> int:
        return int(record[1]) if self.pair else int(record[self.key])
