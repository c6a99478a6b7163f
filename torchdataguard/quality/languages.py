"""Language profiles of the quality rules: which rule sets, word segmenter and stop words judge a text.

Three profiles are built in, registered by name in :data:`LANGUAGE_PROFILES`:

* ``en`` - English, and text in Latin script or without letters when no language is known: Gopher, C4
  and FineWeb as published (the :class:`~torchdataguard.QualityFilter` options ``sets``, ``stop_words``,
  ``c4_lines`` and ``bad_words`` set it up).
* ``zh`` - Chinese (``zh`` and the Chinese languages ``yue``, ``wuu`` ...), and Han-script text when no
  language is known: ``text_encoding`` (mojibake) and the ``*_zh`` rule sets on jieba words. It needs
  jieba (``pip install "torchdataguard[zh]"``); without it Chinese text gets the ``neutral`` profile and
  is counted as ``quality/fallback/zh``.
* ``neutral`` - every other language or script: ``text_encoding`` and ``script_neutral``, rules that
  count no words.

The language comes from :class:`~torchdataguard.quality.langid.LanguageID` when it ran earlier in the
guard (its score key ``langid/<lang>``); otherwise (or when it said ``und``) from the script of the text
(:func:`~torchdataguard.quality.scripts.dominant_script`). Without language identification Latin-script
text is judged as English unless it fails Gopher's English stop-word rule and its function words name another
language (:mod:`~torchdataguard.quality.latin`, ``QualityFilter(guess_language=...)``); run ``langid`` first
for a language model's routing.

Example:
    >>> router = Router(["en", "zh", "neutral"])
    >>> router.route("zh-Hant", ""), router.route("yue", ""), router.route("de", ""), router.route("und", "hello")
    ('zh', 'zh', 'neutral', 'en')
    >>> router.route(None, "这是一个测试。"), router.route(None, "Это тест.")
    ('zh', 'neutral')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, FrozenSet, Iterable, Mapping, Optional, Tuple

from ..registry import Registry
from .rules import GOPHER_STOP_WORDS, PUNCTUATION, ZH_PUNCTUATION, ZH_STOP_WORDS
from .scripts import dominant_script

__all__ = ["FALLBACK", "LANGID_PREFIX", "LANGUAGE_PROFILES", "LanguageProfile", "Router", "language_of"]

#: The profile for languages and scripts no other profile claims.
FALLBACK = "neutral"
#: Prefix of the score that :class:`~torchdataguard.quality.langid.LanguageID` writes: ``langid/<lang>``.
LANGID_PREFIX = "langid/"
#: The language code for "undetermined" (ISO 639-2).
UNDETERMINED = "und"


@dataclass(frozen=True)
class LanguageProfile:
    """How texts of some languages are judged.

    Attributes:
        name: the profile's name (``QualityFilter(languages={name: sets})`` picks its sets).
        sets: its default rule sets, in the order they are judged.
        languages: language codes it serves (the part before ``-`` or ``_``: ``zh-Hant`` is ``zh``).
        scripts: scripts it serves when no language is known (values of
            :data:`~torchdataguard.quality.scripts.SCRIPTS`).
        segmenter: name in :data:`~torchdataguard.quality.segment.SEGMENTERS`, or ``None`` for whitespace.
        stop_words: the stop words of its ``stop_words`` rule.
        punctuation: characters stripped from both ends of a token to get its word form.

    Example:
        >>> LANGUAGE_PROFILES.get("zh").segmenter
        'jieba'
    """

    name: str
    sets: Tuple[str, ...]
    languages: Tuple[str, ...] = ()
    scripts: Tuple[str, ...] = ()
    segmenter: Optional[str] = None
    stop_words: FrozenSet[str] = frozenset()
    punctuation: str = PUNCTUATION


#: Language profiles by name.
LANGUAGE_PROFILES: Registry[LanguageProfile] = Registry("language profile")

LANGUAGE_PROFILES.register("en")(LanguageProfile(
    "en", ("gopher_quality", "gopher_repetition", "c4", "fineweb"), languages=("en",), scripts=("Latn", "Zyyy"),
    stop_words=GOPHER_STOP_WORDS))
LANGUAGE_PROFILES.register("zh")(LanguageProfile(
    "zh", ("text_encoding", "gopher_quality_zh", "gopher_repetition_zh", "fineweb_zh"),
    languages=("zh", "cmn", "yue", "wuu", "lzh", "gan", "hak", "hsn", "nan", "cdo", "cjy", "cpx", "czh", "mnp"),
    scripts=("Hani",), segmenter="jieba", stop_words=ZH_STOP_WORDS, punctuation=ZH_PUNCTUATION))
LANGUAGE_PROFILES.register(FALLBACK)(LanguageProfile(FALLBACK, ("text_encoding", "script_neutral")))


def _primary(code: str) -> str:
    return code.replace("_", "-").split("-", 1)[0].lower()


def language_of(scores: Mapping[str, float]) -> Optional[str]:
    """The language :class:`~torchdataguard.quality.langid.LanguageID` wrote into an example's scores, if any.

    Example:
        >>> language_of({"langid/zh": 0.98, "quality/x": 1.0}), language_of({})
        ('zh', None)
    """
    for key in scores:
        if key.startswith(LANGID_PREFIX):
            return key[len(LANGID_PREFIX):]
    return None


class Router:
    """Picks the profile (one of ``names``) for a text from its language, else from its script.

    Languages and scripts no profile among ``names`` claims go to :data:`FALLBACK`.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names = tuple(names)
        self._by_language: Dict[str, str] = {}
        self._by_script: Dict[str, str] = {}
        for name in self.names:
            p = LANGUAGE_PROFILES.get(name)
            for code in p.languages:
                self._by_language.setdefault(_primary(code), name)
            for script in p.scripts:
                self._by_script.setdefault(script, name)

    def route(self, language: Optional[str], text: str) -> str:
        """The profile name for ``text`` whose language is ``language`` (``None`` or ``und``: unknown)."""
        if language is not None:
            code = _primary(language)
            if code != UNDETERMINED:
                return self._by_language.get(code, FALLBACK)
        return self._by_script.get(dominant_script(text), FALLBACK)
