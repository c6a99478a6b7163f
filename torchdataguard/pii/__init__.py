"""Personal data in records: find it and redact, pseudonymise or drop it (:class:`PIIScrubber`).

* :mod:`.scrubber`: the :class:`PIIScrubber` stage and its :class:`PIIConfig`.
* :mod:`.keys`: the pseudonymisation key (:class:`SecretKey`) and the canonical form of a value.
* :mod:`.detectors`: the fast detectors (checksums, finders, overlap resolution, :func:`find_pii`).
* :mod:`.ner`: the optional Presidio backend for names and places (``PIIScrubber(ner=True)``).
* :mod:`.synthetic`: synthetic values with valid (or broken) checksums, for tests and benchmarks.

Example:
    >>> from torchdataguard.pii import PIIScrubber
    >>> PIIScrubber().scrub("write to jane@example.org")
    'write to <EMAIL>'
"""
from .detectors import ENTITY_TYPES, Detection, find_pii
from .keys import KEY_ENV, SecretKey
from .ner import NER_ENTITY_TYPES
from .scrubber import ACTIONS, PIIConfig, PIIScrubber

__all__ = ["ACTIONS", "ENTITY_TYPES", "KEY_ENV", "NER_ENTITY_TYPES", "Detection", "PIIConfig", "PIIScrubber",
           "SecretKey", "find_pii"]
