"""Data that ships with torchdataguard (see README.md in this folder for sources and licences)."""
from __future__ import annotations

import json
import lzma
import os
from typing import Any, Dict, Iterator, List, Optional

__all__ = ["asset_path", "load_spamassassin"]

_HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = {"spamassassin": "spamassassin.jsonl.xz"}
#: one line per sample, listed when ``sample:NAME`` names no shipped sample
SAMPLE_NOTES = {"spamassassin": "6,046 e-mails of the SpamAssassin public corpus: id, group, label, text"}


def asset_path(name: str) -> str:
    """Path of a shipped file, or of a named sample (``"spamassassin"``)."""
    path = os.path.join(_HERE, SAMPLES.get(name, name))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no shipped asset {name!r}; available: {sorted(SAMPLES)}")
    return path


def iter_spamassassin() -> Iterator[Dict[str, Any]]:
    with lzma.open(asset_path("spamassassin"), "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def load_spamassassin(limit: Optional[int] = None) -> List[Dict[str, Any]]:
    """The shipped SpamAssassin corpus as a list of ``{"id", "group", "label", "text"}`` dicts.

    Example:
        >>> rows = load_spamassassin(limit=3)
        >>> sorted(rows[0])
        ['group', 'id', 'label', 'text']
    """
    out = []
    for i, row in enumerate(iter_spamassassin()):
        if limit is not None and i >= limit:
            break
        out.append(row)
    return out
