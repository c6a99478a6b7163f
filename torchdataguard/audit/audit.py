"""``PrivacyAudit``: canaries in, one training run, then exposure, AUC and the one-run lower bound on epsilon."""
from __future__ import annotations

import hashlib
import math
from typing import Any, Dict, List, Optional, Sequence

import torch

from ..errors import ConfigError, StateError
from .bound import one_run_bound
from .canaries import CANARY_KINDS, CanaryKind, detect_kind
from .insert import insert_canaries, sample_records
from .scoring import ScoreFn, check_losses, default_score_fn
from .stats import auc, exposures

__all__ = ["PrivacyAudit", "RESULT_KEYS"]

#: the keys of :meth:`PrivacyAudit.result` every run has (more follow: kind, delta, exposure_chance ...)
RESULT_KEYS = ("epsilon_lower_bound", "confidence", "guesses", "correct", "exposure_mean", "exposure_max", "auc",
               "num_canaries", "included")
#: default share of the training set that canaries may take when ``num_canaries`` is not given
DEFAULT_FRACTION = 0.01
#: at most this many canaries by default
DEFAULT_MAX = 1000


class PrivacyAudit:
    """Measure what a training run memorised: canaries, exposure, membership AUC, and an empirical lower bound
    on epsilon from one run (Steinke, Nasr and Jagielski 2023).

    ``wrap(dataset)`` makes ``num_canaries`` canaries shaped like the data (random secrets in a template for
    language models, random labels for classifiers, see :mod:`torchdataguard.audit.canaries`); a seeded fair
    coin per canary, kept by the audit, decides which go into the returned data. After training,
    ``run(model)`` scores every canary by its loss, guesses "in" for the lowest losses and "out" for the
    highest, and turns the number of right guesses into the largest epsilon that the training cannot have
    had at ``confidence`` (with delta the accountant's). A lower bound above the accountant's epsilon means the
    DP guarantee is broken. Without DP the bound shows how much a non-private run memorises.

    Canaries go through a guard like any record (``guard.wrap(audit.wrap(train))``): the guard passes them
    untouched (never deduplicated, filtered or scrubbed), and its ledger counts them under ``audit/canary``.
    Secrets never appear in results or reports: only counts and losses do.

    Args:
        num_canaries: how many canaries (half go in, by the coins). Default: 1% of the dataset, at most 1,000.
        kind: ``"auto"`` (from the data's shape), ``"text"``, ``"tokens"`` or ``"label"``.
        seed: seeds the canaries, the coins and where canaries go; the same seed gives the same audit.
        confidence: the confidence of the lower bound.
        delta: the delta of the (epsilon, delta) the bound tests; default the accountant's delta when
            :class:`~torchdataguard.GuardCallback` runs with ``privacy=``, else 0.
        tokenizer: scores text canaries (default under ``GuardCallback``: the Trainer's ``processing_class``).
        text_field: the text field of mapping records.
        template: text canaries' template, with one ``{secret}``.
        num_candidates: fresh secrets each secret's exposure is ranked against.
        num_classes: classes of random labels (default: from the data).
        pool: held-out records whose inputs become classifier canaries (labels replaced).
        vocab_size: token ids of token canaries are drawn below it (default: the range the data uses).
        batch_size: canaries scored per forward pass.

    Example:
        >>> import torch, torchdataguard as tdg
        >>> train = [(torch.randn(8), i % 3) for i in range(300)]
        >>> audit = tdg.PrivacyAudit(num_canaries=40, seed=0)
        >>> data = audit.wrap(train)
        >>> len(data) == 300 + audit.included, audit.kind
        (True, 'label')
        >>> model = torch.nn.Linear(8, 3)   # ... train it on data ...
        >>> audit.run(model)["num_canaries"], audit.result()["included"] == audit.included
        (40, True)
    """

    def __init__(self, num_canaries: Optional[int] = None, *, kind: str = "auto", seed: int = 0,
                 confidence: float = 0.95, delta: Optional[float] = None, tokenizer: Any = None,
                 text_field: str = "text", template: str = "my account number is {secret}", num_candidates: int = 100,
                 num_classes: Optional[int] = None, pool: Optional[Sequence[Any]] = None,
                 vocab_size: Optional[int] = None, batch_size: int = 32) -> None:
        problems = []
        if num_canaries is not None and (isinstance(num_canaries, bool) or not isinstance(num_canaries, int)
                                         or num_canaries < 2):
            problems.append(f"num_canaries={num_canaries!r}: expected an integer >= 2 (or None: 1% of the data)")
        if kind != "auto" and kind not in CANARY_KINDS:
            problems.append(f"kind={kind!r}: expected 'auto' or one of {CANARY_KINDS.names()}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            problems.append(f"seed={seed!r}: expected an integer")
        if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
            problems.append(f"confidence={confidence!r}: expected a number in (0, 1), e.g. 0.95")
        if delta is not None and (not isinstance(delta, (int, float)) or not 0 <= delta < 1):
            problems.append(f"delta={delta!r}: expected a number in [0, 1) or None")
        for name, val in (("num_candidates", num_candidates), ("batch_size", batch_size)):
            if isinstance(val, bool) or not isinstance(val, int) or val < 1:
                problems.append(f"{name}={val!r}: expected a positive integer")
        if problems:
            raise ConfigError.collect(problems, "PrivacyAudit settings")
        self.num_canaries = num_canaries
        self.kind_name = kind
        self.seed = seed
        self.confidence = float(confidence)
        self.delta = delta
        self.tokenizer = tokenizer
        self.text_field = text_field
        self.template = template
        self.num_candidates = num_candidates
        self.num_classes = num_classes
        self.pool = pool
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        self.maker: Optional[CanaryKind] = None
        self.canaries: List[Any] = []
        #: 1 where the canary went into the training data, 0 where it was left out (seeded fair coins)
        self.coins: List[int] = []
        self.data_size = 0
        self._result: Optional[Dict[str, Any]] = None

    # -- canaries ----------------------------------------------------------------------------------------
    def generator(self, purpose: str) -> torch.Generator:
        """A torch generator for ``purpose`` seeded from ``seed``: salted, so that the audit's random draws never
        replay the stream of a user's ``torch.manual_seed(seed)`` (data made with it would equal canaries)."""
        digest = hashlib.blake2b(f"torchdataguard.audit:{self.seed}:{purpose}".encode(), digest_size=8).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2 ** 63 - 1))

    @property
    def kind(self) -> Optional[str]:
        """The canary kind in use (known after :meth:`wrap`)."""
        return self.maker.name if self.maker is not None else None

    @property
    def included(self) -> int:
        """How many canaries went into the training data."""
        return sum(self.coins)

    def wrap(self, dataset: Any) -> Any:
        """``dataset`` with the included canaries put in at seeded positions: a list for a list or tuple, a
        map-style dataset for a torch ``Dataset``, a ``datasets.Dataset`` for one. Pass the result to
        ``guard.wrap`` (the guard then passes the canaries through untouched) or train on it directly.

        Wrapping again (another epoch's or a resumed run's data) puts in the same canaries.
        """
        gen = self.generator("canaries")
        if self.maker is None:
            sample = sample_records(dataset)
            name = detect_kind(sample, self.text_field) if self.kind_name == "auto" else self.kind_name
            n = self.num_canaries
            if n is None:
                n = min(DEFAULT_MAX, int(len(dataset) * DEFAULT_FRACTION))
                if n < 2:
                    raise ConfigError(f"1% of this dataset ({len(dataset)} records) is fewer than 2 canaries; pass "
                                      f"PrivacyAudit(num_canaries=...) explicitly (a bound needs tens to hundreds)")
            self.maker = CANARY_KINDS.get(name)(
                sample, gen=gen, text_field=self.text_field, template=self.template, num_classes=self.num_classes,
                pool=self.pool, vocab_size=self.vocab_size)
            self.canaries = self.maker.make(n, gen)
            self.coins = torch.randint(0, 2, (n,), generator=gen).tolist()
            self.data_size = len(dataset)
        gen = self.generator("positions")  # where canaries go depends only on the seed and the data's size
        inside = [c for c, coin in zip(self.canaries, self.coins) if coin]
        return insert_canaries(dataset, inside, gen)

    # -- the audit ---------------------------------------------------------------------------------------
    def run(self, model: Any, score_fn: Optional[ScoreFn] = None, *, delta: Optional[float] = None) -> Dict[str, Any]:
        """Score every canary with ``model`` after training and compute the audit (also kept for :meth:`result`).

        Args:
            model: the trained model.
            score_fn: ``score_fn(model, records) -> losses``, one float per record, lower meaning the model fits
                it better; default: the canary kind's loss (:mod:`torchdataguard.audit.scoring`).
            delta: the delta the bound tests, when the audit was built without one (``GuardCallback`` passes
                the accountant's); default 0.
        """
        if self.maker is None:
            raise StateError("PrivacyAudit.run() before wrap(): put the canaries into the training data with "
                             "audit.wrap(train), train on it, then run the audit")
        fn = score_fn if score_fn is not None else default_score_fn(self.maker, tokenizer=self.tokenizer,
                                                                    batch_size=self.batch_size)
        used_delta = self.delta if self.delta is not None else (float(delta) if delta is not None else 0.0)
        losses = check_losses(fn(model, self.canaries), len(self.canaries), "canaries")
        scores = [-x for x in losses]  # lower loss: more likely trained on
        bound = one_run_bound(scores, self.coins, delta=used_delta, confidence=self.confidence)
        res: Dict[str, Any] = {
            "epsilon_lower_bound": round(bound.epsilon_lower_bound, 4), "confidence": self.confidence,
            "guesses": bound.guesses, "correct": bound.correct, "exposure_mean": None, "exposure_max": None,
            "auc": _round(auc(scores, self.coins)), "num_canaries": len(self.canaries), "included": self.included,
            "kind": self.kind, "delta": used_delta, "guess_counts_tried": bound.tried,
            "canary_fraction": round(self.included / max(1, self.data_size + self.included), 5),
            "losses_in": [round(x, 5) for x, c in zip(losses, self.coins) if c],
            "losses_out": [round(x, 5) for x, c in zip(losses, self.coins) if not c],
        }
        if self.maker.has_secrets:
            gen = self.generator("candidates")
            candidates = self.maker.make(self.num_candidates, gen)
            cand = check_losses(fn(model, candidates), len(candidates), "exposure candidates")
            exp = exposures(losses, cand)
            inside = [e for e, c in zip(exp, self.coins) if c]
            outside = [e for e, c in zip(exp, self.coins) if not c]
            res.update(exposure_mean=_round(_mean(inside)), exposure_max=_round(max(inside, default=None)),
                       exposure_chance=_round(_mean(outside)), exposure_ceiling=_round(math.log2(len(cand) + 1)),
                       num_candidates=len(cand))
        self._result = res
        return dict(res)

    def result(self) -> Dict[str, Any]:
        """What the last :meth:`run` found: ``epsilon_lower_bound``, ``confidence``, ``guesses``, ``correct``,
        ``exposure_mean``, ``exposure_max`` (bits; ``None`` for classifier canaries), ``auc``, ``num_canaries``,
        ``included``, and ``kind``, ``delta``, ``exposure_chance`` (the mean exposure of the canaries left out:
        what chance gives), ``canary_fraction``, ``losses_in`` / ``losses_out`` (the canaries' losses by coin)."""
        if self._result is None:
            raise StateError("no audit result yet: call audit.run(model) after training (GuardCallback(audit=...) "
                             "does it when training ends)")
        return dict(self._result)

    def __repr__(self) -> str:
        return (f"PrivacyAudit(num_canaries={self.num_canaries!r}, kind={self.kind_name!r}, seed={self.seed}, "
                f"confidence={self.confidence})")


def _mean(xs: Sequence[float]) -> Optional[float]:
    return sum(xs) / len(xs) if xs else None


def _round(x: Optional[float], nd: int = 4) -> Optional[float]:
    return None if x is None else round(float(x), nd)

