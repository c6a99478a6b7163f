"""Finders for Chinese personal data: mainland phone numbers, identity numbers of the mainland, Hong Kong and
Taiwan, passport numbers after a passport word, and UnionPay numbers after a card word.

Same contract as :mod:`.finders`: each finder takes ``(text, shape)`` and returns ``(start, end)`` spans. A
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
    >>> [t[s:e] for s, e in find_cn_mobile(t, text_shape(t)) + find_cn_id(t, text_shape(t))]
    ['13812345678', '11010519491231002X']
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from .checksums import card_issuer_ok, cn_id_valid, cn_legacy_id_valid, hk_id_valid, luhn_valid, tw_id_valid
from .shape import CJK_RANGES

__all__ = ["find_cn_card_after_word", "find_cn_id", "find_cn_landline", "find_cn_mobile", "find_hk_id",
           "find_passport", "find_tw_id", "match_cn_landline"]

# In the shape ASCII digits are "0", ASCII letters "A"/"a", other letters and digits "a"; characters of
# scripts written without spaces are "?" (not word characters).
_SHAPE_WORD = frozenset("0aA_")
# the end of a number: no word character after it, and no digit after a joining "-", ".", "," or "/"
_END = r"(?!\w|[\-.,/]0)"

_MOBILE = re.compile(r"000(?P<sep>[ \-]?)0000(?P=sep)0000" + _END)
_MOBILE_CC = re.compile(r"(?:[(（]\s?(?:\+|00[ \-]?)86\s?[)）]|(?:\+|00)86)[ \-]?\Z")
_ID18 = re.compile(r"00000000000000000[0Aa]" + _END)
_ID15 = re.compile(r"000000000000000" + _END)
_HK = re.compile(r"000000 ?[(?][0A][)?]")
_TW = re.compile(r"A000000000" + _END)

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
_PASSPORT = re.compile(r"(?:护照|passport)(?:\s*(?:号码|号|no\.?|number|num\.?|#))?\s*[:：#]?\s*(?:为|是)?\s*"
                       r"(?-i:([A-Z]{1,2}[0-9]{6,9}|[0-9]{9}))(?![0-9A-Za-z_]|[\-.,/][0-9])", re.IGNORECASE)
_CARD_WORD = re.compile(r"(?:银行卡|借记卡|信用卡|储蓄卡|银联卡|卡号|账号|帐号|卡)(?:号码|号)?\s*[:：]?\s*(?:为|是)?\s*"
                        r"(62[0-9]{14,17}|62[0-9]{2}(?: [0-9]{4}){3}(?: [0-9]{1,3})?)(?![0-9A-Za-z_]|[\-.,/][0-9])")


def _starts_number(shape: str, s: int) -> bool:
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


def find_cn_mobile(text: str, shape: str) -> List[Tuple[int, int]]:
    """Mainland mobile numbers: ``13812345678``, ``138 1234 5678``, ``138-1234-5678``, with an optional
    ``+86``/``0086``/``(+86)``/``(00-86)`` before them; never part of a longer digit run. Eleven digits
    written without separators and without a country code are ids as often as phone numbers in English
    mail (``msgid=17090200005``, ``ESMTP id 17919294133``): they count when Chinese text is near or a phone
    word (tel, phone, mobile, cell, fax, call, contact, WhatsApp, WeChat, SMS) is just before them."""
    out = []
    for m in _MOBILE.finditer(shape):
        s, e = m.span()
        if text[s] != "1" or text[s + 1] not in "3456789":
            continue
        cc = _MOBILE_CC.search(text, max(0, s - 10), s)
        if cc is not None:
            s = cc.start()
        elif not m.group("sep") and not _in_context(text, s, e, _PHONE_CONTEXT):
            continue
        if text[s] != "+" and not _starts_number(shape, s):
            continue
        if text[s] == "+" and s > 0 and shape[s - 1] in _SHAPE_WORD:
            continue
        out.append((s, e))
    return out


def match_cn_landline(text: str, pos: int) -> Optional[Tuple[int, int]]:
    """The span of a mainland landline number (area code and local number) starting exactly at ``pos``, or
    ``None``. Called right after a phone word."""
    m = _LANDLINE.match(text, pos)
    return m.span() if m is not None else None


def find_cn_landline(text: str, shape: str) -> List[Tuple[int, int]]:
    """Mainland landlines with their area code right after a Chinese phone word (``电话：010-62345678``,
    ``座机(0755)2345678``, ``传真0571-87654321-8001``)."""
    if text.isascii():
        return []
    out = []
    for w in _ZH_PHONE_WORD.finditer(text):
        span = match_cn_landline(text, w.end())
        if span is not None:
            out.append(span)
    return out


def find_cn_id(text: str, shape: str) -> List[Tuple[int, int]]:
    """Mainland resident identity numbers: 18 characters (province, birth date, MOD 11-2 check character) or
    the 15-digit form (province, birth date; not when the digits are a valid payment card number; about 1
    in 80 random 15-digit numbers passes these checks, so only with Chinese text near or an identity word
    (identity, identification, ID card, ID no., ID number, Taiwan) just before)."""
    out = []
    for m in _ID18.finditer(shape):
        s, e = m.span()
        if _starts_number(shape, s) and cn_id_valid(text[s:e]):
            out.append((s, e))
    for m in _ID15.finditer(shape):
        s, e = m.span()
        if not _starts_number(shape, s):
            continue
        digits = text[s:e]
        if (cn_legacy_id_valid(digits) and not (card_issuer_ok(digits) and luhn_valid(digits))
                and _in_context(text, s, e, _ID_CONTEXT)):
            out.append((s, e))
    return out


def find_hk_id(text: str, shape: str) -> List[Tuple[int, int]]:
    """Hong Kong identity card numbers with the check digit in parentheses: ``A123456(3)``, ``AB987654(3)``,
    ``C123456（9）``; letters upper case, check digit verified."""
    out = []
    for m in _HK.finditer(shape):
        d, e = m.span()
        if text[e - 3] not in "(（" or text[e - 1] not in ")）":
            continue
        s = d - 1
        if s < 0 or shape[s] != "A":
            continue
        if s > 0 and shape[s - 1] == "A":
            s -= 1
        if s > 0 and shape[s - 1] in _SHAPE_WORD:
            continue
        if hk_id_valid(text[s:d + 6], text[e - 2]):
            out.append((s, e))
    return out


def find_tw_id(text: str, shape: str) -> List[Tuple[int, int]]:
    """Taiwan national identification numbers: an upper-case letter, ``1``/``2`` (``8``/``9`` for foreign
    residents), eight digits; checksum verified. One in ten random letter-and-nine-digit tokens passes the
    checksum (mail servers' queue ids such as ``ESMTP id A267534215``), so only with Chinese text near or an
    identity word just before, as for the 15-digit identity number."""
    out = []
    for m in _TW.finditer(shape):
        s, e = m.span()
        if s > 0 and shape[s - 1] in _SHAPE_WORD:
            continue
        if tw_id_valid(text[s:e]) and _in_context(text, s, e, _ID_CONTEXT):
            out.append((s, e))
    return out


def find_passport(text: str, shape: str) -> List[Tuple[int, int]]:
    """Passport numbers right after a passport word: ``护照号码：E12345678``, ``passport no. G12345678``."""
    if "护照" not in text and "assport" not in text and "ASSPORT" not in text:
        return []
    return [m.span(1) for m in _PASSPORT.finditer(text)]


def find_cn_card_after_word(text: str, shape: str) -> List[Tuple[int, int]]:
    """UnionPay numbers (``62``, 16 to 19 digits, plain or grouped by four) right after a Chinese card word,
    Luhn or not (``卡号6222021234567890123``)."""
    if text.isascii():
        return []
    out = []
    for m in _CARD_WORD.finditer(text):
        digits = m.group(1).replace(" ", "")
        if 16 <= len(digits) <= 19:
            out.append(m.span(1))
    return out
