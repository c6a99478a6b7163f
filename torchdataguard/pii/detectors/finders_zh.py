"""Finders for Chinese personal data: mainland phone numbers, identity numbers of the mainland, Hong Kong and
Taiwan, passport numbers after a passport word, and UnionPay numbers after a card word.

:func:`find_chinese` takes ``(text, shape)`` like the finders of :mod:`.finders` and returns
``(start, end, entity)``: one pass serves several entity types. A
number must not be glued to an ASCII letter or digit, nor continue a longer number (``2023-13812345678``,
``0.13812345678``); Han and other characters of scripts written without spaces are boundaries (they are not
word characters in the shape, see :mod:`.shape`), so ``手机13812345678`` and ``卡号6222...已冻结`` are found.

* mobile numbers (``phone``): ``1[3-9]`` and nine digits, plain or grouped 3-4-4 by one space or hyphen,
  optionally after ``+86``, ``0086`` or ``(+86)``;
* landlines (``phone``): an area code (``010``, ``02x``, ``0[3-9]xx``, optionally in ASCII or full-width
  parentheses) and a 7- or 8-digit local number starting with 2-9, with an optional ``-ext``, right after a
  phone word (电话, 手机, 座机, 固话, 传真, 热线, 联系方式, 致电, 拨打, 来电, 联系; ``tel``/``phone``/``fax``
  in :func:`~.finders.find_phone`);
* resident identity numbers (``national_id``): 18 characters checked by
  :func:`~.checksums.cn_id_valid`, or the 15-digit form checked by :func:`~.checksums.cn_legacy_id_valid`
  (not when the 15 digits are a valid payment card);
* Hong Kong identity cards (``national_id``): ``A123456(3)``, ``AB987654(3)``, ASCII or full-width
  parentheses, check digit verified; Taiwan identification numbers (``national_id``): ``A123456789``,
  checksum verified;
* passport numbers (``passport``): one or two upper-case letters and 6 to 9 digits (``E12345678``,
  ``G12345678``, ``K12345678``), or 9 digits, right after 护照 or passport (and 号码, 号, no., number, #);
* UnionPay numbers that fail the Luhn check (``credit_card``): ``62`` and 14 to 17 more digits right after a
  card word (卡号, 银行卡, 借记卡, 信用卡, 储蓄卡, 银联卡, 账号, 帐号, 卡). Some debit cards issued in China do
  not satisfy Luhn, so without a card word such a number is left alone; Luhn-valid cards are found anywhere
  by :func:`~.finders.find_card`.

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "手机13812345678，身份证11010519491231002X，订单号2023122513812345678"
    >>> [(entity, t[s:e]) for s, e, entity in find_chinese(t, text_shape(t))]
    [('phone', '13812345678'), ('national_id', '11010519491231002X')]
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from .checksums import card_issuer_ok, cn_id_valid, cn_legacy_id_valid, hk_id_valid, luhn_valid, tw_id_valid
from .shape import CJK_RANGES

__all__ = ["CHINESE_TYPES", "ends_number", "find_chinese", "match_cn_landline", "match_cn_mobile_grouped",
           "starts_number"]

#: The entity types :func:`find_chinese` reports.
CHINESE_TYPES = frozenset({"phone", "national_id", "passport", "credit_card"})

# In the shape ASCII digits are "0", ASCII letters "A"/"a", other letters and digits "a"; characters of
# scripts written without spaces are "?" (not word characters).
_SHAPE_WORD = frozenset("0aA_")
# the end of a number: no word character after it, and no digit after a joining "-", ".", "," or "/"
_END = r"(?!\w|[\-.,/]0)"

# One scan of the shape finds what find_chinese starts from: runs of 9 or more digits
# (mobile, identity, Taiwan and passport numbers), runs of 7 or 8 digits after a letter (passport numbers)
# and 6 digits followed by a check character in parentheses (Hong Kong). All start with the literal
# "000000", so the scan is fast. Mobile numbers grouped 3-4-4 are found from the North American tails
# "000 0000" that find_phone scans for anyway (match_cn_mobile_grouped).
_GROUPS = re.compile(r"000000(?:000+| ?[(?][0A][)?]|0(?:0(?!0)(?<=A00000000)|(?!0)(?<=A0000000)))")
_MOBILE_GROUPED = re.compile(r"000(?P<sep>[ \-])0000(?P=sep)0000" + _END)
_MOBILE_CC = re.compile(r"(?:[(（]\s?(?:\+|00[ \-]?)86\s?[)）]|(?:\+|00)86)[ \-]?\Z")

# Numbers with less structure (a plain 11-digit mobile number, a Taiwan number, the 15-digit identity number)
# count only in context: a CJK character within _NEAR characters, or a phone or identity word just before
_NEAR = 40
_CJK_CHAR = re.compile(f"[{CJK_RANGES}]")
_PHONE_CONTEXT = re.compile(r"(?:tel|phone|mobile|mob|cell|fax|call|contact|whatsapp|wechat|sms)\b", re.IGNORECASE)
_ID_CONTEXT = re.compile(r"(?:taiwan|identi(?:ty|fication)|\bid\s*(?:card|no\b|number|#))", re.IGNORECASE)

_AREA = r"0(?:10|2[0-9]|[3-9][0-9]{2})"
_LOCAL = r"[2-9](?:[0-9]{6,7}|[0-9]{2,3}[ \-][0-9]{4})"
_LANDLINE = re.compile(rf"(?:[(（]{_AREA}[)）] ?|{_AREA}[ \-]?){_LOCAL}(?:-[0-9]{{1,5}})?"
                       r"(?![0-9A-Za-z_]|[\-.,/][0-9])")
_ZH_PHONE_WORD = re.compile(r"(?:电话|手机|座机|固话|传真|热线|联系方式|致电|拨打|来电|联系)(?:号码|号)?"
                            r"\s*[:：]?\s*(?:为|是)?\s*")
# the passport word right before a passport number (searched in the few characters before a candidate)
_PASSPORT_WORD = re.compile(r"(?:护照|passport)(?:\s*(?:号码|号|no\.?|number|num\.?|#))?\s*[:：#]?\s*(?:为|是)?\s*\Z",
                            re.IGNORECASE)
_CARD_WORD = re.compile(r"(?:银行卡|借记卡|信用卡|储蓄卡|银联卡|卡号|账号|帐号|卡)(?:号码|号)?\s*[:：]?\s*(?:为|是)?\s*"
                        r"(62[0-9]{14,17}|62[0-9]{2}(?: [0-9]{4}){3}(?: [0-9]{1,3})?)(?![0-9A-Za-z_]|[\-.,/][0-9])")


def ends_number(shape: str, e: int) -> bool:
    """True when a number may end at ``e``: no word character after it, and no digit after a joining ``-``,
    ``.``, ``,`` or ``/``."""
    if e >= len(shape):
        return True
    ch = shape[e]
    if ch in _SHAPE_WORD:
        return False
    return not (ch in "-.,/" and e + 1 < len(shape) and shape[e + 1] == "0")


def starts_number(shape: str, s: int) -> bool:
    """True when a number may start at ``s``: not after a letter, a digit or ``_``, nor after a digit and a
    joining ``-``, ``.``, ``,``, ``/`` or ``+`` (the tail of a longer number, a decimal, a code)."""
    if s == 0:
        return True
    ch = shape[s - 1]
    if ch in _SHAPE_WORD:
        return False
    if ch in "-.,/+":
        return s < 2 or shape[s - 2] not in _SHAPE_WORD
    return True


def _in_context(text: str, s: int, e: int, words: "re.Pattern[str]") -> bool:
    """True when a CJK character is within ``_NEAR`` characters of ``text[s:e]``, or one of ``words`` ends in
    the ``_NEAR`` characters before it."""
    if not text.isascii() and _CJK_CHAR.search(text, max(0, s - _NEAR), e + _NEAR) is not None:
        return True
    return words.search(text, max(0, s - _NEAR), s) is not None


def find_chinese(text: str, shape: str) -> List[Tuple[int, int, str]]:
    """Chinese personal data in one pass: ``(start, end, entity)`` for mobile numbers written without groups
    and landlines after a phone word (``phone``), identity numbers of the mainland, Hong Kong and Taiwan
    (``national_id``), passport numbers after a passport word (``passport``), and UnionPay numbers after a
    card word (``credit_card``). Grouped mobile numbers are found by :func:`match_cn_mobile_grouped`.

    One scan of the shape (:data:`_GROUPS`) gives every digit run to look at, whatever it turns out to be.
    """
    out: List[Tuple[int, int, str]] = []
    # every match starts with six digits; str.find looks for them three times faster than the pattern's scan
    for m in (_GROUPS.finditer(shape) if "000000" in shape else ()):
        d, e = m.span()
        n = e - d
        if shape[e - 1] != "0":
            span = _hk_id_span(text, shape, d, e)
            if span is not None:
                out.append((*span, "national_id"))
            continue
        if n <= 9:
            span = _passport_span(text, shape, d, e)
            if span is not None:
                out.append((*span, "passport"))
            if n == 9:
                span = _tw_id_span(text, shape, d, e)
                if span is not None:
                    out.append((*span, "national_id"))
            continue
        if n == 11:
            span = _mobile_span(text, shape, d, e, False)
        elif (n == 13 and text.startswith("86", d) and d > 0 and text[d - 1] == "+") or (
                n == 15 and text.startswith("0086", d)):
            span = _mobile_span(text, shape, e - 11, e, True)  # +8613812345678, 008613812345678
        else:
            span = None
        if span is not None:
            out.append((*span, "phone"))
        if n in (15, 17, 18):
            span = _cn_id_span(text, shape, d, e)
            if span is not None:
                out.append((*span, "national_id"))
    if not text.isascii():
        out += [(s, e, "phone") for s, e in _find_cn_landline(text)]
        out += [(s, e, "credit_card") for s, e in _find_cn_card_after_word(text)]
    return out


def match_cn_mobile_grouped(text: str, shape: str, p: int) -> Optional[Tuple[int, int]]:
    """A mobile number grouped 3-4-4 (``138 1234 5678``, ``138-1234-5678``, ``+86 138 1234 5678``) of which a
    North American tail ``000 0000`` found at ``p`` is a part (the first two groups when spaced, the last two
    when hyphenated), or ``None``. :func:`~.finders.find_phone` calls it for every such tail."""
    for s in (p, p - 5):
        if s >= 0:
            m = _MOBILE_GROUPED.match(shape, s)
            if m is not None:
                return _mobile_span(text, shape, s, m.end(), True)
    return None


def _mobile_span(text: str, shape: str, s: int, e: int, grouped: bool) -> Optional[Tuple[int, int]]:
    """The span of the mainland mobile number ``text[s:e]`` with its country code, or ``None`` when it is none.

    Mobile numbers: ``13812345678``, ``138 1234 5678``, ``138-1234-5678``, with an optional
    ``+86``/``0086``/``(+86)``/``(00-86)`` before them; never part of a longer digit run. Eleven digits
    written without separators and without a country code are ids as often as phone numbers in English
    mail (``msgid=17090200005``, ``ESMTP id 17919294133``): they count when Chinese text is near or a phone
    word (tel, phone, mobile, cell, fax, call, contact, WhatsApp, WeChat, SMS) is just before them."""
    if text[s] != "1" or text[s + 1] not in "3456789" or not ends_number(shape, e):
        return None
    cc = _MOBILE_CC.search(text, max(0, s - 10), s)
    if cc is not None:
        s = cc.start()
    elif not grouped and not _in_context(text, s, e, _PHONE_CONTEXT):
        return None
    if text[s] == "+":
        return None if s > 0 and shape[s - 1] in _SHAPE_WORD else (s, e)
    return (s, e) if starts_number(shape, s) else None


def match_cn_landline(text: str, pos: int) -> Optional[Tuple[int, int]]:
    """The span of a mainland landline number (area code and local number) starting exactly at ``pos``, or
    ``None``. Called right after a phone word."""
    m = _LANDLINE.match(text, pos)
    return m.span() if m is not None else None


def _find_cn_landline(text: str) -> List[Tuple[int, int]]:
    """Mainland landlines with their area code right after a Chinese phone word (``电话：010-62345678``,
    ``座机(0755)2345678``, ``传真0571-87654321-8001``)."""
    if not any(ch in text for ch in "话机真线系电拨"):  # a character of every phone word
        return []
    out = []
    for w in _ZH_PHONE_WORD.finditer(text):
        span = match_cn_landline(text, w.end())
        if span is not None:
            out.append(span)
    return out


def _cn_id_span(text: str, shape: str, s: int, e: int) -> Optional[Tuple[int, int]]:
    """Mainland resident identity numbers: 18 characters (province, birth date, MOD 11-2 check character) or
    the 15-digit form (province, birth date; not when the digits are a valid payment card number; about 1
    in 80 random 15-digit numbers passes these checks, so only with Chinese text near or an identity word
    (identity, identification, ID card, ID no., ID number, Taiwan) just before)."""
    n = e - s
    if n == 17 and e < len(text) and text[e] in "Xx":
        e += 1
        n = 18
    if n not in (15, 18) or not starts_number(shape, s) or not ends_number(shape, e):
        return None
    if n == 18:
        return (s, e) if cn_id_valid(text[s:e]) else None
    digits = text[s:e]
    if (cn_legacy_id_valid(digits) and not (card_issuer_ok(digits) and luhn_valid(digits))
            and _in_context(text, s, e, _ID_CONTEXT)):
        return (s, e)
    return None


def _hk_id_span(text: str, shape: str, d: int, e: int) -> Optional[Tuple[int, int]]:
    """Hong Kong identity card numbers with the check digit in parentheses: ``A123456(3)``, ``AB987654(3)``,
    ``C123456（9）``; letters upper case, check digit verified. ``text[d:e]`` is ``123456(3)``."""
    if text[e - 3] not in "(（" or text[e - 1] not in ")）":
        return None
    s = d - 1
    if s < 0 or shape[s] != "A":
        return None
    if s > 0 and shape[s - 1] == "A":
        s -= 1
    if s > 0 and shape[s - 1] in _SHAPE_WORD:
        return None
    return (s, e) if hk_id_valid(text[s:d + 6], text[e - 2]) else None


def _tw_id_span(text: str, shape: str, d: int, e: int) -> Optional[Tuple[int, int]]:
    """Taiwan national identification numbers: an upper-case letter, ``1``/``2`` (``8``/``9`` for foreign
    residents), eight digits; checksum verified. One in ten random letter-and-nine-digit tokens passes the
    checksum (mail servers' queue ids such as ``ESMTP id A267534215``), so only with Chinese text near or an
    identity word just before, as for the 15-digit identity number. ``text[d:e]`` is the nine digits."""
    s = d - 1
    if s < 0 or shape[s] != "A" or (s > 0 and shape[s - 1] in _SHAPE_WORD) or not ends_number(shape, e):
        return None
    return (s, e) if tw_id_valid(text[s:e]) and _in_context(text, s, e, _ID_CONTEXT) else None


def _passport_span(text: str, shape: str, d: int, e: int) -> Optional[Tuple[int, int]]:
    """Passport numbers right after a passport word (护照 or passport, then optionally 号码, 号, no., number,
    num., #, a colon): one or two upper-case letters and 7 to 9 digits (``护照号码：E12345678``, ``EA1234567``,
    ``passport no. G12345678``) or 9 digits. ``text[d:e]`` is the digits."""
    if not ends_number(shape, e):
        return None
    s = d
    while s > 0 and d - s < 2 and shape[s - 1] == "A":
        s -= 1
    if (s == d and e - d != 9) or (s > 0 and shape[s - 1] in _SHAPE_WORD):
        return None
    return (s, e) if _PASSPORT_WORD.search(text, max(0, s - 24), s) is not None else None


def _find_cn_card_after_word(text: str) -> List[Tuple[int, int]]:
    """UnionPay numbers (``62``, 16 to 19 digits, plain or grouped by four) right after a Chinese card word,
    Luhn or not (``卡号6222021234567890123``)."""
    if not any(ch in text for ch in "卡账帐"):  # a character of every card word
        return []
    out = []
    for m in _CARD_WORD.finditer(text):
        digits = m.group(1).replace(" ", "")
        if 16 <= len(digits) <= 19:
            out.append(m.span(1))
    return out
