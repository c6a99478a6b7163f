"""Fast detectors for personal data and secrets in text, with checksum and context validation.

Every detector is a compiled regular expression that proposes candidates (:mod:`.finders`, matched on the
text's shape, :mod:`.shape`; keys and tokens in :mod:`.secrets`; Chinese numbers in :mod:`.finders_zh`), followed by a cheap validator that rejects what the pattern alone cannot
(:mod:`.checksums`: Luhn and issuer prefix of cards, IBAN length and mod-97, assignable SSNs; :mod:`.context`:
IPv4-shaped version strings are left alone). Overlapping candidates are resolved by a fixed priority
(:mod:`.overlap`), so every character belongs to at most one detection; :func:`find_pii` (:mod:`.detect`)
puts it together.

Everything here is module-level and stateless, so it pickles for DataLoader workers at no cost.

Example:
    >>> from torchdataguard.pii.detectors import find_pii
    >>> text = "Mail jane.doe@example.org from 10.0.0.7, not version 1.2.3.4."
    >>> [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    [('email', 'jane.doe@example.org'), ('ipv4', '10.0.0.7')]
"""
from .checksums import IBAN_LENGTHS, card_issuer_ok, iban_valid, luhn_valid, ssn_valid
from .context import is_version_context
from .detect import find_pii
from .overlap import ENTITY_TYPES, PRIORITY, Detection, resolve_overlaps
from .shape import text_shape

__all__ = [
    "ENTITY_TYPES",
    "IBAN_LENGTHS",
    "PRIORITY",
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
