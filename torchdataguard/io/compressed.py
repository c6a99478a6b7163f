"""Opening an input file for reading, compressed or not: what its first bytes say decides, then its name.

gzip, xz and bzip2 are read with the standard library, Zstandard with pyarrow (a dependency already: its
``zstd`` codec). A compressed file whose name does not say so (``--format jsonl data``) is decompressed; a file
whose name says a compression its first bytes do not show is opened by its name, and the decompressor reports it
damaged (exit 3), as before, unless its first bytes are plain text: that file (a browser decompresses a ``.gz``
download and keeps the name) is refused with the ``mv`` line that renames it (exit 2).
Until the fifteenth session (2026-12-07) the name decided: ``data.jsonl.bz2`` and ``.zst`` were refused
(``--format`` advised), and with ``--format jsonl`` their compressed bytes were read as text, so the scan ended
with every "line" dropped as ``invalid/not_utf8`` (exit 4) and advice to convert the file with ``iconv``.
A ZIP archive (an ``.xlsx`` workbook is one) is refused with the fix.
"""
from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import os
from typing import IO, Optional

from ..errors import ConfigError

__all__ = ["COMPRESSED_SUFFIXES", "compression_of", "convert_command", "open_binary", "zip_refusal"]

#: the file name endings of the compressed files read (a name ending so is guessed by what precedes it)
COMPRESSED_SUFFIXES = (".gz", ".xz", ".bz2", ".zst", ".zstd")

#: what the first bytes of a file say: the bzip2 block or end-of-stream magic follows "BZh" and a level digit
_ZSTD, _XZ, _GZIP, _ZIP = b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00", b"\x1f\x8b", b"PK\x03\x04"
_BZ2_NEXT = (b"1AY&SY", b"\x17rE8P\x90")


def compression_of(path: str) -> Optional[str]:
    """``"gzip"``, ``"xz"``, ``"bzip2"``, ``"zstd"`` or ``"zip"`` by the file's first bytes; ``None`` for a plain file.

    Example:
        >>> import tempfile, os, bz2
        >>> p = os.path.join(tempfile.mkdtemp(), "x.jsonl")
        >>> _ = open(p, "wb").write(bz2.compress(b'{"text": "a"}\\n'))
        >>> compression_of(p)
        'bzip2'
    """
    with open(path, "rb") as fh:
        head = fh.read(10)
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_XZ):
        return "xz"
    if head.startswith(_ZSTD):
        return "zstd"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] in _BZ2_NEXT:
        return "bzip2"
    if head.startswith(_ZIP):
        return "zip"
    return None


def _by_name(path: str) -> Optional[str]:
    """The compression the file name says (``.gz`` ...): a file whose first bytes match none is damaged, and the
    decompressor says how (a gzip file with a broken header is not read as text)."""
    low = path.lower()
    for suffix, kind in ((".gz", "gzip"), (".xz", "xz"), (".bz2", "bzip2"), (".zst", "zstd"), (".zstd", "zstd")):
        if low.endswith(suffix):
            return kind
    return None


def open_binary(path: str) -> IO[bytes]:
    """``path`` opened for reading its bytes, decompressed when its first bytes say so (see :func:`compression_of`).

    Raises:
        ConfigError: a ZIP archive, or a Zstandard file when pyarrow has no ``zstd`` codec (each with the command
        that makes the file readable).
    """
    found = compression_of(path)
    kind = found or _by_name(path)
    if found is None and kind is not None and _plain_text(path):
        raise _plain_but_named(path)
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "zstd":
        import pyarrow as pa

        if not pa.Codec.is_available("zstd"):
            # zstd -d needs a .zst name to name what it writes ("unknown suffix" otherwise): -o names it
            named = path.lower().endswith((".zst", ".zstd"))
            raise ConfigError(f"{path} is Zstandard-compressed and this pyarrow build has no zstd codec: decompress "
                              f"it first, e.g. zstd -d {path}" + ("" if named else f" -o {path}.decompressed"))
        return io.BufferedReader(pa.input_stream(path, compression="zstd"))
    if kind == "zip":
        raise zip_refusal(path)
    return open(path, "rb")


def _plain_text(path: str) -> bool:
    """True when the file's first bytes are UTF-8 text with no NUL (no compressed stream, damaged or not, is)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head or b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at byte 512 is fine
    except UnicodeDecodeError:
        return False
    return True


def _plain_but_named(path: str) -> ConfigError:
    """The error for a plain text file named as compressed (a browser decompresses a ``.gz`` download and keeps
    its name): until 2026-12-07 the decompressor's "Not a gzipped file" ended the scan with exit 3 and advice to
    re-download a file that was fine."""
    stem = path
    for suffix in COMPRESSED_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return ConfigError(f"{path} is named as compressed ({path[len(stem):]}) but holds plain text (a browser may have "
                       f"decompressed the download and kept its name): rename it, e.g. mv {path} {stem}, and scan that")


def zip_refusal(path: str) -> ConfigError:
    """The error for a ZIP archive given as the input, with the fix."""
    return ConfigError(f"{path} is a ZIP archive (an .xlsx workbook is one too); the scan reads one JSONL, JSON, CSV or "
                       f"Parquet file, plain or gzip, xz, bzip2 or Zstandard compressed: extract the file first, e.g. "
                       f"unzip {path}, and scan it (a workbook: save its sheet as 'CSV UTF-8')")


#: the command that writes a compressed file's bytes out, by compression
_CAT = {"gzip": "zcat", "xz": "xzcat", "bzip2": "bzcat", "zstd": "zstdcat"}


def convert_command(path: str, encoding: str) -> str:
    """The shell line that converts the text file ``path`` from ``encoding`` to UTF-8, decompressing it first when
    it is compressed (``iconv`` on the compressed bytes, as advised until the fifteenth session, writes garbage).

    Example:
        >>> import tempfile, os, gzip
        >>> p = os.path.join(tempfile.mkdtemp(), "sheet.csv.gz")
        >>> _ = open(p, "wb").write(gzip.compress(b"id,text\\n"))
        >>> convert_command(p, "WINDOWS-1252").replace(p, "sheet.csv.gz")
        'zcat sheet.csv.gz | iconv -f WINDOWS-1252 -t UTF-8 > converted.csv'
    """
    try:
        kind = compression_of(path) or _by_name(path)
    except OSError:
        kind = _by_name(path)
    if kind not in _CAT:
        return f"iconv -f {encoding} -t UTF-8 {path} > converted{os.path.splitext(path)[1]}"
    stem = path
    for suffix in COMPRESSED_SUFFIXES:  # converted.csv from sheet.csv.gz
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return f"{_CAT[kind]} {path} | iconv -f {encoding} -t UTF-8 > converted{os.path.splitext(stem)[1]}"
