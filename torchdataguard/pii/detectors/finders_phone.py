"""Finders for phone numbers (entity ``phone``) but the South Korean ones (:mod:`.finders_ko`): international
numbers after ``+``, North American numbers with separators, national numbers with a trunk 0 right after a
phone word, Russian numbers with the trunk 8 and 8-digit numbers (Hong Kong, Singapore) right after one, and
(through :mod:`.finders_zh`) mainland Chinese mobiles and landlines.

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "Tel.: 030 1234567 or +1 (415) 555-0100"
    >>> [t[s:e] for s, e in find_phone(t, text_shape(t))]
    ['+1 (415) 555-0100', '030 1234567']
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from .finders_zh import match_cn_landline, match_cn_mobile_grouped
from .shape import is_cjk

__all__ = ["find_phone", "phone_word_lower"]

# phones: "+CC ...", North American, a trunk 0 after a phone word ("tel.", "fax" ...); South Korean: finders_ko
_PHONE_INTL = re.compile(r"\+0{1,3}[ .\-]?(?:\(0{1,4}\)[ .\-]?)?0{1,4}(?:[ .\-]?0{2,4}){1,5}(?![\w\-]|[.,]0)")
_PHONE_NANP_TAIL = re.compile(r"000[ .\-]0000(?![\w\-]|[.,]0)")
_PHONE_NANP_HEAD = re.compile(r"(?P<cc>0[ .\-]?)?(?P<area>\(000\)[ .\-]?|000[ .\-])\Z")
# Phone words: English and the common European words (German, French, Spanish, Portuguese, Italian, Nordic),
# Arabic, Hebrew and Hindi, matched as whole words; Japanese, traditional Chinese (mainland simplified words are
# finders_zh's) and Thai ones, matched anywhere.
_SPACED_WORDS = (r"tel(?:ephone|efon(?:nummer)?|efono|efone)?", r"ph(?:one)?", r"fax", r"mob(?:ile?)?", r"cell",
                 r"call", r"tél(?:éphone)?", r"teléfono", r"handy", r"rufnummer", r"fon", r"tlf", r"m[óo]vil",
                 r"cel(?:ular)?", r"whatsapp", r"(?:ال)?هاتف", r"جوال", r"موبايل", r"טלפון", r"נייד", r"פקס",
                 "(?:\u092b\u093c?|\u095e)\u094b\u0928", r"मोबाइल",  # फोन, फ़ोन (nukta apart or not)
                 r"тел(?:ефон(?:а|у|ом|е|ы)?)?", r"факс", r"моб(?:ильный|ільний)?", r"сотовый")  # Russian, Ukrainian
_CJK_WORDS = (r"電話(?:番号)?", r"携帯(?:電話)?", r"手機", r"傳真", r"連絡先",
              r"โทร(?:ศัพท์)?", r"มือถือ", r"แฟกซ์")  # Thai (written without spaces too): tel., telephone, mobile, fax
# then only ".", ":", "：", "#" and whitespace, right before "0" or "(0"
_PHONE_WORDS = tuple(re.compile(w + r"\b[.:：]?\s*[:#：]?\s*(?=\(?0)") for w in _SPACED_WORDS) + tuple(
    re.compile(w + r"[.:：]?\s*[:#：]?\s*(?=\(?0)") for w in _CJK_WORDS)
# A match of a _PHONE_WORDS pattern is a phone word, then only those characters, and it ends right before "0" or
# "(0". Read backwards, that is "0", maybe "(", those characters and the word reversed: a pattern that starts
# with the literal "0", so the reversed text is scanned fast. It matches the reversed text whenever a phone word
# pattern matches the text (the converse need not hold: it is a gate): every form of every word is listed here
# (tests/pii/test_pii_shortcuts.py checks them).
_PHONE_WORD_FORMS = ("tel", "telephone", "telefon", "telefonnummer", "telefono", "telefone", "ph", "phone", "fax",
                     "mob", "mobil", "mobile", "cell", "call", "tél", "téléphone", "teléfono", "handy", "rufnummer",
                     "fon", "tlf", "móvil", "movil", "cel", "celular", "whatsapp", "هاتف", "جوال", "موبايل", "טלפון",
                     "נייד", "פקס", "\u092b\u094b\u0928", "\u092b\u093c\u094b\u0928", "\u095e\u094b\u0928", "मोबाइल",
                     "電話", "電話番号", "携帯", "携帯電話", "手機", "傳真", "連絡先", "тел", "телефон", "телефона", "телефону", "телефоном", "телефоне", "телефоны", "факс", "моб",
                     "мобильный", "мобільний", "сотовый", "โทร", "โทรศัพท์", "มือถือ", "แฟกซ์")
_PHONE_WORD_REVERSED = re.compile(r"0\(?[\s.:#：]*(?:" + "|".join(w[::-1] for w in _PHONE_WORD_FORMS) + ")")
# for ASCII text, either case of each letter (spelt out: re.IGNORECASE makes the scan three times slower)
_PHONE_WORD_REVERSED_ANY_CASE = re.compile(r"0\(?[\s.:#]*(?:" + "|".join(
    "".join(f"[{c}{c.upper()}]" for c in w[::-1]) for w in _PHONE_WORD_FORMS if w.isascii()) + ")")
# after the area code, groups of 2 to 8 digits: 020 7946 0958, 01 23 45 67 89, 030 1234567, 07700 900123,
# 07700900123 (the area code and the rest split where the digits allow), 0049 30 1234567; 9 to 12 digits in all,
# or up to 15 after the international prefix 00
# numbers without a trunk 0, after a phone word (looked for before them, in the text): Russian and Kazakh ones with
# the trunk 8 (8 (495) 123-45-67, 8-800-555-35-35; with +7 they are international), and 8-digit numbers of
# Hong Kong, Singapore and other plans without area codes (2345 6789, 23456789), whose first digit is 2 to 9
# (two scans: each starts with a run of literal characters, which the engine looks for fast)
_PHONE_TRUNK8 = re.compile(r"0[ \-(]\(?000\)?[ \-]?000[ \-]?00[ \-]?00(?![\w\-]|[.,]0)")
_PHONE_TRUNK8_GLUED = re.compile(r"0{11}(?![\w\-]|[.,]0)")  # 89161234567
_PHONE_EIGHT = re.compile(r"0000[ \-]?0000(?![\w\-]|[.,]0)")
# not numbers: years (2019-2020) and dates written as 8 digits (20231231)
_YEARS = re.compile(r"(?:19|20)\d\d[ \-]?(?:19|20)\d\d|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_WORD_BEFORE = re.compile(r"(?:(?<!\w)(?:" + "|".join(_SPACED_WORDS) + r")\b|" + "|".join(_CJK_WORDS)
                          + r")[.:：]?\s*[:#：]?\s*\Z")
_PHONE_TRUNK = re.compile(r"(?:\(00{1,4}\)|00{1,4})[ .\-/]?0{2,8}(?:[ .\-]0{2,8}){0,4}(?![\w\-]|[.,]0)")


def _phone_left_ok(shape: str, s: int) -> bool:
    if s == 0:
        return True
    ch = shape[s - 1]
    return not (ch.isalnum() or ch in "_+-.")


def phone_word_lower(text: str) -> Optional[str]:
    """``text.lower()`` when a pattern of ``_PHONE_WORDS`` can match it, else ``None``.

    A match is a phone word, then only ``.``, ``:``, ``#`` and whitespace, and it ends right before ``0`` or
    ``(0``: the reversed text is searched for that (:data:`_PHONE_WORD_REVERSED`). Most texts have none, and
    skip the six patterns. An ASCII text is searched as it is, ignoring case (lower-casing it changes letters
    only, one for one), so most texts are not lower-cased. The result has ``text``'s length, so positions in it
    are positions in ``text``: a letter whose lower case is longer (``"İ"``) stays as it is.

    Example:
        >>> phone_word_lower("Call: 020 7946"), phone_word_lower("in 2002, 0.5% of"), phone_word_lower("İzmir Tel: 0")
        ('call: 020 7946', None, 'İzmir tel: 0')
    """
    if text.isascii():
        return text.lower() if _PHONE_WORD_REVERSED_ANY_CASE.search(text[::-1]) is not None else None
    lower = text.lower()
    if len(lower) != len(text):  # a letter lower-cases to several ("İ": "i" and a dot): keep positions aligned
        lower = "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)
    return lower if _PHONE_WORD_REVERSED.search(lower[::-1]) is not None else None


def find_phone(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    for m in (_PHONE_INTL.finditer(shape) if "+" in shape else ()):
        s, e = m.span()
        nd = sum(ch == "0" for ch in m.group())
        if 8 <= nd <= 15 and _phone_left_ok(shape, s):
            out.append((s, e))
    for m in _PHONE_NANP_TAIL.finditer(shape):
        p, e = m.span()
        cn = match_cn_mobile_grouped(text, shape, p)  # 138 1234 5678, 138-1234-5678
        if cn is not None:
            out.append(cn)
        h = _PHONE_NANP_HEAD.search(shape, max(0, p - 8), p)
        if h is None:
            continue
        s = h.start()
        if h.group("cc") is not None and text[s] != "1":
            s = h.start("area")
        a = h.start("area") + (1 if shape[h.start("area")] == "(" else 0)
        if text[a] in "01" or text[p] in "01" or not _phone_left_ok(shape, s):
            continue
        out.append((s, e))
    lower = phone_word_lower(text)
    after_words = set()  # where a number after a phone word was looked for ("携帯電話：0...": two words end there)
    for rx in (_PHONE_WORDS if lower is not None else ()):
        for w in rx.finditer(lower):
            if w.end() in after_words:
                continue
            first = lower[w.start()]
            if w.start() > 0 and (lower[w.start() - 1].isalnum() or lower[w.start() - 1] == "_") and not (
                    is_cjk(first) or "\u0e00" <= first <= "\u0e7f"):  # scripts written without spaces: may follow a letter
                continue
            after_words.add(w.end())
            m = _PHONE_TRUNK.match(shape, w.end())
            span = _trunk_number(text, shape, m) if m is not None else None
            if span is None:
                span = match_cn_landline(text, w.end())  # a mainland number: area code, 7 or 8 digits
            if span is not None:
                out.append(span)
    for rx, first in ((_PHONE_TRUNK8, "8"), (_PHONE_TRUNK8_GLUED, "8"), (_PHONE_EIGHT, "23456789")):
        for m in rx.finditer(shape):
            s, e = m.span()
            if text[s] not in first or not _phone_left_ok(shape, s) or any(a < e and s < b for a, b in out):
                continue
            w0 = max(0, s - 24)
            w = _WORD_BEFORE.search(text[w0:s].lower())
            if w is not None and (w.start() > 0 or w0 == 0) and not _YEARS.fullmatch(text, s, e):
                out.append((s, e))
    return out


def _trunk_number(text: str, shape: str, m: "re.Match[str]") -> Optional[Tuple[int, int]]:
    """The number a :data:`_PHONE_TRUNK` match ``m`` holds: its digits start with the trunk 0 and count 9 to 12
    (15 after the international prefix 00, or 011); a match with too many is cut back group by group (``Fax 03838923525 24 hours``:
    the number, not the hours), and ``None`` when no cut fits."""
    s, e = m.span()
    first = s + (1 if text[s] == "(" else 0)
    if text[first] != "0":
        return None
    most = 15 if text[first + 1] == "0" or text.startswith("011", first) else 12  # after 00, or 011 (from the US)
    while True:
        nd = shape.count("0", s, e)
        if nd <= most:
            return (s, e) if nd >= 9 else None
        cut = max(shape.rfind(c, s, e) for c in " .-/")  # the last group goes
        if cut <= first:
            return None
        e = cut
