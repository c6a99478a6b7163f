"""Finders for phone numbers (entity ``phone``) but the South Korean (:mod:`.finders_ko`) and Greek
(:mod:`.finders_el`) ones: international numbers after ``+``, North American numbers with separators, national
numbers with a trunk 0 right after a phone word, Russian numbers with the trunk 8, numbers with a country code
but no ``+`` (``852-26982550``) and 8-digit numbers (Hong Kong, Singapore) right after one, and (through
:mod:`.finders_zh`) mainland Chinese mobiles and landlines. A lower-case ``call`` in disassembly
(``call   40052300 <puts@plt>``) is an instruction, not a phone word.

Example:
    >>> from torchdataguard.pii.detectors.shape import text_shape
    >>> t = "Tel.: 030 1234567 or +1 (415) 555-0100"
    >>> [t[s:e] for s, e in find_phone(t, text_shape(t))]
    ['+1 (415) 555-0100', '030 1234567']
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from .finders_zh import match_cn_landline, match_cn_mobile_grouped
from .shape import is_cjk

__all__ = ["call_in_code", "cut_back", "find_phone", "phone_word_lower"]

# phones: "+CC ...", North American, a trunk 0 after a phone word ("tel.", "fax" ...); South Korean: finders_ko
_PHONE_INTL = re.compile(r"\+0{1,3}[ .\-]?(?:\(0{1,4}\)[ .\-]?)?0{1,4}(?:[ .\-]?0{2,4}){1,5}(?![\w\-]|[.,]0)")
_PHONE_NANP_TAIL = re.compile(r"000[ .\-]0000(?![\w\-]|[.,]0)")
_PHONE_NANP_HEAD = re.compile(r"(?P<cc>0[ .\-]?)?(?P<area>\(000\)[ .\-]?|000[ .\-])\Z")
# Phone words: English and the common European words (German, French, Spanish, Portuguese, Italian, Nordic),
# Indonesian, Vietnamese, Arabic, Persian, Urdu, Hebrew, Hindi, Bengali, Armenian and Georgian, matched as whole
# words; Japanese, traditional Chinese (mainland simplified words are finders_zh's) and Thai ones, matched anywhere,
# and Tamil ones, which end in a vowel sign (not a word character, so no word boundary follows them), at the start
# of a word.
_SPACED_WORDS = (r"tel(?:ephone|efon(?:nummer)?|efono|efone|epon|p)?", r"ph(?:one)?", r"fax", r"mob(?:ile?)?", r"cell",
                 r"call", r"tél(?:éphone)?", r"teléfono", r"handy", r"rufnummer", r"fon", r"tlf", r"m[óo]vil",
                 r"cel(?:ular)?", r"whatsapp", r"الهاتف", r"هاتف", r"جوال", r"موبايل", r"טלפון", r"נייד", r"פקס",
                 "\u092b\u094b\u0928", "\u092b\u093c\u094b\u0928", "\u095e\u094b\u0928", r"मोबाइल",  # फोन, फ़ोन (nukta apart or not)
                 r"тел(?:ефон(?:а|у|ом|е|ы)?)?", r"факс", r"моб(?:ильный|ільний)?", r"сотовый",  # Russian, Ukrainian
                 r"điện thoại", r"sđt", r"đt", r"di động",  # Vietnamese: telephone, tel. (số điện thoại), mobile
                 r"تلفن(?: همراه)?", r"موبایل", r"شماره تماس",  # Persian: telephone, mobile, contact number
                 r"فون", r"موبائل", r"ٹیلیفون",  # Urdu
                 r"ফোন", r"মোবাইল", r"հեռախոս", r"ტელეფონი")  # Bengali, Armenian, Georgian
_CJK_WORDS = (r"電話(?:番号)?", r"携帯(?:電話)?", r"手機", r"傳真", r"連絡先",
              r"โทร(?:ศัพท์)?", r"มือถือ", r"แฟกซ์")  # Thai (written without spaces too): tel., telephone, mobile, fax
_START_WORDS = (r"தொலைபேசி", r"கைபேசி", r"அலைபேசி")  # Tamil: telephone, mobile (twice)
# then only ".", ":", "：", "#" and whitespace, right before "0" or "(0". Each pattern starts with a letter, so
# that the engine looks for that letter fast: a pattern starting with a group or a look-behind ("(?<!\w)...",
# "s?đt") is tried at every position (the Tamil words so made the pii stage 30% slower on English mail); find_phone
# checks the letter before each match instead (tests/pii/test_pii_phone_words_more.py)
_PHONE_WORDS = tuple(re.compile(w + r"\b[.:：]?\s*[:#：]?\s*(?=\(?0)") for w in _SPACED_WORDS) + tuple(
    re.compile(w + r"[.:：]?\s*[:#：]?\s*(?=\(?0)") for w in _CJK_WORDS + _START_WORDS)
# A match of a _PHONE_WORDS pattern is a phone word, then only ".", ":", "#" and whitespace, and it ends right before
# "0" or "(0"; a number the other patterns look for after a phone word (_WORD_BEFORE) starts right after such a run,
# with a digit or "(" and a digit. Read backwards, that is a digit, maybe "(", those characters and the word
# reversed: a pattern that starts with a digit followed by one of those characters or of the words' last letters
# (a look-ahead that rejects most digits at once), with the words as a trie (no alternative is tried twice). It
# matches the reversed text whenever a phone word pattern matches the text (the converse need not hold: it is a
# gate): every form of every word is listed here (tests/pii/test_pii_shortcuts.py checks them).
_PHONE_WORD_FORMS = ("tel", "telephone", "telefon", "telefonnummer", "telefono", "telefone", "ph", "phone", "fax",
                     "mob", "mobil", "mobile", "cell", "call", "tél", "téléphone", "teléfono", "handy", "rufnummer",
                     "fon", "tlf", "móvil", "movil", "cel", "celular", "whatsapp", "هاتف", "جوال", "موبايل", "טלפון",
                     "נייד", "פקס", "\u092b\u094b\u0928", "\u092b\u093c\u094b\u0928", "\u095e\u094b\u0928", "मोबाइल",
                     "電話", "電話番号", "携帯", "携帯電話", "手機", "傳真", "連絡先", "тел", "телефон", "телефона", "телефону", "телефоном", "телефоне", "телефоны", "факс", "моб",
                     "мобильный", "мобільний", "сотовый", "โทร", "โทรศัพท์", "มือถือ", "แฟกซ์", "telepon", "telp",
                     "điện thoại", "đt", "sđt", "di động", "تلفن", "تلفن همراه", "موبایل", "شماره تماس", "فون",
                     "موبائل", "ٹیلیفون", "ফোন", "মোবাইল", "հեռախոս", "ტელეფონი", "தொலைபேசி", "கைபேசி", "அலைபேசி")


def _reversed_words(forms: Tuple[str, ...], first: str) -> str:
    """A pattern for the reversed text: ``first`` (a digit), maybe ``(``, separators and one of ``forms``
    reversed."""
    tree: Dict[str, dict] = {}
    for form in forms:
        node = tree
        for ch in form[::-1]:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: Dict[str, dict]) -> str:
        kids = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not kids:
            return ""
        body = kids[0] if len(kids) == 1 else "(?:" + "|".join(kids) + ")"
        return f"(?:{body})?" if "" in node else body

    last = "".join(sorted({f[-1] for f in forms}))
    return rf"{first}(?=\(?[\s.:#：]*[{last}])\(?[\s.:#：]*" + emit(tree)


_PHONE_WORD_REVERSED = re.compile(_reversed_words(_PHONE_WORD_FORMS, "[0-9]"))
# for ASCII text: its bytes with upper-case letters lower-cased and every digit as "0" (one fast translation), so
# that the pattern starts with the literal "0", which the engine looks for fast (a class of digits: 4 times slower)
_LOWER_DIGITS_AS_0 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ123456789", b"abcdefghijklmnopqrstuvwxyz" + b"0" * 9)
_PHONE_WORD_REVERSED_ASCII = re.compile(_reversed_words(tuple(w for w in _PHONE_WORD_FORMS if w.isascii()),
                                                        "0").replace("：", "").encode("ascii"))
# after the area code, groups of 2 to 8 digits: 020 7946 0958, 01 23 45 67 89, 030 1234567, 07700 900123,
# 07700900123 (the area code and the rest split where the digits allow), 0049 30 1234567; 9 to 12 digits in all,
# or up to 15 after the international prefix 00
# numbers without a trunk 0, after a phone word (looked for before them, in the text): Russian and Kazakh ones with
# the trunk 8 and 10 digits after it, the area code of 3 to 5 digits in brackets or not (8 (495) 123-45-67,
# 8-800-555-35-35, 89161234567, 8 (3452) 12-34-56, 8 (34535) 5-12-34; with +7 they are international); numbers with
# a country code and no "+" (852-26982550, 65 6123 4567, 7 495 123 45 67, 49 30 1234567: _COUNTRY_CODES), and
# 8-digit numbers of Hong Kong, Singapore and other plans without area codes (2345 6789, 23456789), whose first
# digit is 2 to 9
_PHONE_TRUNK8 = re.compile(r"0(?:[ \-]?\(0{3,5}\)|[ \-]?0{3,5})[ \-]?0{1,7}(?:[ \-]0{1,4}){0,3}(?![\w\-]|[.,]0)")
_PHONE_CC = re.compile(r"(?:\(0{1,3}\)|0{1,3})[ .\-](?:\(0{1,5}\)[ .\-]?)?0{1,4}(?:[ .\-]?0{1,4}){1,4}(?![\w\-]|[.,]0)")
_PHONE_EIGHT = re.compile(r"0000[ \-]?0000(?![\w\-]|[.,]0)")
# the country calling codes of ITU-T E.164 but 1 (North American numbers have their own pattern)
_COUNTRY_CODES = frozenset(
    "7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66 81 82 84 "
    "86 90 91 92 93 94 95 98 211 212 213 216 218 290 291 297 298 299 420 421 423 670 850 852 853 855 856 880 886 "
    "992 993 994 995 996 998".split()
    + [str(c) for c in (*range(220, 259), *range(260, 270), *range(350, 360), *range(370, 379), 380, 381, 382,
                        383, 385, 386, 387, 389, *range(500, 510), *range(590, 600), *range(672, 684), *range(685, 693),
                        *range(960, 969), *range(970, 978))])
# national numbers of one length in some of those plans (Hong Kong, Macao, Singapore, Denmark, Norway, the Gulf
# states, Cyprus, Central America; Iceland; Russia and Kazakhstan): "852 2698 2550 2698 2551" is one number and a
# group of the next
_NATIONAL_DIGITS = {**dict.fromkeys(("852", "853", "65", "45", "47", "974", "973", "965", "968", "357", "506", "502",
                                     "503", "504", "505"), 8), "354": 7, "7": 10}
# a lower-case "call" in disassembly: objdump's address column ("  4011a6:" and a tab) starts the line, the
# mnemonic is followed by a tab ("\tcall\t40052300"), or by spaces and then the address by a symbol
# ("call   40052300 <puts@plt>")
_ADDRESS_COLUMN = re.compile(r"[ \t]*(?:0x)?[0-9A-Fa-f]{3,}:\t")
_SYMBOL_AFTER = re.compile(r"[ \t]*<[^<>\s]+>")
# not numbers: years (2019-2020) and dates written as 8 digits (20231231)
_YEARS = re.compile(r"(?:19|20)\d\d[ \-]?(?:19|20)\d\d|(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])")
_WORD_BEFORE = re.compile(r"(?:(?<!\w)(?:" + "|".join(_SPACED_WORDS) + r")\b|(?<!\w)(?:" + "|".join(_START_WORDS)
                          + ")|" + "|".join(_CJK_WORDS)
                          + r")[.:：]?\s*[:#：]?\s*\Z")
_PHONE_TRUNK = re.compile(r"(?:\(00{1,4}\)|00{1,4})[ .\-/]?0{2,8}(?:[ .\-]0{2,8}){0,4}(?![\w\-]|[.,]0)")


def _phone_left_ok(shape: str, s: int) -> bool:
    if s == 0:
        return True
    ch = shape[s - 1]
    return not (ch.isalnum() or ch in "_+-.")


def phone_word_lower(text: str) -> Optional[str]:
    """``text.lower()`` when a phone word can stand right before a number in it, else ``None``.

    That is a phone word, then only ``.``, ``:``, ``#`` and whitespace, right before a digit or ``(`` and a
    digit (the patterns of ``_PHONE_WORDS`` look for it before ``0`` or ``(0``; ``_WORD_BEFORE`` before the
    numbers without a trunk 0): the reversed text is searched for that (:data:`_PHONE_WORD_REVERSED`; an ASCII
    text as bytes, lower-cased and with its digits as ``0``). Most texts have none, and skip those patterns. The
    result has ``text``'s length, so positions in it are positions in ``text``: a letter whose lower case is
    longer (``"İ"``) stays as it is.

    Example:
        >>> phone_word_lower("Call: 020 7946"), phone_word_lower("in 2002, 0.5% of"), phone_word_lower("İzmir Tel: 8")
        ('call: 020 7946', None, 'İzmir tel: 8')
    """
    if text.isascii():
        gate = _PHONE_WORD_REVERSED_ASCII.search(text.encode("ascii").translate(_LOWER_DIGITS_AS_0)[::-1])
        return text.lower() if gate is not None else None
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
    if lower is None:  # no phone word before a number: nothing more to find
        return out
    after_words = set()  # where a number after a phone word was looked for ("携帯電話：0...": two words end there)
    for rx in _PHONE_WORDS:
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
            if span is not None and not call_in_code(text, w.start(), span[1]):
                out.append(span)
    for rx, fit in ((_PHONE_TRUNK8, _fit_trunk8), (_PHONE_CC, _fit_country), (_PHONE_EIGHT, _fit_eight)):
        for m in rx.finditer(shape):
            span = fit(text, shape, m.start(), m.end())
            if span is None:
                continue
            s, e = span
            if not _phone_left_ok(shape, s) or any(a < e and s < b for a, b in out):
                continue
            w0 = max(0, s - 24)
            before = text[w0:s].lower()
            w = _WORD_BEFORE.search(before)
            if w is None or (w.start() == 0 and w0 > 0) or _YEARS.fullmatch(text, s, e):
                continue
            if not call_in_code(text, s - (len(before) - w.start()), e):
                out.append((s, e))
    return out


def call_in_code(text: str, word: int, end: int) -> bool:
    """True when the phone word at ``text[word:]`` is the lower-case instruction ``call`` of disassembly or
    assembly (:data:`_ADDRESS_COLUMN`, :data:`_SYMBOL_AFTER`), and the number that ends at ``end`` is an
    address.

    Example:
        >>> t = "  4011a6:\te8 f5 fe ff ff\tcall   40052300 <puts@plt>"
        >>> call_in_code(t, t.index("call"), t.index(" <")), call_in_code("call 2345 6789", 0, 14)
        (True, False)
    """
    if not text.startswith("call", word):
        return False
    if _ADDRESS_COLUMN.match(text, text.rfind("\n", 0, word) + 1) is not None:
        return True
    pad = text[word + 4:word + 6]
    return pad[:1] == "\t" or (pad == "  " and _SYMBOL_AFTER.match(text, end) is not None)


def cut_back(shape: str, s: int, e: int, most: int, least: int) -> Optional[Tuple[int, int]]:
    """``(s, e)`` with its last groups cut off (at ``" "``, ``"."``, ``"-"``) until it holds at most ``most``
    digits; ``None`` when it then holds fewer than ``least``."""
    while True:
        nd = shape.count("0", s, e)
        if nd <= most:
            return (s, e) if nd >= least else None
        cut = max(shape.rfind(c, s, e) for c in " .-")
        if cut <= s:
            return None
        e = cut


def _fit_trunk8(text: str, shape: str, s: int, e: int) -> Optional[Tuple[int, int]]:
    """A :data:`_PHONE_TRUNK8` match: ``8`` and exactly 10 digits."""
    if text[s] != "8":
        return None
    return cut_back(shape, s, e, 11, 11)


def _fit_country(text: str, shape: str, s: int, e: int) -> Optional[Tuple[int, int]]:
    """A :data:`_PHONE_CC` match: a country code of :data:`_COUNTRY_CODES`, then a national number of 7 or more
    digits (as many as :data:`_NATIONAL_DIGITS` says, if it says), 10 to 15 in all (E.164), that does not start with a trunk 0 (but in ``(0)``, and in Italy, whose
    numbers keep it)."""
    lo = s + (shape[s] == "(")
    hi = lo
    while shape[hi] == "0":
        hi += 1
    cc = text[lo:hi]
    if cc not in _COUNTRY_CODES:
        return None
    i = hi + (shape[hi] == ")") + 1  # past the separator
    if text.startswith("(0)", i):  # the trunk 0, in brackets to be left out from abroad
        i += 4 if shape[i + 3] in " .-" else 3
    elif shape[i] == "(":  # an area code in brackets
        i += 1
    if text[i] == "0" and cc != "39":
        return None
    fixed = _NATIONAL_DIGITS.get(cc)
    span = cut_back(shape, s, e, 15, 10) if fixed is None else cut_back(shape, s, e, len(cc) + fixed, len(cc) + fixed)
    if span is None or shape.count("0", i, span[1]) < 7:
        return None
    return span


def _fit_eight(text: str, shape: str, s: int, e: int) -> Optional[Tuple[int, int]]:
    """A :data:`_PHONE_EIGHT` match: its first digit is 2 to 9."""
    return (s, e) if text[s] in "23456789" else None


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
