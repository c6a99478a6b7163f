"""Privacy accounting for DP-SGD: the (noise, sampling rate, steps) history, PRV and RDP side by side.

The history is the whole truth of a DP-SGD run: every optimizer step released one Poisson-subsampled
Gaussian mechanism with a noise multiplier ``sigma`` and a sampling rate ``q``. :class:`PrivacyLedger`
keeps that history as JSON (runs of identical steps are merged), so that it can be written into every
checkpoint and a resumed run continues its epsilon instead of restarting from zero.

Two accountants read the same history (:mod:`~torchdataguard.dp.epsilon`): PRV (Opacus's default) and RDP with
the classic conversion.

Example:
    >>> ledger = PrivacyLedger(delta=1e-5, accountant="rdp")
    >>> ledger.step(noise_multiplier=1.1, sample_rate=256 / 60000, n=14062)
    >>> round(ledger.epsilon_rdp(), 2)   # TF-Privacy tutorial: N=60000, batch 256, sigma 1.1, 60 epochs
    3.01
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..errors import ConfigError, GuardError, StateError
from .epsilon import Accountant, History, check_history, epsilon_prv, epsilon_rdp

__all__ = ["LEDGER_FILE", "PrivacyBudgetExhausted", "PrivacyLedger"]

#: file name of the ledger inside a checkpoint directory.
LEDGER_FILE = "tdg_privacy_ledger.json"
LEDGER_FORMAT = "torchdataguard.privacy_ledger/2"
#: the format before the checksum was added (still loaded; it carries no checksum to verify)
_LEGACY_FORMATS = ("torchdataguard.privacy_ledger/1",)


class PrivacyBudgetExhausted(GuardError, RuntimeError):
    """Another optimizer step would spend more than the target epsilon."""


class PrivacyLedger:
    """The DP-SGD history ``[(noise_multiplier, sample_rate, steps), ...]`` with PRV and RDP epsilons.

    Args:
        delta: the delta of the guarantee.
        accountant: which accountant states the guarantee and enforces the budget (``"prv"`` or ``"rdp"``);
            both epsilons are always reported.
        unit: what one privacy unit is (``"example"``, ``"user"`` ...), written into the report.
        target_epsilon: the budget; :meth:`can_step` answers ``False`` once another step would exceed it.

    Example:
        >>> led = PrivacyLedger(delta=1e-5, accountant="rdp", target_epsilon=1.0)
        >>> led.step(noise_multiplier=1.3, sample_rate=0.004, n=100)
        >>> led.steps, led.history
        (100, [[1.3, 0.004, 100]])
        >>> led.epsilon() < 1.0 and led.can_step(1.3, 0.004)
        True
        >>> PrivacyLedger.from_json(led.to_json()).history == led.history
        True
    """

    def __init__(self, *, delta: float, accountant: Accountant = "prv", unit: str = "example",
                 target_epsilon: Optional[float] = None) -> None:
        if accountant not in ("prv", "rdp"):
            raise ConfigError.bad("accountant", accountant, "'prv' or 'rdp'")
        if not (isinstance(delta, (int, float)) and 0 < delta < 1):
            raise ConfigError.bad("delta", delta, "a float in (0, 1)", "Use delta well below 1/N, e.g. 1e-5.")
        self.delta = float(delta)
        self.accountant = accountant
        self.unit = unit
        self.target_epsilon = None if target_epsilon is None else float(target_epsilon)
        self._history: History = []
        self.points: List[Dict[str, Any]] = []
        self._limit_cache: Dict[Any, int] = {}
        #: the planned total number of steps (bounds the budget search); set by the DP engine.
        self.horizon: Optional[int] = None

    # -- history ---------------------------------------------------------------------------------------------
    @property
    def history(self) -> List[List[Any]]:
        """The history as JSON-able ``[[noise, rate, steps], ...]``."""
        return [[s, q, n] for s, q, n in self._history]

    @property
    def steps(self) -> int:
        """Optimizer steps accounted so far."""
        return sum(n for _, _, n in self._history)

    def step(self, *, noise_multiplier: float, sample_rate: float, n: int = 1) -> None:
        """Account ``n`` steps with this noise multiplier and sampling rate (merged with the last run)."""
        s, q = float(noise_multiplier), float(sample_rate)
        if not (0 < q <= 1) or s < 0 or n < 0:
            raise ConfigError(f"cannot account a step with noise_multiplier={s}, sample_rate={q}, n={n}")
        if self._history and self._history[-1][0] == s and self._history[-1][1] == q:
            self._history[-1] = (s, q, self._history[-1][2] + int(n))
        else:
            self._history.append((s, q, int(n)))

    # -- epsilons --------------------------------------------------------------------------------------------
    def epsilon_rdp(self, history: Optional[Sequence[Sequence[Any]]] = None) -> float:
        """Epsilon so far by RDP (classic conversion)."""
        return epsilon_rdp(self._history if history is None else history, self.delta)

    def epsilon_prv(self, history: Optional[Sequence[Sequence[Any]]] = None) -> float:
        """Epsilon so far by PRV (Opacus, upper bound)."""
        return epsilon_prv(self._history if history is None else history, self.delta)

    def epsilon(self, history: Optional[Sequence[Sequence[Any]]] = None) -> float:
        """Epsilon of the guarantee's accountant (:attr:`accountant`)."""
        return self.epsilon_prv(history) if self.accountant == "prv" else self.epsilon_rdp(history)

    def record_point(self, step: Optional[int] = None) -> Dict[str, Any]:
        """Compute both epsilons now, remember them for the report's history, and return the point."""
        pt = {"step": int(self.steps if step is None else step), "epsilon_prv": _r(self.epsilon_prv()),
              "epsilon_rdp": _r(self.epsilon_rdp())}
        if self.points and self.points[-1]["step"] == pt["step"]:
            self.points[-1] = pt
        else:
            self.points.append(pt)
        return pt

    # -- budget ----------------------------------------------------------------------------------------------
    def max_steps(self, noise_multiplier: float, sample_rate: float, *, horizon: Optional[int] = None
                  ) -> Optional[int]:
        """The largest total step count whose epsilon stays within the target, continuing with (noise, rate).

        ``None`` when there is no target. The search looks no further than ``horizon`` total steps (default:
        :attr:`horizon`, the planned length of training, or 1000 steps ahead), so its cost stays that of
        evaluating the accountant on the planned run; a result equal to the horizon means "at least".
        Epsilon grows with the number of steps, so bisection finds the limit exactly.
        """
        if self.target_epsilon is None:
            return None
        s, q = float(noise_multiplier), float(sample_rate)
        prefix = list(self._history)
        while prefix and prefix[-1][0] == s and prefix[-1][1] == q:
            prefix.pop()
        done = sum(n for _, _, n in prefix)
        hz = int(horizon if horizon is not None else (self.horizon or self.steps + 1024))
        hz = max(hz, self.steps)
        key = (tuple(prefix), s, q, hz)
        if key in self._limit_cache:
            return self._limit_cache[key]

        def within(total: int) -> bool:
            h = prefix + ([(s, q, total - done)] if total > done else [])
            return self.epsilon(h) <= self.target_epsilon

        if not within(self.steps):
            limit = self.steps  # already at or over the budget: no further step
        elif within(hz):
            limit = hz
        else:
            lo, hi = self.steps, hz  # within(lo), not within(hi)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if within(mid):
                    lo = mid
                else:
                    hi = mid
            limit = lo
        self._limit_cache[key] = limit
        return limit

    def allows(self, noise_multiplier: float, sample_rate: float, total_steps: int) -> bool:
        """Whether a run of ``total_steps`` steps (continuing with noise, rate) stays within the target."""
        if self.target_epsilon is None:
            return True
        hz = max(int(self.horizon or 1024), 1)
        while hz < total_steps:  # grow geometrically so that the cached limit is reused step after step
            hz *= 2
        return total_steps <= self.max_steps(noise_multiplier, sample_rate, horizon=hz)

    def can_step(self, noise_multiplier: float, sample_rate: float) -> bool:
        """Whether one more step with (noise, rate) keeps epsilon within the target (always true without one)."""
        return self.allows(noise_multiplier, sample_rate, self.steps + 1)

    # -- state -----------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        """JSON-able state: format, settings, history, the epsilon points recorded so far and a checksum of all
        of it (SHA-256 of the canonical JSON), verified by :meth:`load_state_dict`."""
        state = {"format": LEDGER_FORMAT, "delta": self.delta, "accountant": self.accountant, "unit": self.unit,
                 "target_epsilon": self.target_epsilon, "history": self.history, "steps": self.steps,
                 "points": [dict(p) for p in self.points]}
        state["checksum"] = _checksum(state)
        return state

    def load_state_dict(self, state: Mapping[str, Any], *, expect_steps: Optional[int] = None,
                        expect_noise: Optional[float] = None, expect_rate: Optional[float] = None) -> None:
        """Restore :meth:`state_dict`; refuses a ledger made for another delta, accountant or unit, or one whose
        checksum does not match its content (edited or damaged).

        ``expect_steps``: the optimizer steps the resumed run has taken; a ledger that accounted a different
        number is refused (it belongs to another checkpoint). ``expect_noise`` / ``expect_rate``: the noise
        multiplier and sampling rate of the run that loads it; a ledger with a step of other settings is refused.
        """
        fmt = state.get("format") if isinstance(state, Mapping) else type(state).__name__
        if not isinstance(state, Mapping) or fmt not in (LEDGER_FORMAT,) + _LEGACY_FORMATS:
            raise StateError(f"not a torchdataguard privacy ledger (format={fmt!r}, expected {LEDGER_FORMAT!r})")
        if fmt == LEDGER_FORMAT and state.get("checksum") != _checksum(state):
            raise StateError("the privacy ledger's checksum does not match its content: it was edited or damaged "
                             "after it was saved, so the steps it accounts cannot be trusted. Resume from an intact "
                             "checkpoint, or start a fresh run")
        problems = []
        if not math.isclose(float(state.get("delta", -1)), self.delta, rel_tol=1e-9):
            problems.append(f"delta: saved {state.get('delta')!r}, configured {self.delta!r}")
        if state.get("accountant") != self.accountant:
            problems.append(f"accountant: saved {state.get('accountant')!r}, configured {self.accountant!r}")
        if state.get("unit") != self.unit:
            problems.append(f"privacy unit: saved {state.get('unit')!r}, configured {self.unit!r}")
        hist = check_history(state.get("history", []))
        steps = sum(n for _, _, n in hist)
        if int(state.get("steps", steps)) != steps:
            problems.append(f"the ledger says {state.get('steps')} steps but its history sums to {steps}")
        if expect_steps is not None and steps != int(expect_steps):
            problems.append(f"the ledger accounts {steps} optimizer steps but the resumed run is at step "
                            f"{expect_steps}")
        for i, (s, q, n) in enumerate(hist):
            if expect_noise is not None and not math.isclose(s, float(expect_noise), rel_tol=1e-9):
                problems.append(f"history entry {i} ({n} steps): noise multiplier {s!r}, but this run's is "
                                f"{float(expect_noise)!r}")
            if expect_rate is not None and not math.isclose(q, float(expect_rate), rel_tol=1e-9):
                problems.append(f"history entry {i} ({n} steps): sampling rate {q!r}, but this run's is "
                                f"{float(expect_rate)!r} (batch size, accumulation or dataset size changed)")
        if problems:
            raise StateError("the privacy ledger does not match this run:\n" + "\n".join(f"  - {p}" for p in problems)
                             + "\nResume from the checkpoint this run saved, with the same DPConfig, batch size, "
                               "accumulation and dataset.")
        self._history = hist
        self.points = [dict(p) for p in state.get("points", [])]
        self._limit_cache.clear()

    def to_json(self) -> str:
        return json.dumps(self.state_dict())

    @classmethod
    def from_json(cls, text: str) -> "PrivacyLedger":
        state = json.loads(text)
        led = cls(delta=state["delta"], accountant=state["accountant"], unit=state.get("unit", "example"),
                  target_epsilon=state.get("target_epsilon"))
        led.load_state_dict(state)
        return led

    def save(self, directory: str | os.PathLike) -> str:
        """Write the ledger as JSON into ``directory`` (atomically); returns the file path."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, LEDGER_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.state_dict(), fh, indent=1)
        os.replace(tmp, path)
        return path

    def load(self, directory: str | os.PathLike, *, expect_steps: Optional[int] = None,
             expect_noise: Optional[float] = None, expect_rate: Optional[float] = None) -> None:
        """Load the ledger that :meth:`save` wrote into ``directory``; a missing file is an error (see
        :meth:`load_state_dict` for what else is refused)."""
        path = os.path.join(os.fspath(directory), LEDGER_FILE)
        if not os.path.exists(path):
            raise StateError(f"no privacy ledger in {os.fspath(directory)!r} (expected {LEDGER_FILE}); resuming DP "
                             f"training without it would under-report epsilon. Resume from a checkpoint saved "
                             f"with DP enabled, or start a fresh run.")
        try:
            with open(path, encoding="utf-8") as fh:
                state = json.load(fh)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateError(f"the privacy ledger {path!r} cannot be read ({type(exc).__name__}: {exc}); resume from "
                             f"an intact checkpoint") from None
        self.load_state_dict(state, expect_steps=expect_steps, expect_noise=expect_noise, expect_rate=expect_rate)


def _checksum(state: Mapping[str, Any]) -> str:
    body = {k: v for k, v in state.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _r(x: float) -> Optional[float]:
    """Rounded for the report; ``None`` stands for an unbounded epsilon (JSON has no infinity)."""
    return None if not math.isfinite(x) else round(float(x), 6)
