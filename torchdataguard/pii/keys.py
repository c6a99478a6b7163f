"""Pseudonymisation keys: the :class:`SecretKey` that never shows its bytes, and the canonical form of a value
(so that spellings of one value share a pseudonym).

The key comes from ``key=`` or from the environment variable :data:`KEY_ENV`; ``config()``, ``repr()``,
reports and error messages carry at most a one-way ``key_id``.

Example:
    >>> k = SecretKey("correct horse battery staple")
    >>> repr(k), canonical_value("email", "Bob@Example.org")
    ('SecretKey(<hidden>)', 'bob@example.org')
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re

from ..errors import ConfigError

__all__ = ["KEY_ENV", "MIN_KEY_BYTES", "SecretKey", "canonical_value", "key_from_env"]

#: Environment variable read for the pseudonymisation key when ``key`` is not given.
KEY_ENV = "TORCHDATAGUARD_PII_KEY"
#: The shortest key accepted, in bytes.
MIN_KEY_BYTES = 16
# a mainland mobile number without its country code: 13812345678, 138 1234 5678, 138-1234-5678
_CN_MOBILE = re.compile(r"1[3-9][0-9](?P<sep>[ \-]?)[0-9]{4}(?P=sep)[0-9]{4}")
# how a North American number without its country code is written (the phone finder's groups): ten digits grouped
# otherwise and without "+" are a country code and a national number (65 6123 4567)
_NANP_GROUPS = re.compile(r"\(?[0-9]{3}\)?[ .\-]?[0-9]{3}[ .\-][0-9]{4}")


class SecretKey:
    """Holds the pseudonymisation key; its ``repr`` and ``str`` never show the key.

    It pickles (DataLoader workers need the key to compute the same pseudonyms), so treat a pickled
    stage like the key itself. ``key_id`` is a short one-way fingerprint for telling keys apart.

    Example:
        >>> k = SecretKey("correct horse battery staple")
        >>> repr(k)
        'SecretKey(<hidden>)'
        >>> len(k.key_id)
        8
    """

    __slots__ = ("_key",)

    def __init__(self, key: str | bytes) -> None:
        if isinstance(key, str):
            raw = key.encode("utf-8")
        elif isinstance(key, (bytes, bytearray)):
            raw = bytes(key)
        else:
            raise ConfigError(f"key must be str or bytes, got {type(key).__name__}; pass a secret of at least "
                              f"{MIN_KEY_BYTES} bytes, e.g. key=os.environ['{KEY_ENV}']")
        if len(raw) < MIN_KEY_BYTES:
            raise ConfigError(f"key is {len(raw)} bytes long; expected at least {MIN_KEY_BYTES} bytes. Use a random "
                              f"secret, e.g. python -c 'import secrets; print(secrets.token_hex(32))'")
        self._key = raw

    @property
    def key_id(self) -> str:
        """An 8-hex-digit fingerprint (HMAC of a fixed label); equal keys give equal ids."""
        return hmac.new(self._key, b"torchdataguard/pii/key-id", hashlib.sha256).hexdigest()[:8]

    def mac(self) -> "hmac.HMAC":
        """A fresh HMAC-SHA256 object keyed with this key."""
        return hmac.new(self._key, digestmod=hashlib.sha256)

    def __repr__(self) -> str:
        return "SecretKey(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self.key_id)

    def __getstate__(self):
        return {"_key": self._key}

    def __setstate__(self, state):
        self._key = state["_key"]


def key_from_env() -> str:
    """The key in the environment variable :data:`KEY_ENV`; a :class:`~torchdataguard.errors.ConfigError`
    that says how to give one when it is not set."""
    env = os.environ.get(KEY_ENV)
    if not env:
        raise ConfigError(f"action 'pseudonymize' needs a secret key: pass key=... (at least "
                          f"{MIN_KEY_BYTES} bytes) or set the environment variable {KEY_ENV}. "
                          f"The same key gives the same pseudonyms in every run; it is never "
                          f"written to reports.")
    return env


def canonical_value(entity: str, value: str) -> str:
    """The canonical form of a value, so that spellings of one value share a pseudonym.

    Example:
        >>> canonical_value("phone", "(212) 555-0100"), canonical_value("iban", "gb82 west 1234 5698 7654 32")
        ('12125550100', 'GB82WEST12345698765432')
        >>> canonical_value("phone", "138-1234-5678") == canonical_value("phone", "+86 138 1234 5678")
        True
    """
    if entity in ("credit_card", "us_ssn"):
        return "".join(ch for ch in value if ch.isdigit())
    if entity == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        if (not value.lstrip("( ").startswith("+") and len(digits) == 10 and not digits.startswith("0")
                and _NANP_GROUPS.fullmatch(value.strip())):
            digits = "1" + digits  # a North American number written without its country code
        elif _CN_MOBILE.fullmatch(value):
            digits = "86" + digits  # a mainland mobile number written without its country code
        elif value.lstrip("(（ ").startswith("00"):
            digits = digits[2:]  # 0086 138 ... is +86 138 ...
        return digits
    if entity == "national_id":
        return "".join(ch for ch in value if ch.isalnum()).upper()  # A123456(3) and A123456（3） alike
    if entity == "passport":
        return value.upper()
    if entity == "iban":
        return value.replace(" ", "").upper()
    if entity == "email":
        return value.lower()
    if entity == "ipv6":
        try:
            return ipaddress.IPv6Address(value).compressed
        except ValueError:  # pragma: no cover - detections are validated already
            return value.lower()
    return value.strip()
