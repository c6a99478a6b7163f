"""Streaming readers for ``torchdataguard scan``: JSONL, JSON, CSV, Parquet and saved ``datasets`` folders.

Readers yield records one at a time, so memory is bounded by the index, not by the corpus. A line that is
not valid UTF-8 or not valid JSON becomes a :class:`~torchdataguard.core.plan.BadRecord`, which the guard
drops with reason ``invalid/not_utf8`` or ``invalid/json`` instead of stopping the scan.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import lzma
import os
from typing import Any, Iterator, Optional, Tuple

from ..core.plan import BadRecord
from ..errors import ConfigError

__all__ = ["count_records", "detect_format", "read_records", "resolve_input"]

FORMATS = ("jsonl", "json", "csv", "parquet", "datasets")


def detect_format(path: str) -> str:
    """Guess the input format from the path (``.jsonl``, ``.json``, ``.csv``, ``.parquet`` or a folder)."""
    if os.path.isdir(path):
        if any(os.path.exists(os.path.join(path, f)) for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "datasets"
        raise ConfigError(f"{path!r} is a folder but not a saved datasets folder (no dataset_info.json, state.json "
                          f"or dataset_dict.json); pass a file or the folder written by Dataset.save_to_disk")
    if not os.path.exists(path):
        raise ConfigError(f"input {path!r} does not exist")
    name = path.lower()
    for comp in (".gz", ".xz"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    for ext, fmt in ((".jsonl", "jsonl"), (".ndjson", "jsonl"), (".json", "json"), (".csv", "csv"),
                     (".parquet", "parquet"), (".pq", "parquet")):
        if name.endswith(ext):
            return fmt
    raise ConfigError(f"cannot tell the format of {path!r}: expected one of .jsonl, .json, .csv, .parquet (optionally "
                      f".gz) or a saved datasets folder; or pass --format")


def resolve_input(path: str) -> str:
    """``sample:NAME`` names data shipped with the package (``sample:spamassassin``); other paths pass."""
    if path.startswith("sample:"):
        from ..assets import asset_path

        return asset_path(path.split(":", 1)[1])
    return path


def _open_binary(path: str):
    low = path.lower()
    if low.endswith(".gz"):
        return gzip.open(path, "rb")
    if low.endswith(".xz"):
        return lzma.open(path, "rb")
    return open(path, "rb")


def count_records(path: str, fmt: Optional[str] = None) -> Optional[int]:
    """Number of records, when it is cheap to know (for the progress bar's ETA)."""
    fmt = fmt or detect_format(path)
    try:
        if fmt == "jsonl":
            n = 0
            last = b"\n"
            with _open_binary(path) as fh:
                while True:
                    block = fh.read(1 << 22)
                    if not block:
                        break
                    n += block.count(b"\n")
                    last = block[-1:]
            return n + (0 if last == b"\n" else 1)
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(path).metadata.num_rows
    except OSError:
        return None
    return None


def read_records(path: str, fmt: Optional[str] = None, *, split: Optional[str] = None) -> Iterator[Any]:
    """Yield the records of ``path`` one by one.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x.jsonl")
        >>> _ = open(p, "w").write('{"text": "a"}\\n{"text": "b"}\\n')
        >>> [r["text"] for r in read_records(p)]
        ['a', 'b']
    """
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise ConfigError.bad("format", fmt, f"one of {FORMATS}")
    if fmt == "jsonl":
        yield from _read_jsonl(path)
    elif fmt == "json":
        with _open_binary(path) as fh:
            try:
                data = json.loads(fh.read().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{path!r} is not a valid UTF-8 JSON file ({exc}); for one record per line use .jsonl") from None
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ConfigError(f"{path!r} holds a JSON object; expected a list of records or an object with exactly "
                                  f"one list of records (found {len(lists)} lists)")
            data = lists[0]
        if not isinstance(data, list):
            raise ConfigError(f"{path!r} holds a JSON {type(data).__name__}; expected a list of records")
        yield from data
    elif fmt == "csv":
        with _open_binary(path) as fh:
            text = io.TextIOWrapper(fh, encoding="utf-8", errors="surrogateescape", newline="")
            for row in csv.DictReader(text):
                yield {k: (_fix(v) if isinstance(v, str) else v) for k, v in row.items()}
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        for batch in pf.iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    else:
        import datasets

        obj = datasets.load_from_disk(path)
        if isinstance(obj, datasets.DatasetDict):
            if split is None:
                if len(obj) != 1:
                    raise ConfigError(f"{path!r} holds splits {list(obj)}; pass --split NAME")
                split = next(iter(obj))
            if split not in obj:
                raise ConfigError.bad("split", split, f"one of {list(obj)}")
            obj = obj[split]
        for start in range(0, len(obj), 4096):
            cols = obj[start : start + 4096]
            n = len(next(iter(cols.values()))) if cols else 0
            for j in range(n):
                yield {k: v[j] for k, v in cols.items()}


def _fix(v: str) -> Any:
    """CSV cells with invalid UTF-8 were decoded with surrogateescape: hand them on as bytes."""
    try:
        v.encode("utf-8")
        return v
    except UnicodeEncodeError:
        return v.encode("utf-8", "surrogateescape")


def _read_jsonl(path: str) -> Iterator[Any]:
    with _open_binary(path) as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield BadRecord("not_utf8", f"line {lineno}")
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield BadRecord("json", f"line {lineno}")
