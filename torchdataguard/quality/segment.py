"""Word segmenters for languages written without spaces between words, registered by name in :data:`SEGMENTERS`.

``jieba`` (Chinese) ships its dictionary inside its PyPI package, so nothing is downloaded; it is an
optional dependency (``pip install "torchdataguard[zh]"``) imported the first time a Chinese text is
segmented, once per process. Its dictionary takes about a second to load and some 60 MB of memory.
"""
from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable, List, Optional

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["SEGMENTERS", "Segmenter"]


@dataclass(frozen=True)
class Segmenter:
    """A word segmenter: ``split(text) -> tokens`` (no whitespace tokens), and the package it needs.

    Example:
        >>> SEGMENTERS.get("jieba").module
        'jieba'
    """

    name: str
    split: Callable[[str], List[str]]
    module: Optional[str] = None
    pip_hint: str = ""

    def available(self) -> bool:
        """True when the package it needs is installed (it is not imported here)."""
        return self.module is None or importlib.util.find_spec(self.module) is not None

    def require(self, what: str) -> None:
        """Raise a :class:`~torchdataguard.errors.ConfigError` with the install command when unavailable."""
        if not self.available():
            raise ConfigError(f"{what} needs the {self.name!r} word segmenter, and {self.module!r} is not installed: "
                              f"{self.pip_hint}")


#: Segmenters by name.
SEGMENTERS: Registry[Segmenter] = Registry("word segmenter")

_JIEBA: Any = None
_JIEBA_LOCK = threading.Lock()


def _jieba_split(text: str) -> List[str]:
    """Chinese words by jieba (its default dictionary and HMM for unknown words); whitespace dropped."""
    global _JIEBA
    tok = _JIEBA
    if tok is None:
        with _JIEBA_LOCK:
            if _JIEBA is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" lines on stderr
                t = jieba.Tokenizer()
                t.initialize()
                _JIEBA = t
            tok = _JIEBA
    return [w for w in tok.lcut(text) if not w.isspace()]


SEGMENTERS.register("jieba")(Segmenter("jieba", _jieba_split, module="jieba",
                                       pip_hint='pip install "torchdataguard[zh]"  (or pip install jieba)'))
