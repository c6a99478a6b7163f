"""Secrets in text: API keys and tokens of well-known services, AWS secret access keys, private key blocks.

:func:`find_secret` follows the finder contract of :mod:`.finders` (``(text, shape)`` -> ``(start, end)`` spans).
A text is scanned only when a rare anchor (``_``, ``-``, ``A`` after a known prefix) or a literal prefix occurs.

Example:
    >>> t = "key AKIAIOSFODNN7EXAMPLE here"
    >>> [t[s:e] for s, e in find_secret(t, "")]
    ['AKIAIOSFODNN7EXAMPLE']
"""
from __future__ import annotations

import bisect
import re
from typing import List, Tuple

__all__ = ["find_secret", "secret_anchors", "secret_gate"]

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
    (r"pypi-AgEIcHlwaS5vcmc(?<![A-Za-z0-9_\-].{20})[A-Za-z0-9_\-]{50,}", 0),
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
# The same gate as one pattern per anchor character: a pattern that starts with one literal character is
# scanned for with a fast loop, one that starts with a choice of three is tried character by character (about
# five times slower on e-mails). With the literals they make the anchors of :func:`secret_anchors`.
_GATE_PARTS = (
    re.compile(r"_(?:(?<=gh[pousr]_)|(?<=hf_)|(?<=npm_)|(?<=_pat_)|(?<=k_live_)|(?<=k_test_))"),
    re.compile(r"-(?:(?<=sk-)|(?<=glpat-)|(?<=pypi-)|(?<=xox[abposr]-)|----BEGIN)"),
    re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA|Iza)"),
)
_SECRET_LITERALS = ("eyJ", "hooks.slack.com", "ecret", "ECRET")
# For each of _SECRET_PATTERNS, the anchor (index into secret_anchors) that every match of it contains: a
# pattern runs only when its anchor occurs (gh[pousr]_, github_pat_, [srp]k_live_, hf_, npm_ hold an anchor of
# the "_" part; glpat-, xox?-, sk-, pypi- of the "-" part; AKIA..., AIza of the "A" part; the rest a literal)
_PATTERN_ANCHOR = (2, 5, 6, 0, 0, 1, 1, 4, 0, 2, 1, 0, 0, 1, 3)


def secret_anchors(text: str) -> Tuple[bool, ...]:
    """Which anchors of the secret patterns occur in ``text``: the ``"_"``, ``"-"`` and ``"A"`` parts of
    ``_SECRET_GATE``, then each of ``_SECRET_LITERALS``. Every secret pattern needs one (and every key block
    the ``"-"`` part).

    Example:
        >>> secret_anchors("token ghp_x and eyJ")
        (True, False, False, True, False, False, False)
    """
    # "_" and "J" are rare in prose: looking for one character first (memchr) saves most of the slower scans
    # for "_..." and "eyJ"
    return (("_" in text and _GATE_PARTS[0].search(text) is not None),
            _GATE_PARTS[1].search(text) is not None, _GATE_PARTS[2].search(text) is not None,
            "J" in text and "eyJ" in text, "hooks.slack.com" in text, "ecret" in text, "ECRET" in text)


def secret_gate(text: str) -> bool:
    """Whether a secret pattern can match ``text``: ``_SECRET_GATE`` or one of ``_SECRET_LITERALS`` is found.

    Example:
        >>> secret_gate("no keys here"), secret_gate("token ghp_x")
        (False, True)
    """
    return any(secret_anchors(text))


def find_secret(text: str, shape: str) -> List[Tuple[int, int]]:
    anchors = secret_anchors(text)
    if not any(anchors):
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
    for (rx, g, aws), anchor in zip(_SECRETS, _PATTERN_ANCHOR):
        if not anchors[anchor]:
            continue  # the pattern cannot match without its anchor
        for m in rx.finditer(text):
            if aws and _AWS_BEFORE_SECRET.search(text, max(0, m.start() - 6), m.start()) is None:
                continue
            s, e = m.span(g)
            if e > s:
                out.append((s, e))
    return out
