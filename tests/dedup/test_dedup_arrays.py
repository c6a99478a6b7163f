"""Dedup holds NumPy arrays on the CPU and torch tensors elsewhere (:mod:`torchdataguard.dedup.xp`): both kinds
decide every record alike, a state saved by one resumes in the other, and the NumPy path never imports torch.

``TORCHDATAGUARD_DEDUP_ARRAYS=torch`` makes a CPU stage hold tensors: the torch implementations (the GPU path) run
on the CPU, so these tests compare the two paths without a GPU.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Tuple

import numpy as np
import pytest
import torch

import torchdataguard as tdg
from torchdataguard.core.state import load_state, save_state
from torchdataguard.dedup import xp

from short_texts import sentences
from zh_stream import passages, pieces, short_lines, with_planted

ROOT = Path(__file__).resolve().parents[2]


def _near_copy(text: str, rng: random.Random) -> str:
    """``text`` with one word changed, one dropped or punctuation added."""
    w = text.split()
    r = rng.random()
    if len(w) > 3 and r < 0.4:
        w[rng.randrange(len(w))] = rng.choice(["alpha", "beta", "gamma", "delta"])
    elif len(w) > 3 and r < 0.7:
        del w[rng.randrange(len(w))]
    else:
        return text.upper() + "!"
    return " ".join(w)


def _corpus() -> List[Any]:
    """Short and long English texts, Chinese passages and short lines with planted near copies, exact copies,
    near copies and token-id records (lists, NumPy arrays and tensors), shuffled into one stream."""
    rng = random.Random(16)
    short = list(sentences(1, 14, 900))
    long_ = [" ".join(rng.sample(short, 12)) for _ in range(150)]
    zh, _ = with_planted(pieces(passages(), 40, 160) + short_lines()[:400], 0.3, seed=3)
    recs: List[Any] = [{"text": t} for t in short + long_ + zh[:900]]
    for _ in range(500):
        t = recs[rng.randrange(len(recs))]["text"]
        recs.append({"text": t if rng.random() < 0.3 else _near_copy(t, rng)})
    # texts that match several kept ones (two extensions of one base, kept as they differ more from each other,
    # then the base): the match named is the most similar, the first stored on a tie
    words = " ".join(short).split()
    multi: List[str] = []
    for n_base, k in [(12, 2)] * 40 + [(60, 10)] * 40:
        base = rng.sample(words, n_base)
        extra = [rng.sample(words, k) for _ in range(3)]
        multi += [" ".join(base + extra[0]), " ".join(extra[1] + base), " ".join(base),
                  " ".join(base[:-1] + extra[2][:1])]
    recs.append({"text": " ".join(short[:3])})
    for i in range(240):
        base = [rng.randrange(1000) for _ in range(rng.choice([3, 8, 30, 90]))]
        ids: Any = list(base)
        if i % 4 == 1:  # a near copy of an earlier token record
            ids = list(recs[-1]["input_ids"]) if "input_ids" in recs[-1] else ids
            if len(ids) > 10:
                ids[rng.randrange(len(ids))] = 7
        kind = i % 3
        recs.append({"input_ids": ids if kind == 0 else np.asarray(ids) if kind == 1 else torch.tensor(ids)})
    rng.shuffle(recs)
    at = sorted(rng.sample(range(len(recs)), len(multi) // 4))
    for j, pos in enumerate(reversed(at)):  # each group in order, at one place in the stream
        g = len(multi) // 4 - 1 - j
        recs[pos:pos] = [{"text": t} for t in multi[4 * g : 4 * g + 4]]
    return recs


def _decisions(recs: List[Any], chunk_size: int) -> Tuple[List[Any], tdg.Guard]:
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", chunk_size=chunk_size, progress=False)
    out = [(ex.id, None if d is None else (d.reason, d.matched, round(d.score, 9))) for ex, d, _ in g.process(recs)]
    return out, g


def _kind(g: tdg.Guard) -> str:
    """"numpy" or "torch": what the guard's dedup stages hold (every index array of both stages agrees)."""
    exact, near = g.stages
    arrays = [exact.index.digests, exact.index.table, near.index.packed, near.index.table, near.small.pool,
              near.small.table, near.small.demoted.vals]
    kinds = {"torch" if xp.is_tensor(a) else "numpy" for a in arrays}
    assert len(kinds) == 1, kinds
    return kinds.pop()


@pytest.mark.parametrize("chunk_size", [97, 512])
def test_numpy_and_torch_arrays_decide_every_record_alike(chunk_size, monkeypatch):
    recs = _corpus()
    monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    on_numpy, g_np = _decisions(recs, chunk_size)
    monkeypatch.setenv(xp.ARRAYS_ENV, "torch")
    on_torch, g_t = _decisions(recs, chunk_size)
    assert (_kind(g_np), _kind(g_t)) == ("numpy", "torch")
    assert on_numpy == on_torch
    reasons = [d[0] for _, d in on_numpy if d is not None]
    # every kind of decision is covered: exact copies, near copies by estimate and by exact sets, token records
    assert reasons.count("duplicate/exact") > 100 and reasons.count("duplicate/near") > 200
    near_scores = {d[2] for _, d in on_numpy if d is not None and d[0] == "duplicate/near"}
    assert any(s < 1.0 for s in near_scores) and len(near_scores) > 20
    tok = [i for i, r in enumerate(recs) if "input_ids" in r]
    assert any(on_numpy[i][1] is not None for i in tok) and any(on_numpy[i][1] is None for i in tok)
    timing = ("busy_seconds", "examples_per_second")
    assert ({k: v for k, v in g_np.report().items() if k not in timing}
            == {k: v for k, v in g_t.report().items() if k not in timing})


@pytest.mark.parametrize("first,then", [("numpy", "torch"), ("torch", "numpy")])
def test_a_state_saved_by_one_kind_resumes_in_the_other(first, then, tmp_path, monkeypatch):
    recs = _corpus()[:1800]
    monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    whole, _ = _decisions(recs, 200)

    def use(kind: str) -> None:
        if kind == "torch":
            monkeypatch.setenv(xp.ARRAYS_ENV, "torch")
        else:
            monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)

    use(first)
    a = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", chunk_size=200, progress=False)
    got = [(ex.id, None if d is None else (d.reason, d.matched, round(d.score, 9)))
           for ex, d, _ in a.process(recs[:1000])]
    assert _kind(a) == first
    save_state(tmp_path, a.state_dict())
    use(then)
    b = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", chunk_size=200, progress=False)
    b.load_state_dict(load_state(tmp_path))
    assert _kind(b) == then
    got += [(ex.id, None if d is None else (d.reason, d.matched, round(d.score, 9)))
            for ex, d, _ in b.process(recs[1000:], ids=range(1000, len(recs)))]
    assert got == whole


def test_a_stage_takes_a_state_of_numpy_arrays_or_of_tensors(monkeypatch):
    """load_state_dict takes what safetensors.numpy or safetensors.torch read: the same stage either way."""
    monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    recs = _corpus()[:600]
    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup()], device="cpu", progress=False)
    g.filter(recs)

    def as_numpy(tree: Any) -> Any:
        if isinstance(tree, dict):
            return {k: as_numpy(v) for k, v in tree.items()}
        return tree.numpy() if isinstance(tree, torch.Tensor) else tree

    for st in g.stages:
        state = st.state_dict()
        for given in (state, as_numpy(state)):
            fresh = type(st)()
            fresh.load_state_dict(given)
            assert _kind_of(fresh) == "numpy"
            again = fresh.state_dict()
            assert as_numpy(again).keys() == as_numpy(state).keys()
            flat_a, flat_b = _leaves(again), _leaves(state)
            assert [(k, v.dtype, tuple(v.shape)) for k, v in flat_a] == [(k, v.dtype, tuple(v.shape)) for k, v in flat_b]
            assert all(torch.equal(x, y) for (_, x), (_, y) in zip(flat_a, flat_b))


def _kind_of(st: Any) -> str:
    table = st.index.table
    return "torch" if xp.is_tensor(table) else "numpy"


def _leaves(tree: Any, path: str = "") -> List[Tuple[str, Any]]:
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in _leaves(tree[k], f"{path}.{k}")]
    return [(path, tree)] if isinstance(tree, torch.Tensor) else []


def test_batch_keys_are_numpy_for_cpu_tensors_and_equal_the_keyer_and_the_torch_path(monkeypatch):
    from torchdataguard.core.stage import Example
    from torchdataguard.dedup.near_keys import signatures_from_batch

    monkeypatch.delenv(xp.ARRAYS_ENV, raising=False)
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 500, (64, 40), generator=g)
    mask = torch.ones(64, 40, dtype=torch.bool)
    mask[::3, 30:] = False  # padding
    mask[5] = False  # a row without tokens
    ids[10:20] = ids[:10]
    st = tdg.NearDedup(shingles="tokens")
    k_np = signatures_from_batch({"input_ids": ids, "attention_mask": mask}, st.cfg)
    assert not xp.is_tensor(k_np.nib)
    monkeypatch.setenv(xp.ARRAYS_ENV, "torch")
    k_t = signatures_from_batch({"input_ids": ids, "attention_mask": mask}, st.cfg)
    assert xp.is_tensor(k_t.nib)
    monkeypatch.delenv(xp.ARRAYS_ENV)
    rows = [{"input_ids": ids[i][mask[i]].tolist()} for i in range(64)]
    k_rec = st.keyer()([Example(i, r, None) for i, r in enumerate(rows)])
    for f in ("nib", "valid", "size", "sets", "off"):
        assert getattr(k_np, f).tolist() == getattr(k_t, f).tolist() == getattr(k_rec, f).tolist(), f
    assert k_np.valid.tolist().count(False) == 1


@pytest.mark.parametrize("seed", [1 + 7919, 5, 12345, 2**40 + 3, -7])
@pytest.mark.parametrize("low,high,n", [(0, 128, 1024), (0, 16, 9), (1, 2**62, 40), (-5, 2**33, 17)])
def test_torch_random_draws_are_reproduced_without_torch(seed, low, high, n):
    """The probe tables of densification and the LSH band multipliers are the values torch drew before."""
    from torchdataguard.dedup.minhash import mt_randint

    g = torch.Generator().manual_seed(seed)
    assert mt_randint(seed, low, high, n).tolist() == torch.randint(low, high, (n,), generator=g).tolist()


@pytest.mark.parametrize("num_perm,bands", [(128, 16), (128, 64), (96, 32)])
def test_lsh_band_constants_are_the_ones_torch_drew(num_perm, bands):
    from torchdataguard.dedup.index import LSHIndex

    g = torch.Generator().manual_seed(12345)
    rows = num_perm // bands
    idx = LSHIndex(num_perm, bands)
    assert idx._row_mul.tolist() == (torch.randint(1, 2**62, (rows,), generator=g) * 2 + 1).tolist()
    assert idx._band_add.tolist() == torch.randint(1, 2**62, (bands,), generator=g).tolist()


def test_deciding_on_the_cpu_never_imports_torch():
    """The dedup modules, their keyers and decisions run with ``import torch`` refused (core, which imports torch
    itself until it is converted, is imported first; torch is then made unimportable)."""
    code = (
        "import sys\n"
        "from torchdataguard.core.stage import Example\n"
        "assert not [m for m in sys.modules if m.startswith('torchdataguard.dedup')]\n"
        "for m in [m for m in sys.modules if m == 'torch' or m.startswith('torch.')]:\n"
        "    sys.modules[m] = None  # any import of torch now raises ImportError\n"
        "from torchdataguard.dedup.exact import ExactDedup\n"
        "from torchdataguard.dedup.near import NearDedup\n"
        "import torchdataguard.dedup as d\n"
        "texts = ['the quick brown fox jumps over the lazy dog %d times today' % (i % 40) for i in range(120)]\n"
        "texts += ['今天天气很好我们去公园散步吧%d' % (i % 9) for i in range(30)] + ['hi', 'Hi', 'HI!', 'ok']\n"
        "texts += [' '.join(texts[:12])] * 2\n"
        "exs = [Example(i, t, t) for i, t in enumerate(texts)]\n"
        "exs.append(Example(len(exs), {'input_ids': list(range(30))}, None))\n"
        "exs.append(Example(len(exs), {'input_ids': list(range(30))}, None))\n"
        "for st in (ExactDedup(), NearDedup()):\n"
        "    for a in range(0, len(exs), 50):\n"
        "        part = exs[a:a + 50]\n"
        "        drops = st.decide(part, st.keyer()(part))\n"
        "        assert any(x is not None for x in drops), (type(st).__name__, a)\n"
        "    assert type(st.index.table).__module__ == 'numpy'\n"
        "    state = st.state_dict()['index']  # host copies: NumPy arrays where torch is not imported\n"
        "    assert {type(v).__module__ for v in state.values() if not isinstance(v, list)} == {'numpy'}\n"
        "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop(xp.ARRAYS_ENV, None)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
