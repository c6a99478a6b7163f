"""Rules that need no words: ``script_neutral`` (any language) and ``text_encoding`` (mis-decoded text).

``script_neutral`` is what a text gets when its language has no profile of its own (Japanese, Korean,
Russian, Thai ...): Gopher's line and paragraph repetition rules, which only look at lines, and
character measures in place of word counts (characters, the share of characters that are letters, the
share of characters inside repeated character 10-grams, as data-juicer's character repetition filter
measures it). No rule counts whitespace words or English stop words, and none asks for sentence
punctuation (Thai, for one, ends sentences with a space).

``text_encoding`` finds mojibake: text whose non-ASCII runs, encoded back with GBK, Windows-1252 or Latin-1,
are valid UTF-8 - UTF-8 bytes that were read with the wrong codec ("浣犲ソ" or "ä½ å¥½" for "你好", "Ã©" for
"é"). Real text in those codecs almost never forms valid multi-byte UTF-8 sequences.
"""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Dict

import numpy as np

from .base import Threshold, register_rule_set
from .config import ScoreConfig
from .gopher import line_repetition
from .stats import TextStats, ratio

__all__ = ["mojibake_ratio", "script_neutral", "text_encoding"]

_NON_ASCII_RUN = re.compile("[^\x00-\x7f\ufffd]+")
_CODECS = ("gbk", "cp1252", "latin-1")
_MIN_VALID_SHARE = 0.75
_MIN_GBK_RUN = 4
_MIN_WIDE_SHARE = 0.5
_WHITESPACE = re.compile(r"\s+")
_GRAM = 10


def _plausible_wide(c: str) -> bool:
    """Whether ``c``, a character that real GBK text decoded as UTF-8 gave, is one a text is likely to have held:
    a character of U+0800..U+FFFF (3 UTF-8 bytes) outside CJK extension A, Yi, private use, CJK compatibility
    ideographs and U+FFFD, or an emoji
    (U+1F000..U+1FAFF). Real Japanese and Chinese read this way make such bytes by chance as rare or unassigned
    characters ("アンカラ" gives U+E5AE5, "类层级结构" gives U+3F36 of extension A): until 2026-12-07 those counted,
    and 0.5% of the Japanese and 0.1-0.2% of the Chinese messages of Debian's catalogues were dropped as mojibake."""
    if c < "\u0800":
        return False
    if c <= "\uffff":
        return not ("\u3400" <= c <= "\u4dbf" or "\ua000" <= c <= "\ua4cf" or "\ue000" <= c <= "\ufaff"
                    or c == "\ufffd")
    return "\U0001f000" <= c <= "\U0001faff"


def mojibake_ratio(text: str) -> float:
    """Share of the non-ASCII characters that are UTF-8 bytes decoded with the wrong codec.

    A run of non-ASCII characters counts when, encoded back, its bytes are mostly valid multi-byte UTF-8:
    with Windows-1252 or Latin-1, at least 75% of them (runs of any length: real text almost never has, say,
    "Ã" before a character of U+0080..U+00BF); with GBK, at least half of them in 3-byte sequences, for
    runs of four characters or more (real Chinese read back this way forms valid 2-byte sequences by
    chance, 3-byte ones rarely: of 31,564 such runs in Debian's Chinese man pages and fortunes, 99.9% had
    under 40% of their bytes in them, none over 60%; mojibake runs had 60% or more in 99%).

    Example:
        >>> good = "这是一个关于数据清洗的简短段落。"
        >>> mojibake_ratio(good), mojibake_ratio(good.encode("utf-8").decode("gbk", "ignore"))
        (0.0, 1.0)
        >>> mojibake_ratio("caf\\u00c3\\u00a9 au lait")
        1.0
    """
    total = bad = 0
    for run in _NON_ASCII_RUN.findall(text):
        total += len(run)
        for codec in _CODECS:
            if codec == "gbk" and len(run) < _MIN_GBK_RUN:
                continue
            try:
                raw = run.encode(codec)
            except UnicodeEncodeError:
                continue
            decoded = raw.decode("utf-8", "replace")
            if codec == "gbk":
                wide = sum(len(c.encode("utf-8")) for c in decoded if _plausible_wide(c))
                if wide < _MIN_WIDE_SHARE * len(raw):
                    continue
            else:
                valid = decoded.replace("\ufffd", "")
                n_valid = len(valid.encode("utf-8"))
                if n_valid < _MIN_VALID_SHARE * len(raw) or n_valid == len(valid):  # mostly invalid, or ASCII
                    continue
            bad += len(run)
            break
    return ratio(bad, total)


def _repeated_gram_share(text: str, n: int = _GRAM) -> float:
    """Share of the characters (whitespace removed) covered by character ``n``-grams that occur twice or more."""
    s = _WHITESPACE.sub("", text)
    m = len(s) - n + 1
    if m < 2:
        return 0.0
    codes = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.uint64)
    key = np.zeros(m, dtype=np.uint64)
    for i in range(n):  # a polynomial hash of each n-gram (collisions: about 2**-64 per pair)
        key = key * np.uint64(0x100000001B3) + codes[i: i + m]
    order = np.argsort(key, kind="stable")
    k = key[order]
    eq = k[1:] == k[:-1]
    rep = np.zeros(m, dtype=bool)
    rep[order[1:][eq]] = True
    rep[order[:-1][eq]] = True
    cover = np.convolve(rep.view(np.int8), np.ones(n, dtype=np.int8))[: len(s)]
    return float((cover > 0).sum()) / len(s)


@register_rule_set("script_neutral", source="Gopher's line and paragraph repetition (Rae et al. 2021, table A1) "
                   "and character measures for scripts of any kind", rules=[
    ("char_count", Threshold(min=50, max=500_000), "characters other than whitespace"),
    ("letter_ratio", Threshold(min=0.5), "share of non-whitespace characters that are letters or combining marks"),
    ("dup_line_ratio", Threshold(max=0.3), "share of lines that repeat an earlier line"),
    ("dup_para_ratio", Threshold(max=0.3), "share of paragraphs that repeat an earlier paragraph"),
    ("dup_line_char_ratio", Threshold(max=0.2), "share of line characters in repeated lines"),
    ("dup_para_char_ratio", Threshold(max=0.2), "share of paragraph characters in repeated paragraphs"),
    ("dup_char_10gram_ratio", Threshold(max=0.7), "share of characters inside character 10-grams that repeat"),
])
def script_neutral(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """Scores of one text that need no words.

    Example:
        >>> script_neutral(TextStats("ab 12"), ScoreConfig())["letter_ratio"]
        0.5
    """
    text = st.text
    chars = letters = 0
    for c, n in Counter(text).items():  # one category look-up per distinct character
        cat = unicodedata.category(c)
        if cat[0] != "Z" and c not in "\t\n\r\x0b\x0c":
            chars += n
            if cat[0] in "LM":
                letters += n
    out = line_repetition(st)
    out.update({"char_count": float(chars), "letter_ratio": ratio(letters, chars),
                "dup_char_10gram_ratio": _repeated_gram_share(text)})
    return out


@register_rule_set("text_encoding", source="this project: mis-decoded UTF-8 (mojibake) and replacement characters",
                   rules=[
    ("mojibake_ratio", Threshold(max=0.1), "share of non-ASCII characters that are UTF-8 read as GBK or Latin-1"),
    ("replacement_ratio", Threshold(max=0.001), "U+FFFD replacement characters per character"),
])
def text_encoding(st: TextStats, opts: ScoreConfig) -> Dict[str, float]:
    """Mojibake scores of one text.

    Example:
        >>> text_encoding(TextStats("ok \\ufffd"), ScoreConfig())["replacement_ratio"]
        0.25
    """
    text = st.text
    return {"mojibake_ratio": mojibake_ratio(text), "replacement_ratio": ratio(text.count("\ufffd"), len(text))}
