"""Decontamination under a DistributedGuard (gloo, 2 and 3 processes): the same decisions, dirty items and
contamination report as a single-process guard on the interleaved stream, with global boilerplate counts.

Each world size is one fork; the ranks run every scenario and write what they saw to JSON.
"""
import json
import os
import random

import pytest
import torch
import torch.distributed as dist
from conftest import run_ranks

import torchdataguard as tdg
from torchdataguard.distributed import DistributedGuard
from torchdataguard.errors import ConfigError

CHUNK = 8
FOOTER = ("to unsubscribe from this mailing list send an empty message to the list server address today "
          "and wait")


def make_data(n=240, seed=11):
    """Evaluation items and training records: windows of items (case and punctuation changed), several
    items in one document, a boilerplate footer that two items hold too, exact copies, and clean text."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(500)]

    def text(k):
        return " ".join(rng.choice(vocab) for _ in range(k))

    items = [text(rng.randint(18, 40)) for _ in range(30)]
    items[3] = f"{text(6)} {FOOTER} {text(4)}"
    items[17] = f"{FOOTER} {text(10)}"
    items.append("too short to hold a thirteen gram")
    docs = []
    for i in range(n):
        r = rng.random()
        body = text(rng.randint(20, 60))
        if r < 0.15:
            w = rng.choice(items[:30]).split()
            a = rng.randrange(0, len(w) - 13 + 1)
            piece = " ".join(w[a : a + rng.randint(13, 18)])
            docs.append(f"{body[:40]} {piece.upper()}! {body[40:]}")
        elif r < 0.2:
            docs.append(" ".join([body] + [rng.choice(items[:30]) for _ in range(3)]))
        elif r < 0.35:
            docs.append(f"{body}\n-- \n{FOOTER.title()}.")
        elif docs and r < 0.42:
            docs.append(rng.choice(docs))
        elif r < 0.45:
            docs.append(" ".join(rng.choice(items[:30]).split()[:12]) + " " + body)  # 12 words: kept
        else:
            docs.append(body)
    return items, [{"text": t, "i": i} for i, t in enumerate(docs)]


class HasW7(tdg.Filter):
    """Drops texts holding the word 'w7' (a record-stage drop before the index stages)."""

    stage_name = "has_w7"
    needs_text = True

    def judge(self, ex):
        return "w7" if " w7 " in f" {ex.text.lower()} " else None


SETUPS = {
    # one shared n-gram makes a document dirty; decontamination first
    "first": lambda items: [tdg.Decontaminate({"bench": items, "other": items[20:]}, ngram=13),
                            tdg.ExactDedup()],
    # boilerplate counted over the whole (global) stream, a fraction of an item, after a filter and dedup
    "boilerplate": lambda items: [HasW7(), tdg.ExactDedup(),
                                  tdg.Decontaminate({"bench": items}, ngram=13, max_train_count=3)],
    "fraction": lambda items: [tdg.Decontaminate({"bench": items}, ngram=13, min_overlap=0.3, max_train_count=5)],
}


def make_guard(setup, items):
    return tdg.Guard(SETUPS[setup](items), device="cpu", progress=False, chunk_size=CHUNK)


def rows(outcomes):
    return [[ex.id, None if d is None else d.reason, None if d is None else d.matched,
             None if d is None else d.score] for ex, d, _ in outcomes]


def summary(rep):
    return {"contamination": rep["contamination"], "dropped_by_reason": rep["dropped_by_reason"],
            "counts": rep["counts"], "seen": rep["seen"], "kept": rep["kept"]}


def _worker(rank, world, port, out_dir, ckpt):
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        items, records = make_data()
        shard = records[rank::world]
        res = {}
        for setup in SETUPS:
            dg = DistributedGuard(make_guard(setup, items))
            res[setup] = rows(dg.process(shard))
            res[f"{setup}_report"] = summary(dg.report())
            res[f"{setup}_own"] = dg.guard.report()["contamination"]["bench"]["documents_dropped"]
            res[f"{setup}_stage"] = next(e for e in dg.report()["stages"] if e["name"] == "decontaminate")
        # map-style: every rank passes the full list and gets the same kept list
        dg = DistributedGuard(make_guard("boilerplate", items))
        res["map"] = [r["i"] for r in dg.wrap(records)]
        res["map_report"] = summary(dg.report())
        # a checkpoint halfway resumes with the same global boilerplate counts
        half = len(shard) // 2
        dg = DistributedGuard(make_guard("boilerplate", items))
        first = rows(dg.process(shard[:half], ids=[k * world + rank for k in range(half)]))
        dg.save(ckpt)
        dg2 = DistributedGuard(make_guard("boilerplate", items))
        dg2.load(ckpt)
        rest = rows(dg2.process(shard[half:], ids=[k * world + rank for k in range(half, len(shard))]))
        res["resumed"] = first + rest
        res["resumed_report"] = summary(dg2.report())["contamination"]
        # other evaluation sets on one rank: refused on every rank (the index must be the same everywhere)
        try:
            DistributedGuard(tdg.Guard([tdg.Decontaminate({"bench": items[: 30 - (rank == world - 1)]})],
                                       device="cpu", progress=False, chunk_size=CHUNK))
            res["differs"] = None
        except ConfigError as exc:
            res["differs"] = str(exc)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(res, fh)


@pytest.fixture(scope="module", params=[2, 3], ids=["world2", "world3"])
def run(request, tmp_path_factory):
    world = request.param
    out = tmp_path_factory.mktemp(f"decontam_world{world}")
    ckpt = tmp_path_factory.mktemp(f"decontam_ckpt{world}")
    return world, run_ranks(_worker, world, out, str(ckpt))


def single(setup):
    items, records = make_data()
    g = make_guard(setup, items)
    return g, {row[0]: row for row in rows(g.process(records))}


@pytest.mark.parametrize("setup", list(SETUPS))
def test_decisions_and_report_equal_single_process(run, setup):
    world, ranks = run
    g, ref = single(setup)
    got = {}
    for r, res in enumerate(ranks):
        for row in res[setup]:
            assert row[0] % world == r
            got[row[0]] = row
    assert got == ref
    assert sum(1 for row in ref.values() if row[1] == "contamination/bench") > 5
    rep = summary(g.report())
    for res in ranks:  # the merged report is the same on every rank and equals the single-process one
        assert res[f"{setup}_report"] == rep
    # each rank's own report counts its own documents; the merged one their sum
    assert sum(res[f"{setup}_own"] for res in ranks) == rep["contamination"]["bench"]["documents_dropped"]
    assert rep["contamination"]["bench"]["dirty_items"] > 3
    stage = ranks[0][f"{setup}_stage"]
    assert stage["indexed_examples"] == g.stage("decontaminate").indexed_count()  # the index once, not per rank
    assert len(stage["index_bytes_per_rank"]) == world


def test_boilerplate_counts_are_global(run):
    world, ranks = run
    g, ref = single("boilerplate")
    rep = ranks[0]["boilerplate_report"]["contamination"]["bench"]
    assert rep["ignored_ngrams"] > 0 and rep == g.report()["contamination"]["bench"]
    # the footer (held by items 3 and 17) drops only the first three documents of the interleaved stream that
    # reach the stage with it; counted per rank it would drop three on every rank
    _, records = make_data()
    with_footer = [r["i"] for r in records if FOOTER.title() in r["text"]]
    assert len(with_footer) > 3 * world
    assert sum(1 for i in with_footer if ref[i][1] == "contamination/bench") == 3


def test_map_style_and_resume(run):
    world, ranks = run
    items, records = make_data()
    g = make_guard("boilerplate", items)
    kept = [r["i"] for r in g.wrap(records)]
    _, ref = single("boilerplate")
    for res in ranks:
        assert res["map"] == kept
        assert res["map_report"]["contamination"] == g.report()["contamination"]
        assert res["resumed_report"] == g.report()["contamination"]
    resumed = {row[0]: row for res in ranks for row in res["resumed"]}
    assert resumed == ref


def test_other_evaluation_sets_on_one_rank_are_refused(run):
    world, ranks = run
    for res in ranks:
        assert res["differs"] and f"ranks [{world - 1}] built their guard differently" in res["differs"]
        assert "stages" in res["differs"]


def test_a_stage_that_already_judged_documents_is_refused():
    items, records = make_data(40)
    g = make_guard("first", items)
    g.filter([r["text"] for r in records])
    with pytest.raises(ConfigError, match="already judged training documents"):
        DistributedGuard(g)
    g.reset()
    assert DistributedGuard(g).wrap(["clean text"]) == ["clean text"]
