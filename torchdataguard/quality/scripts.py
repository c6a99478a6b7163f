"""Which writing system a text is mostly in: a cheap count of letters by Unicode script.

The quality rules use it to pick a language profile when no language identification ran before them
(:class:`~torchdataguard.quality.langid.LanguageID` writes the language into the example's scores). It
tells scripts apart, not languages: Latin-script text may be English, German or Vietnamese.

A Han, kana or Hangul character carries about as much text as three Latin letters (an English word has
about five letters, a Chinese word about one and a half characters), so CJK characters count three times
when the scripts are compared; this keeps Chinese documentation with English command names "Chinese".
Only the first 4,000 characters are counted (documents rarely change script after that, and the count then
costs little next to the rules).
"""
from __future__ import annotations

import re
from typing import Dict

__all__ = ["SCRIPTS", "dominant_script", "script_counts"]

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# hiragana and katakana without U+30FB (middle dot) and U+30FC (prolonged sound mark): Chinese text uses
# the middle dot between the parts of foreign names
_KANA = "\u3041-\u309f\u30a0-\u30fa\u30fd-\u30ff\u31f0-\u31ff\uff66-\uff9d"
# (without the Hangul fillers U+115F, U+1160, U+3164 and U+FFA0: invisible, they are no letters of any script here)
_HANGUL = "\u1100-\u115e\u1161-\u11ff\u3130-\u3163\u3165-\u318f\uac00-\ud7af"
_FILLERS = ("\u115f", "\u1160", "\u3164", "\uffa0")
_LATIN = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"

_RUNS = {name: re.compile(f"[{chars}]+") for name, chars in
         (("han", _HAN), ("kana", _KANA), ("hangul", _HANGUL), ("latin", _LATIN))}
_LETTERS = re.compile(r"[^\W\d_]+")
_CJK_WEIGHT = 3
_SAMPLE = 4000
_KANA_SHARE = 0.1
_NOT_ASCII_LETTERS = bytes(c for c in range(128) if not chr(c).isalpha())

#: The values :func:`dominant_script` returns (ISO 15924 codes): ``Hani`` Chinese characters, ``Jpan``
#: Japanese (kana with or without kanji), ``Kore`` Hangul, ``Latn`` Latin, ``Other`` any other script
#: (Cyrillic, Greek, Arabic, Devanagari, Thai ...), ``Zyyy`` no letters at all.
SCRIPTS = ("Hani", "Jpan", "Kore", "Latn", "Other", "Zyyy")


def _count(pattern: "re.Pattern[str]", text: str) -> int:
    return sum(map(len, pattern.findall(text)))


def script_counts(text: str) -> Dict[str, int]:
    """Letters by script: ``han``, ``kana``, ``hangul``, ``latin``, ``other`` and their sum ``letters``.

    Example:
        >>> script_counts("Linux 内核")
        {'han': 2, 'kana': 0, 'hangul': 0, 'latin': 5, 'other': 0, 'letters': 7}
    """
    letters = _count(_LETTERS, text) - sum(map(text.count, _FILLERS))  # (letters to ``str.isalpha``)
    out = {name: _count(p, text) for name, p in _RUNS.items()}
    out["other"] = max(0, letters - sum(out.values()))
    out["letters"] = letters
    return out


def dominant_script(text: str) -> str:
    """The script most of the letters of ``text`` (its first 4,000 characters) are in, one of :data:`SCRIPTS`.

    Example:
        >>> dominant_script("ls 列出目录内容，默认为当前目录。")
        'Hani'
        >>> dominant_script("ファイルシステムを作成する"), dominant_script("Привет, мир"), dominant_script("42 %")
        ('Jpan', 'Other', 'Zyyy')
    """
    text = text[:_SAMPLE]
    if text.isascii():
        return "Latn" if any(map(str.isalpha, text)) else "Zyyy"
    # mostly ASCII letters: Latin for sure. The letters of every other script (and CJK's, weighted three
    # times) are non-ASCII characters, and Latin's are at least the ASCII ones, so more than three ASCII
    # letters per non-ASCII character leaves no other answer (a look at the ASCII letters, not the scripts)
    ascii_part = text.encode("ascii", "ignore")
    non_ascii = len(text) - len(ascii_part)
    if len(ascii_part.translate(None, _NOT_ASCII_LETTERS)) > _CJK_WEIGHT * non_ascii:
        return "Latn"
    c = script_counts(text)
    if not c["letters"]:
        return "Zyyy"
    cjk = c["han"] + c["kana"] + c["hangul"]
    if cjk * _CJK_WEIGHT >= max(c["latin"], c["other"]):
        if c["hangul"] >= c["han"] + c["kana"]:
            return "Kore"
        if c["kana"] >= _KANA_SHARE * (c["han"] + c["kana"]):
            return "Jpan"
        return "Hani"
    return "Latn" if c["latin"] >= c["other"] else "Other"
