"""DistributedGuard's planning workers (``wrap(stream, num_workers=N)``: record stages and keys computed in
DataLoader workers while the main process trains) lower their CPU priority by ``guard.worker_nice``, as a Guard's
stream workers do (data/priority.py); before, they ignored it. One rank, gloo."""
import json
import os

import pytest
import torch
import torch.distributed as dist
from conftest import ListStream, run_ranks

import torchdataguard as tdg
from torchdataguard.core.stage import Filter
from torchdataguard.data.priority import WORKER_NICE
from torchdataguard.distributed import DistributedGuard

pytestmark = pytest.mark.skipif(not hasattr(os, "nice"), reason="os.nice is POSIX only")


class NiceProbe(Filter):
    """Drops every record with the nice value of the process that judged it as the rule."""

    name = "probe"

    def judge(self, ex):
        return f"nice{os.nice(0)}"


def _worker(rank, world, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    res = {"main": os.nice(0)}
    rows = [{"text": f"row {i}"} for i in range(24)]
    try:
        for nice in (10, None):
            guard = tdg.Guard([NiceProbe()], device="cpu", progress=False, chunk_size=4)
            if nice is not None:
                guard.worker_nice = nice
            dg = DistributedGuard(guard, drain=True)
            assert list(dg.wrap(ListStream(rows, per_worker=True), num_workers=2)) == []
            res[str(nice)] = sorted(dg.guard.report()["dropped_by_reason"])
        res["main_after"] = os.nice(0)
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w", encoding="utf-8") as fh:
        json.dump(res, fh)


def test_planning_workers_lower_their_priority_by_worker_nice_and_the_default_leaves_it(tmp_path):
    (res,) = run_ranks(_worker, 1, tmp_path)
    main = res["main"]
    assert res["10"] == [f"probe/nice{min(19, main + 10)}"]  # guard.worker_nice = 10: lowered
    assert res["None"] == [f"probe/nice{main + WORKER_NICE}"] == [f"probe/nice{main}"]  # the default: left alone
    assert res["main_after"] == main  # the training process keeps its priority
