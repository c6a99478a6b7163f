"""The built-in stage table: every stage the command line and the scans can name, built by name.

Importing this module registers every built-in stage in :data:`~torchdataguard.core.stage.STAGES`
(``exact``, ``near``, ``normalize``, ``quality``, ``langid``, ``pii``, ``text_augment``,
``decontaminate``).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Dict, List, Optional, Sequence

from ..augment.text import TextAugment  # noqa: F401  (registers the stage)
from ..core.stage import STAGES, Stage
from ..decontam.stage import Decontaminate  # noqa: F401
from ..dedup.exact import ExactDedup  # noqa: F401
from ..dedup.near import NearDedup  # noqa: F401
from ..errors import ConfigError
from ..pii.scrubber import PIIScrubber  # noqa: F401
from ..quality.filter import QualityFilter  # noqa: F401
from ..quality.langid import LanguageID  # noqa: F401
from ..quality.normalize import Normalize  # noqa: F401

__all__ = ["build_stages", "stage_options"]


def build_stages(names: Sequence[str], *, threshold: Optional[float] = None,
                 options: Optional[Dict[str, Dict[str, Any]]] = None) -> List[Stage]:
    """Build stages by registry name with their defaults, ``threshold`` for ``near``, and per-stage options.

    Example:
        >>> [type(s).__name__ for s in build_stages(["exact", "near"], threshold=0.9)]
        ['ExactDedup', 'NearDedup']
    """
    options = options or {}
    stages = []
    unknown = [n for n in options if n not in names]
    if unknown:
        raise ConfigError(f"--set names stages {unknown} that are not in --stages {list(names)}")
    for name in names:
        cls = STAGES.get(name)
        kw = dict(options.get(name, {}))
        _check_options(name, cls, kw)
        if name == "near" and threshold is not None:
            kw.setdefault("threshold", threshold)
        try:
            stages.append(cls(**kw))
        except TypeError as exc:  # name the options, never their values (a key may be among them)
            raise ConfigError(f"stage {name!r} does not take the options {sorted(kw)}: {exc}") from None
    return stages


def stage_options(cls: type) -> Optional[List[str]]:
    """The keyword options a stage class takes (``None`` when it takes any: ``**kwargs``).

    Example:
        >>> "ngram" in stage_options(NearDedup)
        True
    """
    params = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(p.name for p in params if p.name != "self" and p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                                           inspect.Parameter.POSITIONAL_OR_KEYWORD))


def _check_options(name: str, cls: type, kw: Dict[str, Any]) -> None:
    """Refuse options the stage does not take, listing the ones it does (never the values: a key may be one)."""
    valid = stage_options(cls)
    if valid is None:
        return
    problems = []
    for opt in sorted(set(kw) - set(valid)):
        close = difflib.get_close_matches(opt, valid, n=1)
        hint = f" (did you mean {name}.{close[0]}?)" if close else ""
        problems.append(f"--set {name}.{opt}: stage {name!r} ({cls.__name__}) has no option {opt!r}{hint}; its "
                        f"options are {', '.join(valid)}")
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError.collect(problems, "--set options")
