"""Synthetic personal data with valid (or deliberately broken) checksums, for tests and benchmarks.

Every generator takes a :class:`random.Random`, so the values are reproducible. None of them is a real
person's data: card numbers use test-style random digits, IBANs random bank codes, SSNs random
assignable ranges, e-mail domains ``example.*`` names, phone numbers the 555-01xx fictional range or
random digits.

Example:
    >>> import random
    >>> from torchdataguard.pii.detectors import luhn_valid, iban_valid
    >>> rng = random.Random(0)
    >>> luhn_valid(fake_card(rng, fmt="plain")), luhn_valid(fake_card(rng, valid=False, fmt="plain"))
    (True, False)
    >>> iban_valid(fake_iban(rng, "DE", grouped=False))
    True
"""
from __future__ import annotations

import random
from typing import Callable, Dict, Literal, Optional

from ..errors import ConfigError
from .detectors import IBAN_LENGTHS

__all__ = ["CARD_SCHEMES", "SECRET_KINDS", "fake_card", "fake_email", "fake_iban", "fake_ipv4", "fake_ipv6",
           "fake_phone", "fake_secret", "fake_ssn", "luhn_check_digit"]

#: scheme -> (prefixes, length)
CARD_SCHEMES = {
    "visa": (("4",), 16),
    "mastercard": (("51", "52", "53", "54", "55", "2221", "2720"), 16),
    "amex": (("34", "37"), 15),
    "discover": (("6011", "65"), 16),
    "jcb": (("3528", "3589"), 16),
    "diners": (("300", "305", "36"), 14),
}
#: country -> (letters at the start, letters at the end) of its BBAN (bank codes and account types that are
#: letters in the SWIFT registry's formats); every other position is a digit
_BBAN_LETTERS = {
    "GB": (4, 0), "IE": (4, 0), "NL": (4, 0), "BG": (4, 0), "GI": (4, 0), "MT": (4, 0), "BH": (4, 0),
    "KW": (4, 0), "LV": (4, 0), "PK": (4, 0), "PS": (4, 0), "QA": (4, 0), "RO": (4, 0), "JO": (4, 0),
    "AZ": (4, 0), "DO": (4, 0), "VG": (4, 0), "IQ": (4, 0), "LC": (4, 0), "SV": (4, 0), "NI": (4, 0),
    "YE": (4, 0), "GE": (2, 0), "FK": (2, 0), "IT": (1, 0), "SM": (1, 0), "MU": (4, 3), "SC": (4, 3),
    "BR": (0, 2),
}
SECRET_KINDS = ("aws", "github", "github_pat", "gitlab", "slack", "stripe", "google", "huggingface", "npm",
                "private_key")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check.

    Example:
        >>> luhn_check_digit("411111111111111")
        '1'
    """
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:  # these positions are doubled once the check digit is appended
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def fake_card(rng: random.Random, scheme: str = "visa", *, valid: bool = True,
              fmt: Literal["plain", "spaces", "dashes"] = "spaces") -> str:
    """A card number of ``scheme`` that passes Luhn (``valid=False``: fails it, same length and prefix)."""
    if scheme not in CARD_SCHEMES:
        raise ConfigError.bad("scheme", scheme, f"one of {sorted(CARD_SCHEMES)}")
    prefixes, n = CARD_SCHEMES[scheme]
    body = rng.choice(prefixes)
    body += _digits(rng, n - 1 - len(body))
    check = luhn_check_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    num = body + check
    if fmt == "plain":
        return num
    sep = " " if fmt == "spaces" else "-"
    if n == 15:
        groups = [num[:4], num[4:10], num[10:]]
    elif n == 14:
        groups = [num[:4], num[4:10], num[10:]]
    else:
        groups = [num[i:i + 4] for i in range(0, n, 4)]
    return sep.join(groups)


def fake_iban(rng: random.Random, country: str = "DE", *, valid: bool = True, grouped: bool = True) -> str:
    """An IBAN of ``country`` with correct mod-97 check digits (``valid=False``: wrong ones)."""
    n = IBAN_LENGTHS.get(country)
    if n is None:
        raise ConfigError.bad("country", country, f"a country code with IBANs, e.g. one of {sorted(IBAN_LENGTHS)[:8]}")
    bban = _digits(rng, n - 4)
    lead, tail = _BBAN_LETTERS.get(country, (0, 0))  # letters where the country's BBAN format has them
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    bban = ("".join(rng.choice(letters) for _ in range(lead)) + bban[lead:len(bban) - tail]
            + "".join(rng.choice(letters) for _ in range(tail)))
    moved = bban + country + "00"
    num = int("".join(ch if ch.isdigit() else str(ord(ch) - 55) for ch in moved))
    check = 98 - num % 97
    if not valid:
        check = (check + rng.randint(1, 96)) % 97 + 2
        if check == 98 - num % 97:
            check = 2 if check != 2 else 3
    iban = f"{country}{check:02d}{bban}"
    if grouped:
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    return iban


def fake_ssn(rng: random.Random, *, valid: bool = True, sep: str = "-") -> str:
    """A US SSN in an assignable range (``valid=False``: area 000, 666 or 9xx, group 00 or serial 0000)."""
    area = rng.randint(1, 899)
    while area == 666:
        area = rng.randint(1, 899)
    parts = [f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"]
    if not valid:
        which = rng.randrange(3)
        parts[which] = {0: rng.choice(["000", "666", f"9{rng.randint(0, 99):02d}"]), 1: "00", 2: "0000"}[which]
    return sep.join(parts)


def fake_email(rng: random.Random) -> str:
    """An address at an ``example`` domain."""
    user = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 10)))
    if rng.random() < 0.5:
        user += rng.choice([".", "_", "+", "-"]) + _digits(rng, rng.randint(1, 4))
    return f"{user}@{rng.choice(['example.com', 'example.org', 'mail.example.net', 'example.co.uk'])}"


def fake_phone(rng: random.Random, style: Optional[str] = None) -> str:
    """A phone number: ``intl`` (+CC groups), ``nanp`` ((415) 555-01xx), ``nanp_dash`` or ``uk`` (+44 ...)."""
    style = style or rng.choice(["intl", "nanp", "nanp_dash", "uk"])
    if style == "intl":
        cc = rng.choice(["33", "49", "34", "39", "31", "81", "61"])
        return f"+{cc} {rng.randint(1, 9)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)} {_digits(rng, 2)}"
    if style == "nanp":
        return f"({rng.randint(2, 9)}{_digits(rng, 2)}) 555-01{_digits(rng, 2)}"
    if style == "nanp_dash":
        return f"{rng.randint(2, 9)}{_digits(rng, 2)}-555-01{_digits(rng, 2)}"
    if style == "uk":
        return f"+44 20 7946 0{_digits(rng, 3)}"
    raise ConfigError.bad("style", style, "one of 'intl', 'nanp', 'nanp_dash', 'uk'")


def fake_ipv4(rng: random.Random) -> str:
    """A dotted-quad address."""
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def fake_ipv6(rng: random.Random, *, compressed: bool = True) -> str:
    """An address in 2001:db8::/32 (the documentation range)."""
    groups = ["2001", "db8"] + [format(rng.randint(0, 0xFFFF), "x") for _ in range(6)]
    if compressed:
        groups[3] = groups[4] = "0"
        return ":".join(groups[:3]) + "::" + ":".join(groups[5:])
    return ":".join(groups)


#: kind -> how its token is shaped, from ``rand(n, alphabet)`` (random characters) and ``digits(n)``
_SECRET_SHAPES: Dict[str, Callable[[Callable[..., str], Callable[[int], str]], str]] = {
    "aws": lambda rand, digits: "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"),
    "github": lambda rand, digits: "ghp_" + rand(36),
    "github_pat": lambda rand, digits: "github_pat_" + rand(22) + "_" + rand(59),
    "gitlab": lambda rand, digits: "glpat-" + rand(20),
    "slack": lambda rand, digits: "xoxb-" + digits(12) + "-" + digits(12) + "-" + rand(24),
    "stripe": lambda rand, digits: "sk_" + "live_" + rand(24),
    "google": lambda rand, digits: "AIza" + rand(35),
    "huggingface": lambda rand, digits: "hf_" + rand(34, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    "npm": lambda rand, digits: "npm_" + rand(36),
    "private_key": lambda rand, digits: ("-----BEGIN RSA PRIVATE KEY-----\n"
                                         + "\n".join(rand(64, _ALNUM + "+/") for _ in range(4))
                                         + "\n-----END RSA PRIVATE KEY-----"),
}


def fake_secret(rng: random.Random, kind: str = "github") -> str:
    """A token shaped like ``kind`` (one of :data:`SECRET_KINDS`); random, so it opens nothing."""
    shape = _SECRET_SHAPES.get(kind)
    if shape is None:
        raise ConfigError.bad("kind", kind, f"one of {list(SECRET_KINDS)}")

    def rand(n: int, alphabet: str = _ALNUM) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    return shape(rand, lambda n: _digits(rng, n))
