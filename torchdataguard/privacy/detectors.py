"""Fast detectors for personal data and secrets in text, with checksum and context validation.

Every detector is a compiled regular expression that proposes candidates, followed by a cheap validator
that rejects what the pattern alone cannot: payment cards must pass the Luhn check and carry a known
issuer prefix, IBANs must have their country's length and pass ISO 7064 mod-97, US SSNs must use an
assignable area/group/serial, IPv4-shaped version strings (``dpkg (1.2.3.4)``, ``version 1.2.3.4``) are
left alone, IPv6 candidates are parsed by :mod:`ipaddress`. A text is scanned only by the detectors whose
cheap pre-check (a character or prefix that must appear) holds.

Overlapping candidates are resolved by a fixed priority (secrets, then email, IBAN, card, SSN, IPv6,
IPv4, phone, then names and places from an optional NER backend), so every character belongs to at
most one detection.

Everything here is module-level and stateless, so it pickles for DataLoader workers at no cost.

Example:
    >>> from torchdataguard.privacy.detectors import find_pii
    >>> text = "Mail jane.doe@example.org from 10.0.0.7, not version 1.2.3.4."
    >>> [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    [('email', 'jane.doe@example.org'), ('ipv4', '10.0.0.7')]
"""
from __future__ import annotations

import bisect
import codecs
import ipaddress
import re
from typing import Callable, Dict, FrozenSet, Iterable, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "ENTITY_TYPES",
    "IBAN_LENGTHS",
    "Detection",
    "card_issuer_ok",
    "find_pii",
    "iban_valid",
    "is_version_context",
    "luhn_valid",
    "resolve_overlaps",
    "ssn_valid",
    "text_shape",
]

#: Entity types found by the built-in detectors, in priority order (earlier wins an overlap).
ENTITY_TYPES: Tuple[str, ...] = ("secret", "email", "iban", "credit_card", "us_ssn", "ipv6", "ipv4", "phone")

#: Priority of every entity type, including those from the optional NER backend (lower wins).
PRIORITY: Dict[str, int] = {name: i for i, name in enumerate(ENTITY_TYPES)}
PRIORITY.update({"person": len(ENTITY_TYPES), "location": len(ENTITY_TYPES) + 1})


class Detection(NamedTuple):
    """One detection: ``text[start:end]`` is the detected value, of type ``entity``.

    The value itself is not stored, so a detection can be logged or counted without leaking it.
    """

    start: int
    end: int
    entity: str


# ---------------------------------------------------------------------------------------------------
# checksums and validators
# ---------------------------------------------------------------------------------------------------
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


_VERSION_KEYWORD = re.compile(
    r"(?:(?:^|[^\w])(?:versions?|releases?|revision|build|policy|upstream|standards?|firmware)\b"
    r"(?:[\s:=()\-]*(?:to|is|was|of|from|now|update[ds]?|upgrade[ds]?|bump(?:ed|s)?|set|changed?|raised?|moved?|the)\b){0,3}"
    r"[\s:=()#\-]*"
    r"|(?:^|[^\w])(?:ver|rel|rev)\.?\s*[:=#]?\s*|(?:^|[^\w])v\.\s*)$", re.IGNORECASE)
_VERSION_ATTACHED = re.compile(r"(?:^|[^\w./:])[A-Za-z][A-Za-z0-9+.]*(?:[-_/]|[=~<>!]=)$")
_VERSION_RELATION = re.compile(r"\(\s*(?:<<|>>|<=|>=|=|<|>)\s*(?:\d+:)?$")
_VERSION_DEB_LEFT = re.compile(r"^\s*[a-z0-9][a-z0-9+.\-]*\s\((?:\d+:)?$")
_VERSION_DEB_RIGHT = re.compile(r"[\w.+~:\-]*\)\s+[A-Za-z][\w\-]*(?:\s+[A-Za-z][\w\-]*)*\s*;\s*urgency=")
_FILE_SUFFIX = re.compile(r"\.(?:tar|tgz|tbz2?|txz|zip|deb|udeb|dsc|rpm|orig|gz|bz2|xz|jar|whl|egg|exe|msi|dmg|apk)\b",
                          re.IGNORECASE)
_HOST_SUFFIX = re.compile(r"\.[A-Za-z]")
_VERSION_WORDS = ("version", "release", "revision", "build", "policy", "upstream", "standard", "firmware", "ver",
                  "rel", "rev", "v")
_VERSION_SUFFIX = re.compile(r"-(?!\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\d|[~+][A-Za-z0-9]")


def is_version_context(text: str, start: int, end: int) -> bool:
    """True when the dotted quad ``text[start:end]`` reads as a version rather than an IPv4 address.

    A dotted quad is taken for a version when it follows the word version (or release, revision, build,
    policy, upstream, standards, firmware), possibly through up to three linking words ("updated to",
    "bumped to", "is now"), or
    directly follows ver, rev, rel or "v."; when it is attached to a package name (``foo-1.2.3.4``,
    ``foo/1.2.3.4``, ``foo==1.2.3.4``), sits in a version relation (``(>= 1.2.3.4)``), carries a package
    revision (``1.2.3.4-1``, ``1.2.3.4~rc1``, ``1.2.3.4+dfsg``), or is the version of a Debian changelog
    header (``pkg (1:1.2.3.4-2) unstable; urgency=low``). An address in a URL, a host name or a mail header
    stays an address.

    Example:
        >>> t = "dpkg (1.2.3.4) unstable; urgency=low"
        >>> is_version_context(t, 6, 13)
        True
        >>> t = "from localhost (127.0.0.1) by mail"
        >>> is_version_context(t, 16, 25)
        False
    """
    if _HOST_SUFFIX.match(text, end) and not _FILE_SUFFIX.match(text, end):
        return False  # an address inside a host name (dialup-10.1.2.3.example.net)
    if start > 0 and text[start - 1] == "[":
        return False  # [10.1.2.3]: how mail headers and URLs bracket addresses
    if _VERSION_SUFFIX.match(text, end):
        return True
    lo = max(0, start - 80)
    nl = text.rfind("\n", lo, start)
    line_left = text[(nl + 1 if nl >= 0 else lo):start]
    tail = line_left.rstrip()
    last = tail[-1:]
    # cheap tests first: each regex runs only when its tell-tale character or word is there
    if last in ("-", "_", "/", "=") and (_VERSION_ATTACHED.search(line_left) or _VERSION_RELATION.search(line_left)):
        return True
    if last in ("(", "<", ">", ":") and _VERSION_RELATION.search(line_left):
        return True
    low = line_left.lower()
    if (last.isalpha() or last in (".", ":", "=", "#", "(")) and any(k in low for k in _VERSION_WORDS):
        if _VERSION_KEYWORD.search(line_left):
            return True
    if last in ("(", ":") and (nl >= 0 or lo == 0) and _VERSION_DEB_LEFT.match(line_left):
        return bool(_VERSION_DEB_RIGHT.match(text, end, min(len(text), end + 120)))
    return False


# ---------------------------------------------------------------------------------------------------
# patterns
#
# Most candidates are found in the *shape* of the text: the same string with every ASCII digit mapped to
# "0", every upper-case ASCII letter to "A" and every lower-case one to "a" (one character for one, so
# positions are the same). In the shape, "a card number" is the literal "0000000000000", "an SSN" the
# literal "000-00-0000", "an IBAN" starts with the literal "AA00": the regex engine finds literal
# prefixes with a fast scan instead of trying a pattern at every position. Boundary checks sit in
# look-behinds placed after the literal prefix, and values are validated on the original text.
# ---------------------------------------------------------------------------------------------------
_SHAPE_BYTES = bytes.maketrans(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                               b"0" * 10 + b"A" * 26 + b"a" * 26)


def _shape_non_ascii(err: UnicodeEncodeError) -> Tuple[str, int]:
    # one ASCII character for each non-ASCII one: "a" for letters and digits (they are word characters
    # to the look-arounds), "?" for anything else
    chunk = err.object[err.start:err.end]
    return "".join("a" if ch.isalnum() else "?" for ch in chunk), err.end


codecs.register_error("torchdataguard.shape", _shape_non_ascii)


def text_shape(text: str) -> str:
    """``text`` with ASCII digits as ``0``, upper-case ASCII letters as ``A`` and lower-case as ``a``.

    Other ASCII characters stay; a non-ASCII letter or digit becomes ``a`` and any other non-ASCII
    character ``?``, so the shape has exactly one character per character of ``text``.

    Example:
        >>> text_shape("Call 555-0100, Bob!")
        'Aaaa 000-0000, Aaa!'
    """
    return text.encode("ascii", "torchdataguard.shape").translate(_SHAPE_BYTES).decode("ascii")


_ASCII_DIGITS = frozenset("0123456789")
_LOCAL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_%+-.='")
# labels of letters and digits (any script: bücher.de, 例え.jp) and hyphens; the top-level label is letters
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+[^\W\d_]{2,24}"
                           r"(?![\w\-]|\.[^\W_])")

# IPv4: anchored on the first dot, the first octet is read backwards
_IPV4_TAIL = re.compile(r"\.(0{1,3})\.(0{1,3})\.(0{1,3})(?!\w|\.0)")

# IPv6: anchored on "::" or on three colon-separated groups (every IPv6 address has one of the two)
_IPV6_ANCHOR = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")
_IPV6 = re.compile(r"(?:[0-9A-Fa-f]{1,4}:|::?)(?:[0-9A-Fa-f]{0,4}:){1,7}"
                   r"(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\w)")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_HEX_COLON_RUN = re.compile(r"[0-9A-Fa-f:]*")

# payment cards: 13-19 digits, or groups of 4-4-4-(1..7) or 4-6-(4..5) separated by one space or hyphen
_CARD_PATTERNS = (
    re.compile(r"0000000000000(?<![\w.,\-].{13})0{0,6}(?![\w\-]|[.,]0)"),
    re.compile(r"0000([ \-])0000\1(?<![\w.,\-].{10})0000\1(?:0{1,7})(?![\w\-]|[.,]0)"),
    re.compile(r"0000([ \-])000000\1(?<![\w.,\-].{12})00000?(?![\w\-]|[.,]0)"),
)

# IBAN: two upper-case letters, two check digits, then upper-case letters and digits in optional groups
_IBAN_SHAPE = re.compile(r"AA00(?<!\w.{4})(?: ?[A0]){11,31}(?!\w)")

# US SSN: 3-2-4 digits with hyphens or single spaces
_SSN_PATTERNS = (
    re.compile(r"000-00-0000(?<![\w.\-].{11})(?![\w\-]|\.0)"),
    re.compile(r"000 00 0000(?<![\w.\-].{11})(?![\w\-]|\.0)"),
)

# phones: "+CC ..." international numbers; North American numbers; national numbers with a trunk 0
# after a phone word ("tel.", "phone:", "fax" ...)
_PHONE_INTL = re.compile(r"\+0{1,3}[ .\-]?(?:\(0{1,4}\)[ .\-]?)?0{1,4}(?:[ .\-]?0{2,4}){1,5}(?![\w\-]|[.,]0)")
_PHONE_NANP_TAIL = re.compile(r"000[ .\-]0000(?![\w\-]|[.,]0)")
_PHONE_NANP_HEAD = re.compile(r"(?P<cc>0[ .\-]?)?(?P<area>\(000\)[ .\-]?|000[ .\-])\Z")
_PHONE_WORDS = tuple(re.compile(w + r"\b[.:]?\s*[:#]?\s*(?=\(?0)") for w in (
    r"tel(?:ephone|efon)?", r"ph(?:one)?", r"fax", r"mob(?:ile)?", r"cell", r"call"))
_PHONE_TRUNK = re.compile(r"(?:\(00{1,4}\)|00{1,4})[ .\-/]?0{2,4}(?:[ .\-]0{2,4}){1,3}(?![\w\-]|[.,]0)")

# Secrets: (pattern, group holding the secret value). The two "ecret" patterns (AWS secret access keys)
# also need "aws" and an "s" just before the match (checked in code). Each pattern starts with a literal prefix (fast to
# find); the boundary before it is checked by a look-behind placed after that prefix.
_SECRET_PATTERNS: Tuple[Tuple[str, int], ...] = (
    (r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)(?<![A-Za-z0-9].{4})[A-Z0-9]{16}(?![A-Za-z0-9])", 0),
    (r"ecret[_\-. ]?(?:access|Access|ACCESS)?[_\-. ]?(?:key|Key|KEY)[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})"
     r"(?![A-Za-z0-9/+])", 1),
    (r"ECRET[_\-. ]?(?:ACCESS)?[_\-. ]?KEY[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1),
    (r"gh(?<![A-Za-z0-9_].{2})[pousr]_[A-Za-z0-9]{36,251}(?![A-Za-z0-9_])", 0),
    (r"github_pat_(?<![A-Za-z0-9_].{11})[A-Za-z0-9_]{22,255}(?![A-Za-z0-9_])", 0),
    (r"glpat-(?<![A-Za-z0-9_].{6})[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])", 0),
    (r"xox(?<![A-Za-z0-9_].{3})[abposr]-[A-Za-z0-9\-]{10,}(?![A-Za-z0-9\-])", 0),
    (r"https://hooks\.slack\.com/services/[A-Za-z0-9_/]{20,}", 0),
    (r"[srp]k_(?:live|test)_(?<![A-Za-z0-9_].{8})[A-Za-z0-9]{16,}(?![A-Za-z0-9])", 0),
    (r"AIza(?<![A-Za-z0-9_\-].{4})[0-9A-Za-z_\-]{35}(?![A-Za-z0-9_\-])", 0),
    (r"sk-(?<![A-Za-z0-9_\-].{3})(?:ant-|proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}(?![A-Za-z0-9_\-])", 0),
    (r"hf_(?<![A-Za-z0-9_].{3})[A-Za-z0-9]{34,}(?![A-Za-z0-9_])", 0),
    (r"npm_(?<![A-Za-z0-9_].{4})[A-Za-z0-9]{36}(?![A-Za-z0-9_])", 0),
    (r"pypi-AgEIcHlwaS5vcmc(?<![A-Za-z0-9_\-].{19})[A-Za-z0-9_\-]{50,}", 0),
    (r"eyJ(?<![A-Za-z0-9_\-].{3})[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}", 0),
)
_SECRETS = tuple((re.compile(p), g, p.startswith(("ecret", "ECRET"))) for p, g in _SECRET_PATTERNS)
# private key blocks: from the BEGIN line to the matching END line, or, when the END line is missing (a
# truncated paste), to the end of the base64 body
_KEY_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=:,\-\s]*")
_KEY_MAX = 65536  # longest block looked for between BEGIN and END
_AWS_BEFORE_SECRET = re.compile(r"(?<![A-Za-z0-9])aws[_\-. ]?s\Z", re.IGNORECASE)
# One of these must occur before the secret patterns are tried. Anchored on "_", "-" and "A" (rare
# characters), with the rest of each prefix checked by a look-behind, so the scan stays fast.
_SECRET_GATE = re.compile(
    r"_(?:(?<=gh[pousr]_)|(?<=hf_)|(?<=npm_)|(?<=_pat_)|(?<=k_live_)|(?<=k_test_))"
    r"|-(?:(?<=sk-)|(?<=glpat-)|(?<=pypi-)|(?<=xox[abposr]-)|----BEGIN)"
    r"|A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA|Iza)")
_SECRET_LITERALS = ("eyJ", "hooks.slack.com", "ecret", "ECRET")


# ---------------------------------------------------------------------------------------------------
# per-type finders: (text, shape) -> list of (start, end)
# ---------------------------------------------------------------------------------------------------
def _find_email(text: str, shape: str) -> List[Tuple[int, int]]:
    # anchored on "@": the domain is matched forwards, the local part read backwards
    out: List[Tuple[int, int]] = []
    at = text.find("@")
    floor = 0  # a local part may not reach into the previous address
    while at >= 0:
        m = _EMAIL_DOMAIN.match(text, at + 1)
        if m is not None:
            j = at
            lo = max(floor, at - 65)
            while j > lo and (text[j - 1] in _LOCAL_CHARS or (text[j - 1].isalnum() and not text[j - 1].isascii())):
                j -= 1  # ASCII address characters, and letters or digits of any script (müller@, josé@)
            i = j
            while i < at and text[i] in ".='":  # quotes and dots before the address are not part of it
                i += 1
            # the run must start at a boundary: the text's start, a non-address character, or the end of
            # the previous address (which a placeholder will replace)
            ok = (0 < at - i <= 64 and ".." not in text[i:at]
                  and (j == 0 or (j == floor and floor > 0) or not (text[j - 1].isalnum() or text[j - 1] in _LOCAL_CHARS)))
            if ok:
                out.append((i, m.end()))
                floor = m.end()
                at = text.find("@", m.end())
                continue
        at = text.find("@", at + 1)
    return out


def _octet_ok(s: str) -> bool:
    return len(s) <= 3 and (s == "0" or s[0] != "0") and int(s) <= 255


def _find_ipv4(text: str, shape: str, versions: Optional[List[Tuple[int, int]]] = None) -> List[Tuple[int, int]]:
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


def _find_ipv6(text: str, shape: str) -> List[Tuple[int, int]]:
    out: List[Tuple[int, int]] = []
    pos = 0
    while True:
        a = _IPV6_ANCHOR.search(text, pos)
        if a is None:
            return out
        s = a.start()
        lo = max(0, s - 40)
        while s > lo and text[s - 1] in _HEX_COLON:
            s -= 1
        if s == lo and s > 0 and text[s - 1] in _HEX_COLON:
            # a run of hex digits and colons longer than any address: skip all of it
            pos = max(a.end(), _HEX_COLON_RUN.match(text, a.start()).end())
            continue
        if s > 0 and (text[s - 1].isalnum() or text[s - 1] in "_."):
            pos = a.end()
            continue
        m = _IPV6.match(text, s)
        if m is None or m.end() <= a.start():
            pos = a.end()
            continue
        pos = m.end()
        cand = m.group()
        if cand.count(":") < 2 or not any(ch in _ASCII_DIGITS for ch in cand):
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


def _find_card(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    for rx in _CARD_PATTERNS:
        for m in rx.finditer(shape):
            s, e = m.span()
            digits = text[s:e].replace(" ", "").replace("-", "")
            if card_issuer_ok(digits) and luhn_valid(digits):
                out.append((s, e))
    return out


def _find_iban(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
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
        if n != want or (end < len(text) and (text[end].isalnum() or text[end] == "_")):
            continue
        if iban_valid(text[s:end].replace(" ", "")):
            out.append((s, end))
            pos = end


def _find_ssn(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    for rx in _SSN_PATTERNS:
        for m in rx.finditer(shape):
            s, e = m.span()
            if ssn_valid(text[s:s + 3], text[s + 4:s + 6], text[s + 7:e]):
                out.append((s, e))
    return out


def _phone_left_ok(shape: str, s: int) -> bool:
    if s == 0:
        return True
    ch = shape[s - 1]
    return not (ch.isalnum() or ch in "_+-.")


def _find_phone(text: str, shape: str) -> List[Tuple[int, int]]:
    out = []
    for m in _PHONE_INTL.finditer(shape):
        s, e = m.span()
        nd = sum(ch == "0" for ch in m.group())
        if 8 <= nd <= 15 and _phone_left_ok(shape, s):
            out.append((s, e))
    for m in _PHONE_NANP_TAIL.finditer(shape):
        p, e = m.span()
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
    lower = text.lower()
    for rx in _PHONE_WORDS:
        for w in rx.finditer(lower):
            if w.start() > 0 and (lower[w.start() - 1].isalnum() or lower[w.start() - 1] == "_"):
                continue
            m = _PHONE_TRUNK.match(shape, w.end())
            if m is None:
                continue
            nd = sum(ch == "0" for ch in m.group())
            if 9 <= nd <= 12 and text[m.start() + (1 if text[m.start()] == "(" else 0)] == "0":
                out.append(m.span())
    return out


def _find_secret(text: str, shape: str) -> List[Tuple[int, int]]:
    if _SECRET_GATE.search(text) is None and not any(lit in text for lit in _SECRET_LITERALS):
        return []
    out = []
    if "-----BEGIN" in text:
        ends = [m.span() for m in _KEY_END.finditer(text)]
        end_starts = [a for a, _ in ends]
        covered = 0
        for m in _KEY_BEGIN.finditer(text):
            if m.start() < covered:
                continue  # a BEGIN line inside a block already taken
            i = bisect.bisect_left(end_starts, m.end())
            if i < len(ends) and ends[i][0] - m.end() <= _KEY_MAX:
                e = ends[i][1]
            else:
                e = _KEY_BODY.match(text, m.end()).end()
                while e > m.end() and text[e - 1].isspace():  # the line break after the body is not the key's
                    e -= 1
            out.append((m.start(), e))
            covered = e
    for rx, g, aws in _SECRETS:
        for m in rx.finditer(text):
            if aws and _AWS_BEFORE_SECRET.search(text, max(0, m.start() - 6), m.start()) is None:
                continue
            s, e = m.span(g)
            if e > s:
                out.append((s, e))
    return out


#: entity type -> (needs a digit, finder)
_FINDERS: Dict[str, Tuple[bool, Callable[[str, str], List[Tuple[int, int]]]]] = {
    "secret": (False, _find_secret),
    "email": (False, _find_email),
    "iban": (True, _find_iban),
    "credit_card": (True, _find_card),
    "us_ssn": (True, _find_ssn),
    "ipv6": (False, _find_ipv6),
    "ipv4": (True, _find_ipv4),
    "phone": (True, _find_phone),
}


def resolve_overlaps(cands: Iterable[Detection], *, losers: Optional[List[Detection]] = None) -> List[Detection]:
    """Keep a set of non-overlapping detections: higher priority first, then longer, then earlier.

    Candidates turned down for an overlap are appended to ``losers`` when it is given.

    Example:
        >>> resolve_overlaps([Detection(0, 10, "phone"), Detection(2, 8, "email")])
        [Detection(start=2, end=8, entity='email')]
    """
    order = sorted(cands, key=lambda d: (PRIORITY.get(d.entity, 99), d.start - d.end, d.start))
    starts: List[int] = []
    kept: List[Detection] = []
    for d in order:
        i = bisect.bisect_right(starts, d.start)
        if (i > 0 and kept[i - 1].end > d.start) or (i < len(kept) and kept[i].start < d.end):
            if losers is not None:
                losers.append(d)
            continue
        starts.insert(i, d.start)
        kept.insert(i, d)
    return kept


def find_pii(text: str, entities: Optional[Sequence[str] | FrozenSet[str]] = None,
             extra: Sequence[Detection] = ()) -> List[Detection]:
    """All non-overlapping detections in ``text``, sorted by position.

    Args:
        text: the text to scan.
        entities: entity types to look for (default: all of :data:`ENTITY_TYPES`).
        extra: detections from another source (an NER backend) to merge, at lower priority.

    Example:
        >>> t = "card 4111 1111 1111 1111, bad 4111 1111 1111 1112"
        >>> [(d.entity, t[d.start:d.end]) for d in find_pii(t)]
        [('credit_card', '4111 1111 1111 1111')]
    """
    wanted = ENTITY_TYPES if entities is None else [e for e in ENTITY_TYPES if e in entities]
    dets, clipped = _detect_once(text, wanted, extra)
    # A candidate can be turned down because it touches another detection (a card right after an IPv6
    # address, a phone glued to an e-mail) or overlaps one that wins. Once that neighbour is replaced by a
    # placeholder, what is left of the candidate could be found in the output, so scrubbing would not be
    # idempotent and part of a value would stay. Settle it here: mask the detections the way a placeholder
    # would ("<...>") and look again, until nothing new appears. Only needed when a candidate lost an
    # overlap, or a detection touches a character that a neighbouring match could include.
    for _ in range(8):
        if not clipped and not any(_touches(text, d) for d in dets):
            break
        masked = _mask(text, dets)
        found, clipped = _detect_once(masked, wanted, ())
        new = [d for d in found if not any(d.start < t.end and t.start < d.end for t in dets)]
        if not new:
            break
        dets = sorted(dets + new)
        text = masked
    return dets


# Characters that, next to a detection, cannot hide a neighbouring match: no detector includes them in a
# match that could reach into the detection, and no look-around sees through them into it.
_INERT_BOTH = " \t\n\r\f\v<>\"[]{};!?|$&*^`"
_INERT_BEFORE = frozenset(_INERT_BOTH + "(=/#@'")
_INERT_AFTER = frozenset(_INERT_BOTH + "),:#")


def _touches(text: str, d: Detection) -> bool:
    """True when a character next to ``d`` could belong to (or be looked at by) another match."""
    if d.start > 0:
        ch = text[d.start - 1]
        if ch not in _INERT_BEFORE and not (ch == ":" and (d.start < 2 or text[d.start - 2] not in _HEX_COLON)):
            return True
    if d.end >= len(text):
        return False
    ch = text[d.end]
    if ch == "/":  # "name/1.2.3.4" reads as a version: only a number after it matters
        return any(c in _ASCII_DIGITS for c in text[d.end + 1:d.end + 3])
    if ch in ".=":  # the end of a sentence is harmless; "==1.2.3.4" or "..local@part" after it is not
        return d.end + 1 < len(text) and not text[d.end + 1].isspace()
    return ch not in _INERT_AFTER


def _mask(text: str, dets: Sequence[Detection]) -> str:
    parts: List[str] = []
    pos = 0
    for d in dets:
        parts += [text[pos:d.start], "<", "X" * (d.end - d.start - 2), ">"]
        pos = d.end
    parts.append(text[pos:])
    return "".join(parts)


def _detect_once(text: str, wanted: Sequence[str], extra: Sequence[Detection]) -> Tuple[List[Detection], bool]:
    """(non-overlapping detections, whether to look again once they are masked).

    Looking again is needed when a candidate lost an overlap while reaching outside the winners, or when
    a dotted quad was read as a version with a detection in the 80 characters before it (its context).
    """
    shape = text_shape(text)
    has_digit = "0" in shape
    cands: List[Detection] = list(extra)
    versions: List[Tuple[int, int]] = []
    for name in wanted:
        needs_digit, finder = _FINDERS[name]
        if needs_digit and not has_digit:
            continue
        found = _find_ipv4(text, shape, versions) if name == "ipv4" else finder(text, shape)
        for s, e in found:
            cands.append(Detection(s, e, name))
    if not cands:
        return cands, False
    losers: List[Detection] = []
    kept = resolve_overlaps(cands, losers=losers) if len(cands) > 1 else cands
    for c in losers:
        if _uncovered(c, kept):
            return kept, True
    for vs, _ in versions:
        if any(d.start < vs and vs - d.end <= 80 for d in kept):
            return kept, True
    return kept, False


def _uncovered(c: Detection, kept: Sequence[Detection]) -> bool:
    """True when some character of ``c`` lies outside every detection of ``kept`` (sorted, disjoint)."""
    i = max(0, bisect.bisect_right([d.start for d in kept], c.start) - 1)
    pos = c.start
    while i < len(kept) and kept[i].start < c.end:
        d = kept[i]
        if d.end > pos:
            if d.start > pos:
                return True
            pos = d.end
        i += 1
    return pos < c.end
