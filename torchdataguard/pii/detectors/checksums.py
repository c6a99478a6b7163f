"""Checksums and validators of the detectors: values the patterns alone cannot tell apart from noise.

Payment cards must pass the Luhn check and carry a known issuer prefix, IBANs must have their country's length
and pass ISO 7064 mod-97, US SSNs must use an assignable area/group/serial.

Example:
    >>> luhn_valid("4111111111111111"), iban_valid("GB82WEST12345698765432"), ssn_valid("666", "22", "1234")
    (True, True, False)
"""
from __future__ import annotations

from typing import Dict

__all__ = ["IBAN_LENGTHS", "card_issuer_ok", "iban_valid", "luhn_valid", "ssn_valid"]


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

