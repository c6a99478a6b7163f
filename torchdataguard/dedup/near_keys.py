"""Keys of near-duplicate detection: 4-bit MinHash signatures, and exact shingle sets of small documents."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence

import numpy as np

from ..core.stage import Example, Keyer
from ..core.tokenids import token_ids_problem
from ..errors import GuardInputError
from . import xp
from .cpu import one_thread
from .hashing import text_shingle_hashes, token_shingle_hashes
from .keys_numpy import grouped_numpy_keys
from .minhash import EMPTY, densify, minhash_bins
from .setops import gather_sets, shingle_sets

if TYPE_CHECKING:  # pragma: no cover
    from .near_config import NearDedupConfig
    from .xp import Array

__all__ = ["NearKeyer", "NearKeys", "keys_from_shingles", "signatures_from_batch", "torch_keys_from_shingles"]


class NearKeys:
    """Keys of a chunk of ``m`` rows: NumPy arrays, or torch tensors (see :mod:`torchdataguard.dedup.xp`).

    Attributes:
        nib: uint8 [m, num_perm] 4-bit signatures (zero, and unused, for rows with fewer than ``exact_below``
            distinct shingles).
        valid: bool [m], rows that had content.
        size: int64 [m] distinct shingle count where it is under ``K3`` (see
            :func:`~torchdataguard.dedup.smallsets.exact_limits`), else ``K3``; 0 for rows without content.
        sets, off: the sorted (mixed) shingle hashes of row ``i`` are ``sets[off[i]:off[i + 1]]`` (rows under
            ``K3``; empty for the others).
    """

    def __init__(self, nib: "Array", valid: "Array", size: "Array", sets: "Array", off: "Array") -> None:
        self.nib = nib
        self.valid = valid
        self.size = size
        self.sets = sets
        self.off = off
        self._all_large: Optional[bool] = None

    def all_large(self, limit: int) -> bool:
        """True when no row with content has fewer than ``limit`` (``K3``) shingles (cached)."""
        if self._all_large is None:
            self._all_large = not bool(((self.size < limit) & self.valid).any())
        return self._all_large

    def to(self, device: Any) -> "NearKeys":
        """The keys held as a stage on ``device`` holds arrays (themselves when they are)."""
        if xp.same_device(self.nib, device):
            return self
        return NearKeys(*(xp.as_device(t, device) for t in (self.nib, self.valid, self.size, self.sets, self.off)))

    @one_thread
    def take(self, idx: Sequence[int]) -> "NearKeys":
        """The keys of rows ``idx``, in that order."""
        t = xp.asarray(list(idx), "int64", like=self.nib)
        vals, _ = gather_sets(self.sets, self.off, t)
        off = xp.zeros(xp.numel(t) + 1, like=self.off)
        if xp.numel(t):
            off[1:] = xp.cumsum(self.off[t + 1] - self.off[t])
        return NearKeys(self.nib[t], self.valid[t], self.size[t], vals, off)


def keys_from_shingles(hashes: "Array", doc: "Array", n: int, cfg: "NearDedupConfig") -> NearKeys:
    """Keys of ``n`` documents from their shingle hashes (``doc[s]`` is the document of shingle ``s``).

    Documents whose filled MinHash bins reach ``K3`` have at least that many distinct shingles and get only a
    signature; the others' distinct shingles are counted exactly and kept when under ``K3``. Rows under
    ``exact_below`` skip densification (they never ask the LSH index). NumPy arrays take the NumPy path
    (:func:`~torchdataguard.dedup.keys_numpy.numpy_keys`) and give NumPy keys, tensors
    :func:`torch_keys_from_shingles`; both give the same keys.

    Example:
        >>> from torchdataguard.dedup.near_config import NearDedupConfig
        >>> h, d = text_shingle_hashes(["a short text", "another short text"], ngram=5)
        >>> k = keys_from_shingles(h, d, 2, NearDedupConfig())
        >>> k.size.tolist(), k.valid.tolist()
        ([1, 1], [True, True])
    """
    if xp.is_tensor(hashes):
        return torch_keys_from_shingles(hashes, doc, n, cfg)
    nib, size, sets, off = grouped_numpy_keys(hashes, xp.numpy_of(doc), n, cfg.num_perm, cfg.seed, cfg.limits)
    return NearKeys(nib, size > 0, size, sets, off)


def torch_keys_from_shingles(hashes: "Array", doc: "Array", n: int, cfg: "NearDedupConfig") -> NearKeys:
    """:func:`keys_from_shingles` with torch operations on the tensors' device (GPUs; CPU stages hold tensors
    with ``TORCHDATAGUARD_DEDUP_ARRAYS=torch``).

    Example:
        >>> import torch
        >>> from torchdataguard.dedup.near_config import NearDedupConfig
        >>> h, d = text_shingle_hashes(["a short text", "another short text"], ngram=5)
        >>> k = torch_keys_from_shingles(torch.from_numpy(h.view("int64")), torch.from_numpy(d), 2, NearDedupConfig())
        >>> k.size.tolist(), k.valid.tolist()
        ([1, 1], [True, True])
    """
    K, _, K3 = cfg.limits
    x, sig = minhash_bins(hashes, doc, n, cfg.num_perm, cfg.seed)
    filled = (sig != EMPTY).sum(1)
    size, sets, off = shingle_sets(x, xp.to_like(doc, x), filled < K3, K3)
    lsh = xp.nonzero(size >= K)
    if xp.numel(lsh) == n:  # the usual case for documents of more than a few sentences
        nib = xp.astype(densify(sig, cfg.num_perm, cfg.seed) & 15, "uint8")
    else:
        nib = xp.zeros((n, cfg.num_perm), "uint8", like=sig)
        if xp.numel(lsh):
            nib[lsh] = xp.astype(densify(sig[lsh], cfg.num_perm, cfg.seed) & 15, "uint8")
    return NearKeys(nib, size > 0, size, sets, off)


def _token_ids(value: Any, like: "Array", ex: Example, field: str) -> "Array":
    """A record's token ids (a list, a NumPy array or a tensor) as a flat int64 array of ``like``'s kind; a clear
    :class:`~torchdataguard.errors.GuardInputError` for a value that is not token ids (a guard's planner drops such
    records before they get here, as ``invalid/not_token_ids``; this is for a keyer called on its own). A list of
    integers, the usual value, is converted once: already integer and flat, it needs no second look."""
    if not xp.is_tensor(like) and isinstance(value, (list, tuple, np.ndarray)):
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError, OverflowError):  # ragged nested lists: named below
            arr = None
        if arr is not None and arr.dtype.kind == "i" and all(d == 1 for d in arr.shape[:-1]):
            return arr.reshape(-1).astype(np.int64)
    problem = token_ids_problem(value)
    if problem is not None:
        raise GuardInputError(f"record {ex.id!r}: field {field!r} is invalid: {problem}. NearDedup compares token "
                              f"ids only as one flat sequence of integers per record; fix or remove the record")
    if not xp.is_tensor(like) and not xp.is_tensor(value):
        return np.asarray(value).reshape(-1).astype(np.int64)
    return xp.astype(xp.asarray(value, like=like).reshape(-1), "int64")


class NearKeyer(Keyer):
    """Keys of a list of examples for :class:`~torchdataguard.NearDedup` (picklable; runs in workers). On the
    CPU the keys are NumPy arrays (see :mod:`torchdataguard.dedup.xp`)."""

    def __init__(self, cfg: "NearDedupConfig", device: str = "cpu") -> None:
        self.cfg = cfg
        self.device = device

    @property
    def token_ids_field(self) -> Optional[str]:
        """The field of token ids read from records without text (the planner checks it), or None."""
        return None if self.cfg.shingles == "words" else self.cfg.token_field

    @property
    def token_ids_field_with_text(self) -> Optional[str]:
        """The field of token ids read also from records that hold text (``shingles="tokens"``), or None."""
        return self.cfg.token_field if self.cfg.shingles == "tokens" else None

    @one_thread
    def __call__(self, exs: Sequence[Example]) -> NearKeys:
        cfg = self.cfg
        m = len(exs)
        dev = self.device
        if cfg.shingles != "tokens":
            texts = [ex.text for ex in exs]
            if None not in texts:  # every row has text: shingle i's document is already its row
                h, d = text_shingle_hashes(texts, cfg.ngram, char_ngram=cfg.char_ngram or cfg.ngram,
                                           mode=cfg.text_shingles, abugida_ngram=cfg.abugida_ngram or cfg.ngram)
                if xp.on_numpy(dev):
                    return keys_from_shingles(h, d, m, cfg)
                return keys_from_shingles(xp.asarray(h.view("int64"), device=dev), xp.asarray(d, device=dev), m, cfg)
        text_rows: List[int] = []
        tok_rows: List[int] = []
        for i, ex in enumerate(exs):
            if cfg.shingles != "tokens" and ex.text is not None:
                text_rows.append(i)
            elif cfg.shingles != "words" and isinstance(ex.record, Mapping) and ex.record.get(cfg.token_field) is not None:
                tok_rows.append(i)
        e = xp.zeros(0, device=dev)
        hs: List["Array"] = [e]
        ds: List["Array"] = [e]
        if text_rows:
            h, d = text_shingle_hashes([exs[i].text for i in text_rows], cfg.ngram,
                                       char_ngram=cfg.char_ngram or cfg.ngram, mode=cfg.text_shingles,
                                       abugida_ngram=cfg.abugida_ngram or cfg.ngram)
            hs.append(xp.asarray(h.view("int64"), like=e))
            ds.append(xp.asarray(text_rows, "int64", like=e)[xp.asarray(d, like=e)])
        if tok_rows:
            seqs = [_token_ids(exs[i].record[cfg.token_field], e, exs[i], cfg.token_field) for i in tok_rows]
            T = max(1, max(xp.numel(s) for s in seqs))
            ids = xp.zeros((len(seqs), T), like=e)
            mask = xp.zeros((len(seqs), T), "bool", like=e)
            for j, s in enumerate(seqs):
                ids[j, : xp.numel(s)] = s
                mask[j, : xp.numel(s)] = True
            nonempty = mask.any(1)
            if bool(nonempty.any()):
                rows = xp.asarray(tok_rows, "int64", like=e)[nonempty]
                h, d = token_shingle_hashes(ids[nonempty], mask[nonempty], cfg.ngram)
                hs.append(h)
                ds.append(rows[d])
        return keys_from_shingles(xp.cat(hs), xp.cat(ds), m, cfg)


def signatures_from_batch(batch: Mapping[str, "Array"], cfg: "NearDedupConfig") -> NearKeys:
    """Keys straight from a collated batch holding ``input_ids`` (and ``attention_mask``), on its device: NumPy keys
    for a batch of NumPy arrays or of CPU tensors (what a stage on the CPU holds), tensors for tensors elsewhere."""
    ids = batch[cfg.token_field]
    mask = batch.get("attention_mask")
    if not xp.is_array(ids) or ids.ndim != 2 or not xp.dtype_name(ids).startswith(("int", "uint", "bool")):
        what = f"dtype {xp.dtype_name(ids)}, shape {tuple(ids.shape)}" if xp.is_array(ids) else type(ids).__name__
        raise GuardInputError(f"batch[{cfg.token_field!r}] is not a [batch, length] array of integer token ids "
                              f"({what}); pass the collated token ids (a tensor or NumPy array of integers)")
    if xp.is_tensor(ids) and xp.on_numpy(ids.device):  # CPU tensors: read in place as NumPy arrays
        ids, mask = xp.numpy_of(ids), None if mask is None else xp.numpy_of(mask)
    mask = xp.full(tuple(ids.shape), True, "bool", like=ids) if mask is None else xp.astype(xp.to_like(mask, ids), "bool")
    rows = xp.nonzero(mask.any(1))
    if xp.numel(rows) == 0:
        e = xp.zeros(0, like=ids)
        return keys_from_shingles(e, e, ids.shape[0], cfg)
    h, d = token_shingle_hashes(ids[rows], mask[rows], cfg.ngram)
    return keys_from_shingles(h, rows[d], ids.shape[0], cfg)


def nothing_to_compare(cfg: "NearDedupConfig", exs: Sequence[Example], n: Optional[int] = None) -> str:
    """The message of :class:`~torchdataguard.errors.ConfigError` when none of the first records ``exs`` a
    ``NearDedup`` stage met had anything it compares: its settings, not the records, are wrong (every record would
    pass uncompared, counted only as ``near/no_content``; ``n``: the records in all, when ``exs`` is one rank's share)."""
    n = len(exs) if n is None else n
    first = exs[0].record if exs else None
    fields = sorted(map(str, first))[:12] if isinstance(first, Mapping) else None
    held = f"; the records have the fields {fields}" if fields is not None else ""
    has_text = any(ex.text is not None for ex in exs)
    if cfg.shingles == "tokens" and has_text:
        return (f"NearDedup(shingles='tokens') compares the token ids in {cfg.token_field!r}, which none of the first "
                f"{n} records holds (they hold text{held}): every record would pass without being compared. Pass "
                f"NearDedup() (shingles='auto') or shingles='words' to compare their text, or token_field= the field "
                f"that holds their token ids")
    return (f"NearDedup found neither text nor token ids ({cfg.token_field!r}) in any of the first {n} records"
            f"{held}: every record would pass without being compared. Name the field holding the text with "
            f"Guard(..., text_field=NAME) (text_field=None reads no text), or the one holding token ids with "
            f"NearDedup(token_field=NAME); for records of other kinds (images, tensors) leave NearDedup out: ExactDedup "
            f"hashes any record")
