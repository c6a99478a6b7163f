"""The sharded near-dedup decider (gloo, 2 and 3 processes) decides short texts as the local stage does,
and a distributed checkpoint resumed mid-stream continues with the same decisions."""
import json
import os
import random

import pytest
import torch
import torch.distributed as dist
from conftest import run_ranks

import torchdataguard as tdg
from torchdataguard.distributed import DistributedGuard

from short_texts import jaccard, sentences, shingles

CHUNK = 32
CKPT = 120  # records per rank before the checkpoint


def make_texts():
    """Real sentences of 1-40 words (every tier: exact, exact query against LSH-stored, estimated) and
    planted variants: copies with case changed, one word more, one word changed at the end."""
    base = list(sentences(1, 7, 300)) + list(sentences(8, 22, 300)) + list(sentences(23, 40, 60))
    rng = random.Random(11)
    out = list(base)
    for t in rng.sample(base, 260):
        r = rng.random()
        out.append(t.upper() if r < 0.3 else t + " indeed" if r < 0.7 else " ".join(t.split()[:-1] + ["zzz"]))
    rng.shuffle(out)
    return out


def guard():
    return tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", progress=False, chunk_size=CHUNK)


def rows(outcomes):
    return [[ex.id, None if d is None else d.matched, None if d is None else d.score, rep] for ex, d, rep in outcomes]


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    res = {}
    try:
        recs = [{"text": t} for t in make_texts()]
        shard = recs[rank::world]
        full = DistributedGuard(guard())
        res["full"] = rows(full.process(shard))
        res["stored"] = [sh.stored() for sh in full._sharded.values()]
        first = DistributedGuard(guard())
        list(first.process(shard[:CKPT]))
        ckpt = os.path.join(out_dir, "ckpt")
        first.save(ckpt)
        resumed = DistributedGuard(guard())
        resumed.load(ckpt)
        res["resumed"] = rows(resumed.process(shard))
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(res, fh)


@pytest.fixture(scope="module", params=[2, 3], ids=["world2", "world3"])
def run(request, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp(f"short{world}")
    return world, run_ranks(_worker, world, out)


def test_sharded_decisions_equal_local_on_short_texts(run):
    world, ranks = run
    texts = make_texts()
    g = guard()
    want = {ex.id: [ex.id, d and d.matched, d and d.score, rep] for ex, d, rep in g.process([{"text": t} for t in texts])}
    got = {row[0]: row for res in ranks for row in res["full"]}
    assert got == want
    one = tdg.Guard([tdg.NearDedup(threshold=0.8)], device="cpu", progress=False, chunk_size=1)
    assert {ex.id: [ex.id, d and d.matched, d and d.score, rep]
            for ex, d, rep in one.process([{"text": t} for t in texts])} == want  # the same matches, row by row
    dropped = [r for r in want.values() if r[1] is not None]
    assert len(dropped) > 150
    assert any(r[1] % world != r[0] % world for r in dropped)  # matches across ranks
    st = g.stages[0]
    assert st.small.n > 300 and st.index.n > 20  # both indexes at work
    assert sum(sum(res["stored"]) for res in ranks) == st.indexed_count()
    # every drop of a text under exact_below shingles, or as a copy of a text stored with its set, is exact
    K, K2, _ = st.cfg.limits
    for r in dropped:
        a, b = shingles(texts[r[0]]), shingles(texts[r[1]])
        if min(len(a), len(b)) < K or len(b) < K2:
            assert jaccard(a, b) >= 0.8 and r[2] == pytest.approx(jaccard(a, b), abs=1e-12)


def test_distributed_resume_mid_stream_equals_uninterrupted(run):
    _, ranks = run
    for res in ranks:
        assert all(r[3] for r in res["resumed"][:CKPT]) and not any(r[3] for r in res["resumed"][CKPT:])
        assert res["resumed"][CKPT:] == res["full"][CKPT:]
        assert any(r[1] is not None for r in res["full"][CKPT:])


def test_ray_scan_phases_decide_short_texts_as_the_local_guard():
    """The Ray engine's two phases (``map_batches`` planning into Arrow-friendly columns, then an index actor),
    run here in-process with one actor: the keys survive the column encoding, decisions equal a local guard."""
    import numpy as np

    from torchdataguard.scan import ray as rs

    texts = make_texts()
    spec = {"stages": ["near"], "threshold": 0.8, "options": {}, "text_field": "text", "id_field": None,
            "strict": False, "max_chars": 2_000_000, "chunk_size": CHUNK}
    spec_json = json.dumps(spec, sort_keys=True)
    shard = rs._IndexShard(spec)
    shard.dg = DistributedGuard(rs._build(spec))  # a world of one: no process group
    got = []
    for a in range(0, len(texts), CHUNK):
        part = texts[a : a + CHUNK]
        batch = {"pos": np.arange(a, a + len(part)), "rec": np.array([json.dumps({"text": t}) for t in part]),
                 "bad": np.array([""] * len(part)), "where": np.array([""] * len(part))}
        cols = rs._plan_batch(batch, spec_json)
        cols = {k: list(v) for k, v in cols.items()}
        got += [None if d is None else [d[0], d[1]] for d in shard.decide(cols)]
    g = guard()
    want = [None if d is None else [d.reason, d.matched] for _, d, _ in g.process([{"text": t} for t in texts])]
    assert got == want
    assert sum(w is not None for w in want) > 150
