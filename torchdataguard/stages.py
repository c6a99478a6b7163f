"""Importing this module registers every built-in stage (used by the command line)."""
from __future__ import annotations

from .augment.text import TextAugment  # noqa: F401
from .dedup.exact import ExactDedup  # noqa: F401
from .dedup.near import NearDedup  # noqa: F401
from .quality.filter import QualityFilter  # noqa: F401
from .quality.langid import LanguageID  # noqa: F401
from .quality.normalize import Normalize  # noqa: F401
from .pii.scrubber import PIIScrubber  # noqa: F401
