"""DistributedGuard makes the checks a Guard makes on the first records (2 gloo processes): NearDedup settings
under which nothing is compared, and a field named in PIIScrubber(fields=...) that no record holds, are refused
with the same ConfigError on every rank. Before, the sharded near stage let every record pass uncompared (counted
as near/no_content) and the field scrubbed nothing, without a word."""
import json
import os

import torch
import torch.distributed as dist
from conftest import run_ranks

import torchdataguard as tdg
from torchdataguard.distributed import DistributedGuard
from torchdataguard.errors import ConfigError

TEXTS = [f"the message number {i} about the weekly meeting of the team" for i in range(12)] * 2


def attempt(fn):
    try:
        fn()
        return "no error"
    except ConfigError as exc:
        return f"ConfigError: {exc}"


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    res = {}
    try:
        recs = [{"text": t, "title": "write to a@example.org"} for t in TEXTS][rank::world]
        g = DistributedGuard(tdg.Guard([tdg.NearDedup(shingles="tokens")], device="cpu", progress=False, chunk_size=8))
        res["tokens"] = attempt(lambda: list(g.process(recs)))
        g = DistributedGuard(tdg.Guard([tdg.NearDedup()], text_field=None, device="cpu", progress=False, chunk_size=8))
        res["no_text"] = attempt(lambda: list(g.process(recs)))
        g = DistributedGuard(tdg.Guard([tdg.PIIScrubber(fields=("subject",)), tdg.ExactDedup()], device="cpu",
                                       progress=False, chunk_size=8))
        res["field"] = attempt(lambda: list(g.process(recs)))
        g = DistributedGuard(tdg.Guard([tdg.PIIScrubber(fields=("title",)), tdg.NearDedup()], device="cpu",
                                       progress=False, chunk_size=8))
        res["fine"] = [ex.record["title"] for ex, d, _ in g.process(recs) if d is None][:1]
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w", encoding="utf-8") as fh:
        json.dump(res, fh)


def test_first_record_checks_refuse_on_every_rank(tmp_path):
    out = run_ranks(_worker, 2, tmp_path)
    for res in out:
        assert "shingles='tokens'" in res["tokens"] and "none of the first 16 records" in res["tokens"], res["tokens"]
        assert "neither text nor token ids" in res["no_text"], res["no_text"]
        assert res["field"].startswith("ConfigError: stage 'pii' reads the field 'subject'"), res["field"]
        assert "'title'" in res["field"]
        assert res["fine"] == ["write to <EMAIL>"]
