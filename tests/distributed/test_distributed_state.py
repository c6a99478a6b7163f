"""Sharded checkpoints and failure handling under torch.distributed (gloo, 2 processes on the CPU)."""
import json
import os
import re
import shutil

import pytest
import torch
import torch.distributed as dist
from conftest import run_ranks

import torchdataguard as tdg
from torchdataguard.distributed import DistributedGuard

N = 240
K = 48  # records per rank before the checkpoint (3 chunks of 16)


def records():
    base = [" ".join(f"t{(i * 7 + j) % 97}" for j in range(30)) for i in range(60)]
    out = []
    for i in range(N):
        b = base[(i * 13) % 60]
        out.append({"text": b if i % 3 else b.replace("t1 ", "t2 ", 1)})
    return out


def guard(**kw):
    kw.setdefault("chunk_size", 16)
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device="cpu", progress=False, **kw)


def rows(outcomes):
    return [[ex.id, None if d is None else d.reason, None if d is None else d.matched, rep] for ex, d, rep in outcomes]


def _expect_error(fn, exc_types):
    try:
        fn()
    except exc_types as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _rank_json(directory, rank):
    with open(os.path.join(directory, "guard_state.distributed.json")) as fh:
        manifest = json.load(fh)
    return manifest["ranks"][rank]["json"] if "ranks" in manifest else f"guard_state.rank{rank}.json"  # old layout


def _rank_tensors(directory, rank):
    with open(os.path.join(directory, _rank_json(directory, rank))) as fh:
        record = json.load(fh)
    return record["tensors"]["file"] if "tensors" in record else f"guard_state.rank{rank}.safetensors"


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    res = {}
    try:
        shard = records()[rank::world]
        full = DistributedGuard(guard())
        res["full"] = rows(full.process(shard))
        res["full_report"] = {k: full.guard.report()[k] for k in ("seen", "kept", "dropped")}

        # the Trainer logs on every rank: GuardCallback's counters are the sum over ranks (a collective)
        from types import SimpleNamespace

        cb = tdg.GuardCallback(full)
        logs = {"loss": 1.0}
        state = SimpleNamespace(log_history=[{"loss": 1.0, "step": 3}], global_step=3)
        cb.on_log(SimpleNamespace(), state, SimpleNamespace(), logs=logs)
        res["logged"] = {k: v for k, v in logs.items() if k.startswith("tdg/")}
        res["history"] = {k: v for k, v in state.log_history[-1].items() if k.startswith("tdg/")}

        first = DistributedGuard(guard())
        list(first.process(shard[:K]))
        ckpt = os.path.join(out_dir, "ckpt")
        first.save(ckpt)

        resumed = DistributedGuard(guard())
        resumed.load(ckpt)
        res["resumed"] = rows(resumed.process(shard))  # the first K replay, the rest are decided anew
        rep = resumed.guard.report()
        res["resumed_report"] = {k: rep[k] for k in ("seen", "kept", "dropped", "replayed")}

        # a checkpoint with one rank's file missing: every rank refuses, none hangs
        broken = os.path.join(out_dir, f"broken{rank}")
        shutil.copytree(ckpt, broken)
        if rank == 1:
            os.remove(os.path.join(broken, _rank_json(broken, 1)))
        res["broken"] = _expect_error(lambda: DistributedGuard(guard()).load(broken), tdg.StateError)

        # one bit flipped in rank 1's tensor file: every rank refuses (item 4 of issue 12)
        flipped = os.path.join(out_dir, f"flipped{rank}")
        shutil.copytree(ckpt, flipped)
        if rank == 1:
            tpath = os.path.join(flipped, _rank_tensors(flipped, 1))
            with open(tpath, "r+b") as fh:
                fh.seek(os.path.getsize(tpath) - 3)
                b = fh.read(1)
                fh.seek(-1, 1)
                fh.write(bytes([b[0] ^ 0x10]))
        res["flipped"] = _expect_error(lambda: DistributedGuard(guard()).load(flipped), tdg.StateError)

        # the parts of a later save whose manifest was never written (a crash before the commit) are ignored:
        # the folder still loads as the earlier checkpoint, whole
        later = DistributedGuard(guard())
        list(later.process(shard[: 2 * K]))
        later.save(os.path.join(out_dir, "later"))
        orphan = os.path.join(out_dir, f"orphan{rank}")
        shutil.copytree(ckpt, orphan)
        for name in os.listdir(os.path.join(out_dir, "later")):
            if name.startswith("guard_state.rank"):
                shutil.copy(os.path.join(out_dir, "later", name), orphan)
        again = DistributedGuard(guard())
        again.load(orphan)
        res["orphan_seen"] = again.guard.report()["seen"]

        # guards built differently on different ranks are refused on every rank
        res["mismatch"] = _expect_error(lambda: DistributedGuard(guard(chunk_size=16 + rank)), tdg.ConfigError)

        # a bad record with strict=True on rank 1 only: rank 1 raises its error, rank 0 a RuntimeError
        bad = [{"text": "fine text here"}] * 3 + ([{"text": None}] if rank == 1 else [])
        res["strict"] = _expect_error(lambda: list(DistributedGuard(guard(strict=True)).process(bad)),
                                      (tdg.GuardInputError, RuntimeError))

        # a text field that no record has: refused with ConfigError on every rank (stream and map-style)
        wrong = [{"sentence": f"sentence {i}", "label": i % 2} for i in range(40)]
        res["text_field"] = _expect_error(lambda: list(DistributedGuard(guard()).process(wrong[rank::world])),
                                          (tdg.ConfigError, RuntimeError))
        res["text_field_map"] = _expect_error(lambda: DistributedGuard(guard()).wrap(wrong),
                                              (tdg.ConfigError, RuntimeError))
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(res, fh)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("state")
    return out, run_ranks(_worker, 2, out)


def test_resume_with_the_same_world_size_continues_the_same_decisions(run):
    out, ranks = run
    files = sorted(os.listdir(out / "ckpt"))
    manifest = json.loads((out / "ckpt" / "guard_state.distributed.json").read_text())
    parts = [e["json"] for e in manifest["ranks"]]
    parts += [json.loads((out / "ckpt" / p).read_text())["tensors"]["file"] for p in parts]
    assert files == sorted(["guard_state.distributed.json"] + parts)  # one JSON + one tensor file per rank
    assert all(re.fullmatch(rf"guard_state\.rank{r}\.[0-9a-f]{{16}}\.(json|safetensors)", p)
               for r, p in [(0, parts[0]), (1, parts[1]), (0, parts[2]), (1, parts[3])])
    for res in ranks:
        full, resumed = res["full"], res["resumed"]
        assert len(full) == len(resumed) == N // 2
        assert all(r[3] for r in resumed[:K]) and not any(r[3] for r in resumed[K:])
        assert resumed[K:] == full[K:]  # same decisions, same matched ids
        assert any(r[1] is not None for r in full[K:])
        rep = res["resumed_report"]
        assert {k: rep[k] for k in ("seen", "kept", "dropped")} == res["full_report"]
        assert rep["replayed"] == K


def test_logged_counters_sum_every_rank(run):
    _, ranks = run
    want = {k: sum(r["full_report"][k] for r in ranks) for k in ("seen", "kept", "dropped")}
    assert want["dropped"] > 0
    for res in ranks:  # every rank logs the same global figures
        assert {k: res["logged"][f"tdg/{k}"] for k in want} == want
        assert res["history"] == res["logged"]
    dup = [k for k in ranks[0]["logged"] if k.startswith("tdg/dropped/")]
    assert dup and sum(ranks[0]["logged"][k] for k in dup) == want["dropped"]


def test_other_world_size_is_refused_with_an_explanation(run):
    out, _ = run
    dg = DistributedGuard(guard())  # no process group here: a world of one
    with pytest.raises(tdg.StateError, match=r"world of 2 processes.*resume with 2 processes"):
        dg.load(out / "ckpt")
    with pytest.raises(tdg.StateError, match="guard_state.distributed.json is missing"):
        dg.load(out)


def test_failures_are_raised_on_every_rank(run):
    _, ranks = run
    assert all(res["broken"] and res["broken"].startswith("StateError") for res in ranks)
    assert "No such file" in ranks[1]["broken"] and "another rank" in ranks[0]["broken"]
    assert all(res["flipped"] and res["flipped"].startswith("StateError") for res in ranks)
    assert "SHA-256" in ranks[1]["flipped"] and "rank1" in ranks[1]["flipped"] and "another rank" in ranks[0]["flipped"]


def test_parts_of_an_uncommitted_save_are_ignored(run):
    _, ranks = run
    assert [res["orphan_seen"] for res in ranks] == [K, K]
    assert all(res["mismatch"] and "chunk_size" in res["mismatch"] for res in ranks)
    assert ranks[1]["strict"].startswith("GuardInputError") and "record" in ranks[1]["strict"]
    assert ranks[0]["strict"].startswith("RuntimeError") and "rank(s) [1]" in ranks[0]["strict"]


def test_wrong_text_field_is_refused_on_every_rank(run):
    _, ranks = run
    for res in ranks:
        for key in ("text_field", "text_field_map"):
            assert res[key] and res[key].startswith("ConfigError: text_field='text' is missing"), res[key]
            assert "['label', 'sentence']" in res[key]


def test_single_process_index_is_refused():
    g = guard()
    g.filter([{"text": "one two three four five"}])
    with pytest.raises(tdg.ConfigError, match="already holds 1 documents"):
        DistributedGuard(g)


def _saved_world_of_one(tmp_path):
    dg = DistributedGuard(guard())  # no process group: a world of one
    list(dg.process(records()[:K]))
    dg.save(tmp_path)
    return dg


def test_corrupt_manifest_is_a_state_error_naming_it(tmp_path):
    _saved_world_of_one(tmp_path)
    manifest = tmp_path / "guard_state.distributed.json"
    text = manifest.read_text()
    for bad, why in [("[]", "JSON list"), (text[: len(text) // 2], "truncated or corrupt")]:
        manifest.write_text(bad)
        with pytest.raises(tdg.StateError, match=why) as err:
            DistributedGuard(guard()).load(tmp_path)
        assert str(manifest) in str(err.value)


def test_rank_state_is_checked_like_a_guard_state(tmp_path):
    dg = _saved_world_of_one(tmp_path)
    state = dg.state_dict()
    state["guard"]["ledger"]["meta"]["seen"] += 1000
    state["guard"]["ledger"]["meta"]["kept"] += 1000
    fresh = DistributedGuard(guard())
    with pytest.raises(tdg.StateError, match="per-example decisions"):
        fresh.load_state_dict(state)
    assert fresh.guard.report()["seen"] == 0
    with pytest.raises(tdg.StateError, match="id_field") as err:
        DistributedGuard(guard(id_field="id")).load(tmp_path)
    assert "guard_state.rank0." in str(err.value)  # names the rank's file
    state = dg.state_dict()
    state["sharded"]["1"]["next_seq"] = 3  # the near partition lists documents numbered beyond it
    with pytest.raises(tdg.StateError, match="sequence numbers"):
        DistributedGuard(guard()).load_state_dict(state)
