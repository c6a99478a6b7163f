"""Per-entity finders: compiled patterns that propose candidates, and the validators that keep the real ones.

Each finder takes ``(text, shape)`` (:func:`~torchdataguard.pii.detectors.shape.text_shape`) and returns the
``(start, end)`` spans it found, overlaps included; :mod:`.overlap` then keeps one detection per character.
A text is scanned only by the finders whose cheap pre-check (a digit, a character or prefix that must appear)
holds. Everything here is module-level and stateless, so it pickles for DataLoader workers at no cost.

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "card 4111 1111 1111 1111 or 4111 1111 1111 1112"
    >>> find_card(t, text_shape(t))
    [(5, 24)]
"""
from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Callable, Dict, List, Optional, Tuple

from .checksums import IBAN_LENGTHS, card_issuer_ok, iban_valid, luhn_valid, ssn_valid
from .context import is_version_context
from .finders_el import find_greek_phone
from .finders_ko import find_korean_phone
from .finders_phone import find_phone, phone_word_lower
from .finders_zh import CHINESE_TYPES, find_chinese
from .secrets import find_secret
from .shape import UNSPACED_RANGES, is_cjk

__all__ = ["ASCII_DIGITS", "FINDERS", "HEX_COLON", "MIN_DIGITS", "MULTI_FINDERS", "MULTI_MIN_DIGITS", "find_card",
           "find_email", "find_iban", "find_ipv4", "find_ipv6", "find_phone", "find_ssn", "phone_word_lower"]

# ---------------------------------------------------------------------------------------------------
# patterns (most are matched on the shape of the text: see .shape)
# ---------------------------------------------------------------------------------------------------
ASCII_DIGITS = frozenset("0123456789")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_%+-.='")
# a word character that does not belong to a script written without spaces (Han, kana, Hangul): next to
# those, a value ends (jane@example.com联系我, IP是10.0.0.1的)
_WORD_NOT_CJK = f"[^\\W{UNSPACED_RANGES}]"
# labels of letters and digits (any script: bücher.de, 例え.jp) and hyphens; the top-level label is letters,
# of one kind: CJK (例子.中国) or not (.com, .рф), or an IDNA label (xn--p1ai). A run of two or more "-" or "_"
# after it is a separator line, not part of the address (walter@profits2you.com-----)
_EMAIL_LABELS = r"(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
_EMAIL_IDNA_TLD = r"[Xx][Nn]--[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
# the same for a text with non-ASCII characters, where combining marks (category M: vowel signs, viramas) are
# letters of a label after its first character (उदाहरण.भारत, ตัวอย่าง.ไทย, இந்தியா) and a value ends next to a
# script written without spaces (U); "<M>" stands for the class of the marks, built on first use
# (:func:`_domain_pattern`). Until 2026-12-07 a mark ended a label: info@उदाहरण.भारत was not found,
# a@example.இந்தியா was found as a@example.இந
_L = r"[^\W_]"
_LM = r"(?:[^\W_]|[<M>])"
_EMAIL_END = r"(?:(?=--|__)|(?![^\W<U>]|[<M>]|-|\.[^\W_]))"
_EMAIL_DOMAIN_M = (rf"(?:{_L}(?:(?:{_LM}|-){{0,61}}{_LM})?\.)+(?:{_EMAIL_IDNA_TLD}{_EMAIL_END}"
                   rf"|[^\W\d_<U>](?:[^\W\d_<U>]|[<M>]){{1,23}}{_EMAIL_END}"
                   rf"|(?=[<U>])[^\W\d_](?:(?=[<U>])(?:[^\W\d_]|[<M>])){{1,23}}"
                   r"(?:(?=--|__)|(?![\w\-]|[<M>]|\.[^\W_])))")
# the same for a text of ASCII characters only (no CJK to tell apart: a smaller, faster pattern)
_EMAIL_DOMAIN_ASCII = re.compile(rf"{_EMAIL_LABELS}(?:{_EMAIL_IDNA_TLD}|[A-Za-z]{{2,24}})"
                                 r"(?:(?=--|__)|(?![\w\-]|\.[^\W_]))")
_DOMAIN: List["re.Pattern[str]"] = []  # _EMAIL_DOMAIN_M compiled


def _domain_pattern() -> "re.Pattern[str]":
    """:data:`_EMAIL_DOMAIN_M` compiled, with the combining marks of the BMP from ``unicodedata`` (found and
    compiled on first use, in about 0.2 s that an import of the package does not pay). Marks beyond it (historic
    scripts, variation selectors) are left out: a class of BMP characters is a bitmap, the quickest; with them,
    the pattern took 2.4 times as long on the SpamAssassin mails with an "@" and non-ASCII text."""
    if not _DOMAIN:
        marks = [c for c in range(0x300, 0x10000) if unicodedata.category(chr(c))[0] == "M"]
        runs: List[List[int]] = []
        for c in marks:
            if runs and runs[-1][1] == c - 1:
                runs[-1][1] = c
            else:
                runs.append([c, c])
        cls = "".join(chr(a) + "-" + chr(b) for a, b in runs)
        _DOMAIN[:] = [re.compile(_EMAIL_DOMAIN_M.replace("<M>", cls).replace("<U>", UNSPACED_RANGES))]
    return _DOMAIN[0]


# IPv4: anchored on the first dot, the first octet is read backwards
# (written "00{0,2}" rather than "0{1,3}", the same thing, so that the scan looks for the literal ".0" and
# not for every ".")
_IPV4_TAIL = re.compile(r"\.00{0,2}\.00{0,2}\.00{0,2}(?!\w|\.0)")

# IPv6: anchored on "::" or on three colon-separated groups (every IPv6 address has one of the two)
_IPV6_ANCHOR = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV6 = re.compile(r"(?:[0-9A-Fa-f]{1,4}:|::?)(?:[0-9A-Fa-f]{0,4}:){1,7}"
                   rf"(?:(?:\d{{1,3}}\.){{3}}\d{{1,3}}|[0-9A-Fa-f]{{1,4}})?(?!{_WORD_NOT_CJK}|:|\.\w)")
HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_HEX_COLON_RUN = re.compile(r"[0-9A-Fa-f:]*")

# payment cards: 13-19 digits, or groups of 4-4-4-(1..7), 4-4-4-4-(1..3) or 4-6-(4..5) separated by one space
# or hyphen
_CARD_PATTERNS = (
    re.compile(r"0000000000000(?<![\w.,\-].{13})0{0,6}(?![\w\-]|[.,]0)"),
    re.compile(r"0000([ \-])0000\1(?<![\w.,\-].{10})0000\1(?:0{1,7})(?![\w\-]|[.,]0)"),
    re.compile(r"0000([ \-])0000\1(?<![\w.,\-].{10})0000\1(?:0000)\1(?:0{1,3})(?![\w\-]|[.,]0)"),
    re.compile(r"0000([ \-])000000\1(?<![\w.,\-].{12})00000?(?![\w\-]|[.,]0)"),
)

# IBAN: two upper-case letters, two check digits, then upper-case letters and digits in optional groups
_IBAN_SHAPE = re.compile(r"AA00(?<!\w.{4})(?: ?[A0]){11,31}(?!\w)")

# US SSN: 3-2-4 digits with hyphens or single spaces
_SSN_PATTERNS = (
    re.compile(r"000-00-0000(?<![\w.\-].{11})(?![\w\-]|\.0)"),
    re.compile(r"000 00 0000(?<![\w.\-].{11})(?![\w\-]|\.0)"),
)

# the literal each pattern starts with; the patterns run only on a shape holding it (see _PREFIX_NOTE)
_SSN_LITERALS = ("000-00-0000", "000 00 0000")
# _PREFIX_NOTE: a pattern that starts with a literal scans the text for it at about 1 ns a character, str.find
# (``in``) at a third of that, so finders look for the literal with ``in`` before running a pattern that
# rarely matches (a test runs each finder with every such check answering yes, and compares)



# ---------------------------------------------------------------------------------------------------
# per-type finders: (text, shape) -> list of (start, end)
# ---------------------------------------------------------------------------------------------------
def find_email(text: str, shape: str) -> List[Tuple[int, int]]:
    # anchored on "@": the domain is matched forwards, the local part read backwards
    out: List[Tuple[int, int]] = []
    at = text.find("@")
    if at < 0:
        return out
    ascii_text = text.isascii()
    domain = _EMAIL_DOMAIN_ASCII if ascii_text else _domain_pattern()
    floor = 0  # a local part may not reach into the previous address
    while at >= 0:
        m = domain.match(text, at + 1)
        if m is not None:
            lo = max(floor, at - 65)
            j = at
            if ascii_text or text[lo:at].isascii():
                while j > lo and text[j - 1] in _LOCAL_CHARS:
                    j -= 1
            else:
                j = _local_start(text, at, lo)
            i = j
            while i < at and text[i] in ".='":  # quotes and dots before the address are not part of it
                i += 1
            # the run must start at a boundary: the text's start, a non-address character, a change between
            # a CJK script and ASCII (邮箱jane@, a张三@), or the end of the previous address (which a
            # placeholder will replace)
            ok = (0 < at - i <= 64 and ".." not in text[i:at]
                  and (j == 0 or (j == floor and floor > 0)
                       or not (text[j - 1].isalnum() or text[j - 1] in _LOCAL_CHARS)
                       or (not ascii_text and _script_change(text[j - 1], text[j:at]))))
            if ok:
                out.append((i, m.end()))
                floor = m.end()
                at = text.find("@", m.end())
                continue
        at = text.find("@", at + 1)
    return out


def _local_start(text: str, at: int, lo: int) -> int:
    """Where the local part before ``text[at] == "@"`` starts (no further left than ``lo``): ASCII address
    characters and letters, digits and combining marks of any script (müller@, josé@, राम@, குமார்@: until
    2026-12-07 a vowel sign or virama ended the part, so राम@ was found as म@, and குமார்@, which ends in one, not at
    all); CJK characters only in a local part without ASCII characters (张三@例子.中国), so 邮箱jane@ starts at
    ``j``. A local part does not start with a mark (✉️jane@example.com is jane@...: the emoji's variation selector
    was taken with it for a while on 2026-12-07, and the address had another pseudonym than the same one elsewhere)."""
    j = at
    has_ascii = has_cjk = False
    while j > lo:
        ch = text[j - 1]
        if ch in _LOCAL_CHARS:
            if has_cjk:
                break
            has_ascii = True
        elif not ch.isascii() and (ch.isalnum() or unicodedata.category(ch)[0] == "M"):
            if is_cjk(ch):
                if has_ascii:
                    break
                has_cjk = True
        else:
            break
        j -= 1
    while j < at and unicodedata.category(text[j])[0] == "M":  # a mark with no letter of the part before it:
        j += 1  # an emoji's variation selector (✉️jane@), a mark on a quote: not the address's
    return j


def _script_change(before: str, local: str) -> bool:
    """True when ``before`` (the character left of a local part) ends the part only by a change of script."""
    if before in _LOCAL_CHARS:
        return any(is_cjk(ch) for ch in local)
    return is_cjk(before) and any(ch in _LOCAL_CHARS for ch in local)


def _octet_ok(s: str) -> bool:
    return len(s) <= 3 and (s == "0" or s[0] != "0") and int(s) <= 255


def find_ipv4(text: str, shape: str, versions: Optional[List[Tuple[int, int]]] = None) -> List[Tuple[int, int]]:
    out = []
    for m in _IPV4_TAIL.finditer(shape):
        dot = m.start()
        i = dot
        while i > 0 and shape[i - 1] == "0" and dot - i < 4:
            i -= 1
        if i == dot or dot - i > 3:
            continue
        if i > 0 and (shape[i - 1] == "." or shape[i - 1].isalnum() or shape[i - 1] == "_"):
            continue
        e = m.end()
        parts = text[i:e].split(".")
        if all(_octet_ok(p) for p in parts):
            if not is_version_context(text, i, e):
                out.append((i, e))
            elif versions is not None:
                versions.append((i, e))
    return out


def find_ipv6(text: str, shape: str) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    pos = 0
    while True:
        a = _IPV6_ANCHOR.search(text, pos)
        if a is None:
            return out
        s = a.start()
        lo = max(0, s - 40)
        while s > lo and text[s - 1] in HEX_COLON:
            s -= 1
        if s == lo and s > 0 and text[s - 1] in HEX_COLON:
            # a run of hex digits and colons longer than any address: skip all of it
            pos = max(a.end(), _HEX_COLON_RUN.match(text, a.start()).end())
            continue
        if s > 0 and ((text[s - 1].isalnum() and not is_cjk(text[s - 1])) or text[s - 1] in "_."):
            pos = a.end()
            continue
        m = _IPV6.match(text, s)
        if m is None or m.end() <= a.start():
            pos = a.end()
            continue
        pos = m.end()
        cand = m.group()
        if cand.count(":") < 2 or not any(ch in ASCII_DIGITS for ch in cand):
            continue
        try:
            ipaddress.IPv6Address(cand)
        except ValueError:
            continue
        head = cand.rsplit(":", 1)[0] if "." in cand else cand
        hexdigits = sum(ch != ":" for ch in head)
        groups = sum(1 for g in head.split(":") if g)
        if hexdigits < 4 and groups < 8:
            continue
        out.append(m.span())


def find_card(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    spaced = False  # whether 4-4-4-(1..7) matched: a 4-4-4-4-(1..3) number with spaces is one of those
    # every match of the grouped patterns starts with two groups of four digits
    grouped = "0000 0000" in shape or "0000-0000" in shape
    for k, rx in enumerate(_CARD_PATTERNS):
        if k == 0 and "0000000000000" not in shape:  # the literal it starts with (see _PREFIX_NOTE)
            continue
        if k > 0 and not grouped:
            break
        if k == 2 and not spaced and "0000-0000-0000-0000-0" not in shape:
            continue
        for m in rx.finditer(shape):
            spaced = spaced or k == 1
            s, e = m.span()
            digits = text[s:e].replace(" ", "").replace("-", "")
            if card_issuer_ok(digits) and luhn_valid(digits):
                out.append((s, e))
    return out


def find_iban(text: str, shape: str) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    if "AA00" not in shape:  # the literal _IBAN_SHAPE starts with (see _PREFIX_NOTE)
        return out
    pos = 0
    while True:
        m = _IBAN_SHAPE.search(shape, pos)
        if m is None:
            return out
        s = m.start()
        pos = m.end()
        want = IBAN_LENGTHS.get(text[s:s + 2])
        if want is None:
            continue
        # take exactly the country's length of characters (single spaces allowed between groups), so a
        # second IBAN or an upper-case word after this one is not swallowed into it
        n = 0
        end = s
        for i in range(s, m.end()):
            if text[i] != " ":
                n += 1
                if n == want:
                    end = i + 1
                    break
        if n != want or (end < len(text) and ((text[end].isalnum() and not is_cjk(text[end])) or text[end] == "_")):
            continue
        if iban_valid(text[s:end].replace(" ", "")):
            out.append((s, end))
            pos = end


def find_ssn(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    for rx, literal in zip(_SSN_PATTERNS, _SSN_LITERALS):
        if literal not in shape:  # str.find is faster than the pattern's scan for its literal start
            continue
        for m in rx.finditer(shape):
            s, e = m.span()
            if ssn_valid(text[s:s + 3], text[s + 4:s + 6], text[s + 7:e]):
                out.append((s, e))
    return out


Finder = Callable[[str, str], List[Tuple[int, int]]]

#: entity type -> (needs a digit, its finders)
FINDERS: Dict[str, Tuple[bool, Tuple[Finder, ...]]] = {
    "secret": (False, (find_secret,)),
    "email": (False, (find_email,)),
    "iban": (True, (find_iban,)),
    "national_id": (True, ()),  # find_chinese
    "credit_card": (True, (find_card,)),
    "us_ssn": (True, (find_ssn,)),
    "passport": (True, ()),  # find_chinese
    "ipv6": (False, (find_ipv6,)),
    "ipv4": (True, (find_ipv4,)),
    "phone": (True, (find_phone, find_korean_phone, find_greek_phone)),
}

#: entity type -> the fewest ASCII digits a text must hold for its finders to find anything (each pattern's
#: shortest match: 13 for a card, 9 for an SSN, 4 for a dotted quad, 7 for a phone number...). Texts with
#: fewer skip them; a test checks each bound against the finders on random texts.
MIN_DIGITS: Dict[str, int] = {"secret": 0, "email": 0, "iban": 2, "national_id": 6, "credit_card": 13, "us_ssn": 9,
                              "passport": 6, "ipv6": 0, "ipv4": 4, "phone": 7}

#: finders that serve several entity types in one pass: (the types, needs a digit, finder returning
#: ``(start, end, entity)``)
MULTI_FINDERS: Tuple[Tuple[frozenset, bool, Callable[[str, str], List[Tuple[int, int, str]]]], ...] = (
    (CHINESE_TYPES, True, find_chinese),
)
#: the fewest ASCII digits a text must hold for each of :data:`MULTI_FINDERS` to find anything (a Hong Kong
#: identity number has six and a check character)
MULTI_MIN_DIGITS: Tuple[int, ...] = (6,)

