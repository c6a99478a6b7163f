"""Checksums and validators of the detectors: values the patterns alone cannot tell apart from noise.

Payment cards must pass the Luhn check and carry a known issuer prefix, IBANs must have their country's length
and pass ISO 7064 mod-97, US SSNs must use an assignable area/group/serial. Chinese identity numbers: the
resident identity number (GB 11643) needs a province code, a real birth date and its ISO 7064 MOD 11-2 check
character (the 15-digit form of before 1999 has no check digit: province and date only); Hong Kong identity
card numbers and Taiwan national identification numbers carry their own check digits.

Example:
    >>> luhn_valid("4111111111111111"), iban_valid("GB82WEST12345698765432"), ssn_valid("666", "22", "1234")
    (True, True, False)
    >>> cn_id_valid("11010519491231002X"), hk_id_valid("A123456", "3"), tw_id_valid("A123456789")
    (True, True, True)
"""
from __future__ import annotations

import datetime
from typing import Dict, FrozenSet

__all__ = ["CN_PROVINCES", "IBAN_LENGTHS", "card_issuer_ok", "cn_id_check_char", "cn_id_valid", "cn_legacy_id_valid",
           "hk_id_check_char", "hk_id_valid", "iban_valid", "luhn_valid", "ssn_valid", "tw_id_valid"]


def luhn_valid(digits: str) -> bool:
    """True when the string of ASCII digits passes the Luhn (mod 10) check used by payment cards.

    Example:
        >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
        (True, False)
    """
    total = 0
    double = False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        double = not double
    return total % 10 == 0


def card_issuer_ok(digits: str) -> bool:
    """True when the number's length and leading digits belong to a card scheme (Visa, Mastercard, Amex ...).

    Example:
        >>> card_issuer_ok("4111111111111111"), card_issuer_ok("1234567812345670")
        (True, False)
    """
    n = len(digits)
    if n < 13 or n > 19:
        return False
    d1 = digits[0]
    p2 = int(digits[:2])
    p3 = int(digits[:3])
    p4 = int(digits[:4])
    if d1 == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if 300 <= p3 <= 305 or p2 in (36, 38, 39):  # Diners Club
        return 14 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if p4 == 6011 or 644 <= p3 <= 649 or p2 == 65:  # Discover
        return 16 <= n <= 19
    if p2 == 62:  # UnionPay
        return 16 <= n <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 13 <= n <= 19
    return False


#: IBAN length by country (SWIFT IBAN registry, official members).
IBAN_LENGTHS: Dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}


def iban_valid(iban: str) -> bool:
    """True when ``iban`` (upper case, no spaces) has its country's length and passes ISO 7064 mod-97.

    Example:
        >>> iban_valid("GB82WEST12345698765432"), iban_valid("GB82WEST12345698765433")
        (True, False)
    """
    n = IBAN_LENGTHS.get(iban[:2])
    if n is None or len(iban) != n or not iban[2:4].isdigit() or not iban.isalnum() or not iban.isascii():
        return False
    moved = iban[4:] + iban[:4]
    num = "".join(ch if ch.isdigit() else str(ord(ch) - 55) for ch in moved)
    return int(num) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """True when a US SSN's parts are assignable (area not 000, 666 or 9xx; group not 00; serial not 0000).

    Example:
        >>> ssn_valid("536", "22", "1234"), ssn_valid("666", "22", "1234")
        (True, False)
    """
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"



#: The first two digits of a mainland resident identity number: the provinces, autonomous regions and
#: municipalities of GB/T 2260, and 71/81/82/83 (Taiwan, Hong Kong, Macao, and the residence permits of
#: their residents on the mainland).
CN_PROVINCES: FrozenSet[str] = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 61 62 63 64 65 "
    "71 81 82 83".split())
_CN_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, ...


def _birth_date_ok(year: int, month: int, day: int) -> bool:
    try:
        born = datetime.date(year, month, day)
    except ValueError:
        return False
    return datetime.date(1880, 1, 1) <= born <= datetime.date.today()


def cn_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character (``0``-``9`` or ``X``) of the first 17 digits of a resident
    identity number.

    Example:
        >>> cn_id_check_char("11010519491231002")
        'X'
    """
    total = sum((ord(ch) - 48) * w for ch, w in zip(first17, _CN_WEIGHTS))
    r = (12 - total % 11) % 11
    return "X" if r == 10 else str(r)


def cn_id_valid(number: str) -> bool:
    """True when ``number`` (18 characters) is a plausible mainland resident identity number (GB 11643-1999):
    17 ASCII digits and a check character, a province code of :data:`CN_PROVINCES`, a birth date that exists
    and is not in the future (``YYYYMMDD`` at positions 7-14), and the MOD 11-2 check character (``x`` is
    taken for ``X``).

    Example:
        >>> cn_id_valid("11010519491231002X"), cn_id_valid("110105194912310021"), cn_id_valid("110105194913310023")
        (True, False, False)
    """
    if len(number) != 18 or not number[:17].isdigit() or not number[:17].isascii():
        return False
    if number[:2] not in CN_PROVINCES:
        return False
    if not _birth_date_ok(int(number[6:10]), int(number[10:12]), int(number[12:14])):
        return False
    return number[17].upper() == cn_id_check_char(number[:17])


def cn_legacy_id_valid(number: str) -> bool:
    """True when ``number`` is a plausible 15-digit resident identity number (the form issued before 1999: a
    province code of :data:`CN_PROVINCES`, a real birth date ``YYMMDD`` in 1900-1999, a 3-digit sequence; it has
    no check digit).

    Example:
        >>> cn_legacy_id_valid("110105491231002"), cn_legacy_id_valid("110105491331002")
        (True, False)
    """
    if len(number) != 15 or not number.isdigit() or not number.isascii() or number[:2] not in CN_PROVINCES:
        return False
    return _birth_date_ok(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))


def _letter_value(ch: str) -> int:
    return ord(ch) - 55  # A=10 ... Z=35


def hk_id_check_char(letters: str, digits: str) -> str:
    """The check character (``0``-``9`` or ``A``) of a Hong Kong identity card number: one or two letters and six
    digits, weighted 9, 8, 7, ..., 2 (a missing first letter counts as 36), mod 11.

    Example:
        >>> hk_id_check_char("A", "123456"), hk_id_check_char("CA", "182361")
        ('3', '1')
    """
    vals = ([36] if len(letters) == 1 else []) + [_letter_value(c) for c in letters] + [ord(c) - 48 for c in digits]
    total = sum(v * w for v, w in zip(vals, range(9, 1, -1)))
    r = (11 - total % 11) % 11
    return "A" if r == 10 else str(r)


def hk_id_valid(head: str, check: str) -> bool:
    """True when ``head`` (one or two upper-case letters and six digits) and its ``check`` character form a
    Hong Kong identity card number (``A123456(3)`` is ``hk_id_valid("A123456", "3")``).

    Example:
        >>> hk_id_valid("A123456", "3"), hk_id_valid("A123456", "4")
        (True, False)
    """
    letters, digits = head[:-6], head[-6:]
    if not (1 <= len(letters) <= 2 and letters.isascii() and letters.isupper() and letters.isalpha()):
        return False
    if not (digits.isascii() and digits.isdigit()):
        return False
    return check == hk_id_check_char(letters, digits)


#: Taiwan: the letter of a national identification number (the place of first registration) as a number.
_TW_LETTERS = dict(zip("ABCDEFGHJKLMNPQRSTUVXYWZIO", range(10, 36)))


def tw_id_valid(number: str) -> bool:
    """True when ``number`` is a Taiwan national identification number: an upper-case letter, ``1`` or ``2``
    (sex; ``8`` or ``9`` on the resident certificates of foreign nationals issued since 2021), seven digits
    and a check digit; the letter's two-digit code and the nine digits, weighted 1, 9, 8, ..., 1, 1, must
    sum to a multiple of 10.

    Example:
        >>> tw_id_valid("A123456789"), tw_id_valid("A123456788"), tw_id_valid("A323456789")
        (True, False, False)
    """
    if len(number) != 10 or number[0] not in _TW_LETTERS or number[1] not in "1289":
        return False
    if not (number[1:].isascii() and number[1:].isdigit()):
        return False
    code = _TW_LETTERS[number[0]]
    total = code // 10 + (code % 10) * 9 + sum((ord(c) - 48) * w for c, w in zip(number[1:9], range(8, 0, -1)))
    return (total + ord(number[9]) - 48) % 10 == 0
