"""The built-in stage table: every stage the command line and the scans can name, built by name.

Importing this module registers every built-in stage in :data:`~torchdataguard.core.stage.STAGES`
(``exact``, ``near``, ``normalize``, ``quality``, ``langid``, ``pii``, ``text_augment``,
``decontaminate``).
"""
from __future__ import annotations

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

__all__ = ["build_stages"]


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
        if name == "near" and threshold is not None:
            kw.setdefault("threshold", threshold)
        try:
            stages.append(cls(**kw))
        except TypeError as exc:  # name the options, never their values (a key may be among them)
            raise ConfigError(f"stage {name!r} does not take the options {sorted(kw)}: {exc}") from None
    return stages
