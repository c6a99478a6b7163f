"""Real text in many languages from Debian packages: man pages (roff) and fortunes, as paragraphs.

Shared by ``benchmarks/langid_vs_fasttext.py`` and ``tests/fixtures/zh/make_fixture.py``. Get the packages
without installing them (run ``apt-get update`` once first)::

    apt-get download manpages manpages-de manpages-fr ... manpages-zh fortunes-zh
    for f in *.deb; do dpkg-deb -x "$f" ROOT; done

then pass ``ROOT``. Paragraphs come from the roff source: macros are dropped (their text arguments kept),
escapes resolved, example blocks (``.nf``/``.EX``) left out, and each ``.PP``/``.TP``/``.SH`` starts a new
paragraph.
"""
from __future__ import annotations

import glob
import gzip
import os
import re
import zlib
from typing import Dict, Iterator, List, Optional, Tuple

__all__ = ["LANG_DIRS", "chinese_passages", "fortunes", "held_out", "man_pages", "prose_paragraph", "read_man",
           "roff_sections"]

#: man-page directory under /usr/share/man -> language code ("" is English).
LANG_DIRS: Dict[str, str] = {"": "en", "cs": "cs", "da": "da", "de": "de", "el": "el", "es": "es", "fi": "fi",
                             "fr": "fr", "hu": "hu", "id": "id", "it": "it", "ja": "ja", "nl": "nl", "pl": "pl",
                             "pt_BR": "pt", "ro": "ro", "ru": "ru", "sv": "sv", "tr": "tr", "uk": "uk", "vi": "vi",
                             "zh_CN": "zh", "zh_TW": "zh"}

_FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
_NAMED = {"em": "\u2014", "en": "\u2013", "aq": "'", "dq": '"', "lq": "\u201c", "rq": "\u201d", "oq": "\u2018",
          "cq": "\u2019", "bu": "\u2022", "co": "\u00a9", "hy": "-", "ti": "~", "ha": "^", "rs": "\\", "mi": "-",
          "Fo": "\u00ab", "Fc": "\u00bb", "fo": "\u2039", "fc": "\u203a"}
_ESC = re.compile(r"\\(?:\((..)|\[([^\]]*)\]|\*(?:\(..|\[[^\]]*\]|.)|s[+-]?\d+|[&%|^c:]|(-)|(e)|( )|(0)|(~)|"
                  r"n(?:\(..|\[[^\]]*\]|.)|[hvwlL]'[^']*'|\"(.*))")
_INLINE = {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB", "UR", "MT", "OP", "Nm", "Ar", "Fl"}
_BREAK = {"PP", "P", "LP", "TP", "IP", "HP", "sp", "br", "RS", "RE", "TQ", "TH", "Pp", "It", "in", "ti", "bp"}
_VERBATIM_ON = {"nf", "EX", "TS", "EQ", "Bd"}
_VERBATIM_OFF = {"fi", "EE", "TE", "EN", "Ed"}
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _unescape(s: str) -> str:
    def rep(m: "re.Match[str]") -> str:
        named, bracket, dash, backslash, space, zero, tilde, comment = m.groups()
        if comment is not None:
            return ""
        if named or bracket:
            return _NAMED.get(named or bracket, "")
        if dash:
            return "-"
        if backslash:
            return "\\"
        return " " if (space or zero or tilde) else ""

    return _ESC.sub(rep, _FONT.sub("", s))


def _macro_args(args: str) -> str:
    return " ".join(a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', args))


def roff_sections(src: str) -> List[Tuple[str, List[str]]]:
    """``[(section title, [paragraphs])]`` of a man page's roff source (the first entry is the preamble)."""
    out: List[Tuple[str, List[str]]] = [("", [])]
    cur: List[str] = []
    verbatim = False

    def flush() -> None:
        text = re.sub(r"\s+", " ", " ".join(x.strip() for x in cur if x.strip())).strip()
        if text:
            out[-1][1].append(text)
        cur.clear()

    for raw in src.splitlines():
        if raw.startswith((".", "'")):
            m = re.match(r"[.'][ \t]*([A-Za-z]{1,3})\b[ \t]*(.*)", raw)
            if not m:
                continue
            macro, args = m.groups()
            if macro in _VERBATIM_ON:
                flush()
                verbatim = True
            elif macro in _VERBATIM_OFF:
                verbatim = False
            elif macro in ("SH", "Sh"):
                flush()
                out.append((_unescape(_macro_args(args)).strip(), []))
            elif macro == "SS" or macro in _BREAK:
                flush()
            elif macro in _INLINE and not verbatim:
                cur.append(_unescape(_macro_args(args)))
            continue
        if not verbatim:
            cur.append(_unescape(raw))
    flush()
    return out


def read_man(path: str) -> Optional[str]:
    """A man page's source as text (``None`` when it is not UTF-8)."""
    data = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def man_pages(root: str, lang_dir: str) -> Dict[str, str]:
    """``{page name: path}`` of the man pages under ``root``/usr/share/man/``lang_dir`` (sections 1-8)."""
    base = os.path.join(root, "usr/share/man", lang_dir)
    return {os.path.basename(p).split(".gz")[0]: p for p in sorted(glob.glob(os.path.join(base, "man[1-8]", "*")))}


def fortunes(path: str) -> Iterator[Tuple[List[str], str]]:
    """``(paragraphs, attribution)`` of each fortune in a fortune file (colour codes removed, wrapped lines
    joined; Chinese lines are joined without a space)."""
    raw = open(path, encoding="utf-8").read()
    for item in raw.split("\n%\n"):
        paras: List[str] = []
        cur: List[str] = []
        who = ""
        for line in _ANSI.sub("", item).splitlines():
            s = line.strip()
            if s.startswith("--"):
                who = s[2:].strip()
                continue
            if not s or s.startswith("$"):
                if cur:
                    paras.append("".join(cur))
                    cur = []
                continue
            cur.append(s)
        if cur:
            paras.append("".join(cur))
        yield paras, who


_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]")
_ENDS = ("。", "！", "？", "”", "」", "』", "；", "…")
#: manpages-zh pages under a licence other than the package's GFDL-1.2+
NON_GFDL_PAGES = {"kill.1", "intro.6", "epoll.7"}


def prose_paragraph(p: str) -> bool:
    """A complete paragraph of Chinese prose: two full stops or more, at least 60% of its letters Han, not an
    option entry (``-``, ``+``, ``*`` first), ending in sentence punctuation, 40 to 600 characters."""
    letters = len(_LETTER.findall(p))
    return (40 <= len(p) <= 600 and p.count("。") >= 2 and letters > 0 and len(_HAN.findall(p)) >= 0.6 * letters
            and not p.lstrip().startswith(("-", "+", "*")) and p.rstrip().endswith(_ENDS))


def held_out(page: str) -> bool:
    """The half of the man pages the Chinese quality thresholds were not tuned on."""
    return zlib.crc32(page.encode()) % 2 == 1


def chinese_passages(root: str, lang_dir: str, *, half: Optional[bool] = True, skip: frozenset = frozenset(),
                     max_chars: int = 450, min_chars: int = 150) -> List[Dict[str, str]]:
    """One passage per man page of ``root``'s manpages-zh (``lang_dir`` ``zh_CN`` or ``zh_TW``): the prose
    paragraphs of its first section that has some, joined by line breaks up to ``max_chars``. ``half``: the
    held-out pages (True), the tuning pages (False) or all (None)."""
    out = []
    for page, path in man_pages(root, lang_dir).items():
        if page in NON_GFDL_PAGES or page in skip or (half is not None and held_out(page) != half):
            continue
        for title, paras in roff_sections(read_man(path) or "")[2:]:
            text = ""
            for p in filter(prose_paragraph, paras):
                if len(text) + len(p) > max_chars:
                    break
                text = f"{text}\n{p}" if text else p
            if len(text) >= min_chars:
                out.append({"source": f"manpages-zh {lang_dir} {page} ({title})", "page": page, "text": text})
                break
    return out
