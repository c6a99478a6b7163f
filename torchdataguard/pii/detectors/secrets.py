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

__all__ = ["find_secret"]

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


def find_secret(text: str, shape: str) -> List[Tuple[int, int]]:
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
