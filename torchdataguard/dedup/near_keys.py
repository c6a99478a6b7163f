"""Keys of near-duplicate detection: 4-bit MinHash signatures, and exact shingle sets of small documents."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ..core.stage import Example, Keyer
from .cpu import one_thread
from .hashing import text_shingle_hashes, token_shingle_hashes
from .keys_numpy import grouped_numpy_keys
from .minhash import EMPTY, densify, minhash_bins
from .setops import gather_sets, shingle_sets

if TYPE_CHECKING:  # pragma: no cover
    from .near_config import NearDedupConfig

__all__ = ["NearKeyer", "NearKeys", "keys_from_shingles", "signatures_from_batch", "torch_keys_from_shingles"]


class NearKeys:
    """Keys of a chunk of ``m`` rows.

    Attributes:
        nib: uint8 [m, num_perm] 4-bit signatures (zero, and unused, for rows with fewer than ``exact_below``
            distinct shingles).
        valid: bool [m], rows that had content.
        size: int64 [m] distinct shingle count where it is under ``K3`` (see
            :func:`~torchdataguard.dedup.smallsets.exact_limits`), else ``K3``; 0 for rows without content.
        sets, off: the sorted (mixed) shingle hashes of row ``i`` are ``sets[off[i]:off[i + 1]]`` (rows under
            ``K3``; empty for the others).
    """

    def __init__(self, nib: torch.Tensor, valid: torch.Tensor, size: torch.Tensor, sets: torch.Tensor,
                 off: torch.Tensor) -> None:
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

    def to(self, device) -> "NearKeys":
        if self.nib.device == torch.device(device):
            return self
        return NearKeys(*(t.to(device) for t in (self.nib, self.valid, self.size, self.sets, self.off)))

    @one_thread
    def take(self, idx: Sequence[int]) -> "NearKeys":
        """The keys of rows ``idx``, in that order."""
        t = torch.as_tensor(list(idx), dtype=torch.long, device=self.nib.device)
        vals, _ = gather_sets(self.sets, self.off, t)
        off = torch.zeros(t.numel() + 1, dtype=torch.int64, device=t.device)
        if t.numel():
            off[1:] = torch.cumsum(self.off[t + 1] - self.off[t], 0)
        return NearKeys(self.nib[t], self.valid[t], self.size[t], vals, off)


def keys_from_shingles(hashes: torch.Tensor | np.ndarray, doc: torch.Tensor | np.ndarray, n: int,
                       cfg: "NearDedupConfig") -> NearKeys:
    """Keys of ``n`` documents from their shingle hashes (``doc[s]`` is the document of shingle ``s``).

    Documents whose filled MinHash bins reach ``K3`` have at least that many distinct shingles and get only a
    signature; the others' distinct shingles are counted exactly and kept when under ``K3``. Rows under
    ``exact_below`` skip densification (they never ask the LSH index). NumPy arrays and CPU tensors take the
    NumPy path (:func:`~torchdataguard.dedup.keys_numpy.numpy_keys`), tensors on other devices
    :func:`torch_keys_from_shingles`; both give the same keys.

    Example:
        >>> from torchdataguard.dedup.near_config import NearDedupConfig
        >>> h, d = text_shingle_hashes(["a short text", "another short text"], ngram=5)
        >>> k = keys_from_shingles(h, d, 2, NearDedupConfig())
        >>> k.size.tolist(), k.valid.tolist()
        ([1, 1], [True, True])
    """
    if isinstance(hashes, torch.Tensor) and hashes.device.type != "cpu":
        return torch_keys_from_shingles(hashes, doc, n, cfg)
    h = hashes.numpy() if isinstance(hashes, torch.Tensor) else hashes
    d = doc.cpu().numpy() if isinstance(doc, torch.Tensor) else doc
    nib, size, sets, off = grouped_numpy_keys(h, d, n, cfg.num_perm, cfg.seed, cfg.limits)
    sz = torch.from_numpy(size)
    return NearKeys(torch.from_numpy(nib), sz > 0, sz, torch.from_numpy(sets), torch.from_numpy(off))


def torch_keys_from_shingles(hashes: torch.Tensor, doc: torch.Tensor, n: int, cfg: "NearDedupConfig") -> NearKeys:
    """:func:`keys_from_shingles` with torch operations on the tensors' device (GPUs).

    Example:
        >>> from torchdataguard.dedup.near_config import NearDedupConfig
        >>> h, d = text_shingle_hashes(["a short text", "another short text"], ngram=5)
        >>> k = torch_keys_from_shingles(torch.from_numpy(h.view("int64")), torch.from_numpy(d), 2, NearDedupConfig())
        >>> k.size.tolist(), k.valid.tolist()
        ([1, 1], [True, True])
    """
    K, _, K3 = cfg.limits
    x, sig = minhash_bins(hashes, doc, n, cfg.num_perm, cfg.seed)
    filled = (sig != EMPTY).sum(1)
    size, sets, off = shingle_sets(x, doc, filled < K3, K3)
    lsh = torch.nonzero(size >= K).flatten()
    if lsh.numel() == n:  # the usual case for documents of more than a few sentences
        nib = (densify(sig, cfg.num_perm, cfg.seed) & 15).to(torch.uint8)
    else:
        nib = torch.zeros(n, cfg.num_perm, dtype=torch.uint8, device=sig.device)
        if lsh.numel():
            nib[lsh] = (densify(sig[lsh], cfg.num_perm, cfg.seed) & 15).to(torch.uint8)
    return NearKeys(nib, size > 0, size, sets, off)


class NearKeyer(Keyer):
    """Keys of a list of examples for :class:`~torchdataguard.NearDedup` (picklable; runs in workers)."""

    def __init__(self, cfg: "NearDedupConfig", device: str = "cpu") -> None:
        self.cfg = cfg
        self.device = device

    @one_thread
    def __call__(self, exs: Sequence[Example]) -> NearKeys:
        cfg = self.cfg
        m = len(exs)
        dev = torch.device(self.device)
        if cfg.shingles != "tokens":
            texts = [ex.text for ex in exs]
            if None not in texts:  # every row has text: shingle i's document is already its row
                h, d = text_shingle_hashes(texts, cfg.ngram, char_ngram=cfg.char_ngram or cfg.ngram,
                                           mode=cfg.text_shingles, abugida_ngram=cfg.abugida_ngram or cfg.ngram)
                if dev.type == "cpu":
                    return keys_from_shingles(h, d, m, cfg)
                return keys_from_shingles(torch.from_numpy(h.view("int64")).to(dev), torch.from_numpy(d).to(dev), m, cfg)
        text_rows: List[int] = []
        tok_rows: List[int] = []
        for i, ex in enumerate(exs):
            if cfg.shingles != "tokens" and ex.text is not None:
                text_rows.append(i)
            elif cfg.shingles != "words" and isinstance(ex.record, Mapping) and ex.record.get(cfg.token_field) is not None:
                tok_rows.append(i)
        hs: List[torch.Tensor] = [torch.zeros(0, dtype=torch.int64, device=dev)]
        ds: List[torch.Tensor] = [torch.zeros(0, dtype=torch.int64, device=dev)]
        if text_rows:
            h, d = text_shingle_hashes([exs[i].text for i in text_rows], cfg.ngram,
                                       char_ngram=cfg.char_ngram or cfg.ngram, mode=cfg.text_shingles,
                                       abugida_ngram=cfg.abugida_ngram or cfg.ngram)
            hs.append(torch.from_numpy(h.view("int64")).to(dev))
            ds.append(torch.tensor(text_rows, dtype=torch.int64, device=dev)[torch.from_numpy(d).to(dev)])
        if tok_rows:
            seqs = [torch.as_tensor(exs[i].record[cfg.token_field]).flatten().to(torch.int64) for i in tok_rows]
            T = max(1, max(s.numel() for s in seqs))
            ids = torch.zeros(len(seqs), T, dtype=torch.int64)
            mask = torch.zeros(len(seqs), T, dtype=torch.bool)
            for j, s in enumerate(seqs):
                ids[j, : s.numel()] = s
                mask[j, : s.numel()] = True
            nonempty = mask.any(1)
            if bool(nonempty.any()):
                rows = torch.tensor(tok_rows, dtype=torch.int64)[nonempty].to(dev)
                h, d = token_shingle_hashes(ids[nonempty].to(dev), mask[nonempty].to(dev), cfg.ngram)
                hs.append(h)
                ds.append(rows[d])
        return keys_from_shingles(torch.cat(hs), torch.cat(ds), m, cfg)


def signatures_from_batch(batch: Mapping[str, torch.Tensor], cfg: "NearDedupConfig") -> NearKeys:
    """Keys straight from a collated batch holding ``input_ids`` (and ``attention_mask``), on its device."""
    ids = batch[cfg.token_field]
    mask = batch.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(ids, dtype=torch.bool)
    rows = torch.nonzero(mask.to(torch.bool).any(1)).flatten()
    if rows.numel() == 0:
        e = torch.zeros(0, dtype=torch.int64, device=ids.device)
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
