"""Synthetic personal data with valid (or deliberately broken) checksums, for tests and benchmarks.

Every generator takes a :class:`random.Random`, so the values are reproducible. None of them is a real
person's data: card numbers use test-style random digits, IBANs random bank codes, SSNs random
assignable ranges, e-mail domains ``example.*`` names, phone numbers the 555-01xx fictional range or
random digits; Chinese identity, phone, card and passport numbers are random digits with the right
structure and check characters.

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
from .detectors.checksums import CN_PROVINCES, cn_id_check_char, hk_id_check_char, tw_id_valid

__all__ = ["CARD_SCHEMES", "SECRET_KINDS", "fake_card", "fake_cn_id", "fake_cn_landline", "fake_cn_mobile",
           "fake_email", "fake_hk_id", "fake_iban", "fake_ipv4", "fake_ipv6", "fake_passport", "fake_phone",
           "fake_secret", "fake_ssn", "fake_tw_id", "fake_unionpay", "luhn_check_digit"]

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


# -- Chinese personal data ------------------------------------------------------------------------------------
def _wrong(check: str, alphabet: str, rng: random.Random) -> str:
    return rng.choice([c for c in alphabet if c != check])


def fake_cn_mobile(rng: random.Random, fmt: Literal["plain", "spaces", "dashes", "+86", "0086", "(+86)"] = "plain",
                   *, prefix: Optional[str] = None) -> str:
    """A mainland mobile number (``1[3-9]`` and nine digits) in the format ``fmt``; ``prefix`` overrides the
    first three digits (``"128"`` gives an impossible number, for decoys)."""
    head = prefix if prefix is not None else "1" + rng.choice("3456789") + _digits(rng, 1)
    num = head + _digits(rng, 8)
    if fmt == "plain":
        return num
    if fmt in ("spaces", "dashes"):
        sep = " " if fmt == "spaces" else "-"
        return sep.join([num[:3], num[3:7], num[7:]])
    if fmt == "+86":
        return f"+86 {num[:3]} {num[3:7]} {num[7:]}"
    if fmt == "0086":
        return f"0086 {num}"
    if fmt == "(+86)":
        return f"(+86){num[:3]}-{num[3:7]}-{num[7:]}"
    raise ConfigError.bad("fmt", fmt, "one of 'plain', 'spaces', 'dashes', '+86', '0086', '(+86)'")


def fake_cn_landline(rng: random.Random, fmt: Literal["dash", "parens", "fullwidth", "space", "ext"] = "dash") -> str:
    """A mainland landline with its area code: ``010-62345678``, ``(021)62345678``, ``（0755）2345678``,
    ``0571 8765 4321``, ``020-87654321-801``."""
    area = rng.choice(["010", "021", "020", "022", "023", "024", "025", "027", "028", "029", "0755", "0571", "0531",
                       "0871", "0991"])
    local = str(rng.randint(2, 9)) + _digits(rng, 7 if len(area) == 3 else rng.choice([6, 7]))
    if fmt == "dash":
        return f"{area}-{local}"
    if fmt == "parens":
        return f"({area}){local}"
    if fmt == "fullwidth":
        return f"（{area}）{local}"
    if fmt == "space":
        return f"{area} {local[:-4]} {local[-4:]}"
    if fmt == "ext":
        return f"{area}-{local}-{_digits(rng, 3)}"
    raise ConfigError.bad("fmt", fmt, "one of 'dash', 'parens', 'fullwidth', 'space', 'ext'")


def fake_cn_id(rng: random.Random, *, valid: bool = True, legacy: bool = False, check_x: Optional[bool] = None) -> str:
    """A mainland resident identity number: 18 characters with a real birth date and the MOD 11-2 check
    character (``check_x=True``: one whose check character is ``X``), or with ``legacy=True`` the 15-digit form.
    ``valid=False`` breaks the check character (18) or the birth date (15)."""
    region = (rng.choice(sorted(CN_PROVINCES - {"71", "81", "82", "83"}))
              + f"{rng.randint(1, 20):02d}{rng.randint(1, 30):02d}")
    year = rng.randint(1930, 2015)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    if legacy:
        return region + f"{year % 100:02d}{month if valid else 13:02d}{day:02d}" + _digits(rng, 3)
    seqs = list(range(1000))
    rng.shuffle(seqs)
    for seq in seqs:  # the sequence number reaches every check character (its last digit has weight 2)
        body = f"{region}{year:04d}{month:02d}{day:02d}{seq:03d}"
        check = cn_id_check_char(body)
        if check_x is None or (check == "X") == check_x:
            return body + (check if valid else _wrong(check, "0123456789X", rng))
    raise AssertionError("unreachable: 1000 sequence numbers cover all 11 check characters")  # pragma: no cover


def fake_hk_id(rng: random.Random, *, valid: bool = True, letters: int = 1, fullwidth: bool = False) -> str:
    """A Hong Kong identity card number ``A123456(3)`` (``letters=2``: ``AB123456(7)``; ``fullwidth``: with
    （ ）); ``valid=False`` gives a wrong check character."""
    head = "".join(rng.choice("ABCDEFGHJKMNPRSTVWYZ") for _ in range(letters))
    digits = _digits(rng, 6)
    check = hk_id_check_char(head, digits)
    if not valid:
        check = _wrong(check, "0123456789A", rng)
    return f"{head}{digits}（{check}）" if fullwidth else f"{head}{digits}({check})"


def fake_tw_id(rng: random.Random, *, valid: bool = True) -> str:
    """A Taiwan national identification number ``A123456789`` (``valid=False``: a wrong check digit)."""
    body = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + rng.choice("12") + _digits(rng, 7)
    good = next(d for d in "0123456789" if tw_id_valid(body + d))
    return body + (good if valid else _wrong(good, "0123456789", rng))


def fake_unionpay(rng: random.Random, *, length: int = 19, valid: bool = True,
                  fmt: Literal["plain", "spaces"] = "plain") -> str:
    """A UnionPay number (``62``, ``length`` digits, 16 to 19) that passes Luhn (``valid=False``: fails it), plain
    or in groups of four."""
    body = "62" + rng.choice(["2202", "2848", "2700", "2588", "1700", "1483"]) + _digits(rng, length - 7)
    check = luhn_check_digit(body)
    num = body + (check if valid else _wrong(check, "0123456789", rng))
    return num if fmt == "plain" else " ".join(num[i:i + 4] for i in range(0, length, 4))


def fake_passport(rng: random.Random, kind: Literal["E", "EA", "G", "K", "9"] = "E") -> str:
    """A passport number: mainland ``E12345678``, ``EA1234567`` (E and a letter since 2019), ``G12345678``, Hong Kong
    ``K12345678``, or nine digits (``9``: Taiwan, the US ...)."""
    if kind in ("E", "G", "K"):
        return kind + _digits(rng, 8)
    if kind == "EA":
        return "E" + rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + _digits(rng, 7)
    if kind == "9":
        return str(rng.randint(1, 9)) + _digits(rng, 8)
    raise ConfigError.bad("kind", kind, "one of 'E', 'EA', 'G', 'K', '9'")
