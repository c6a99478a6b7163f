"""Global dedup across processes: throughput against one process, and the communication cost per chunk.

Corpus: the SpamAssassin emails shipped with torchdataguard (6,046 real emails) plus ``--planted``
near-duplicates (copies with a few words replaced), shuffled with a fixed seed so that duplicates sit on
different ranks.

Measured in one run, on the same corpus and machine:
  1. the peer: a single-process ``Guard([ExactDedup, NearDedup])`` over the whole stream;
  2. ``DistributedGuard`` without a process group (a world of one: the cost of the chunk-synchronous path);
  3. ``DistributedGuard`` on W processes (gloo on the CPU, NCCL with one GPU per rank with ``--device cuda``),
     rank r reading items r, r + W, ...; wall time from a barrier before to a barrier after, slowest rank.
For each: examples per second and its ratio to the single process; CPU seconds of the busiest rank and the
single process's CPU seconds divided by it (the speed-up the work split allows when every process has a free
core; on a shared machine the wall-clock ratio can be far lower); the collective time and bytes per chunk (a
chunk is ``--chunk-size`` examples per rank; the time includes waiting for the slowest rank); and a check
that the kept count equals the single process.

Usage:
    python benchmarks/distributed_scaling.py                       # CPU: 1 and 2 processes, gloo
    python benchmarks/distributed_scaling.py --device cuda         # GPUs: 1..N processes, NCCL, one GPU each
    python benchmarks/distributed_scaling.py --worlds 1,2,4 --planted 30000
Writes benchmarks/results/distributed_scaling.json (``distributed_scaling_gpu.json`` with --device cuda).
Every process uses ``--threads`` torch threads (default 1), so W processes use W cores.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import machine  # noqa: E402

import torchdataguard as tdg  # noqa: E402
from torchdataguard.assets import load_spamassassin  # noqa: E402


def corpus(planted: int, seed: int = 0) -> list:
    rng = random.Random(seed)
    bodies = [r["text"] for r in load_spamassassin()]
    docs = list(bodies)
    for _ in range(planted):
        ws = rng.choice(bodies).split()
        for _ in range(max(1, len(ws) // 50)):
            if ws:
                ws[rng.randrange(len(ws))] = f"x{rng.randrange(10**6)}"
        docs.append(" ".join(ws))
    rng.shuffle(docs)
    return [{"text": t} for t in docs]


def make_guard(args, device: str) -> tdg.Guard:
    return tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)], device=device, progress=False,
                     chunk_size=args.chunk_size)


def run_single(args, records, device: str) -> dict:
    g = make_guard(args, device)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in g.process(records):
        pass
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": time.process_time() - c0, "kept": g.report()["kept"]}


def run_world1(args, records, device: str) -> dict:
    dg = tdg.DistributedGuard(make_guard(args, device))
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in dg.process(records):
        pass
    wall = time.perf_counter() - t0
    return {"wall": wall, "cpu": time.process_time() - c0, "kept": dg.guard.report()["kept"], "rounds": dg.rounds, "comm": dg.comm.stats()}


def _rank_main(rank: int, world: int, port: int, args, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        records = corpus(args.planted)[rank::world]
        dg = tdg.DistributedGuard(make_guard(args, f"cuda:{rank}" if cuda else "cpu"))
        # warm-up collective, then time from a barrier to a barrier
        dg.comm.all_reduce(torch.zeros(1))
        dist.barrier()
        c0 = dg.comm.stats()
        p0, t0 = time.process_time(), time.perf_counter()
        for _ in dg.process(records):
            pass
        local = time.perf_counter() - t0
        cpu = time.process_time() - p0
        dist.barrier()
        wall = time.perf_counter() - t0
        c1 = dg.comm.stats()
        rep = dg.report()
        res = {"rank": rank, "wall": wall, "local": local, "cpu": cpu, "rounds": dg.rounds, "kept": rep["kept"],
               "comm_seconds": c1["seconds"] - c0["seconds"], "comm_bytes": c1["bytes_sent"] - c0["bytes_sent"],
               "comm_calls": c1["calls"] - c0["calls"],
               "index_bytes_per_rank": [e.get("index_bytes_per_rank") for e in rep["stages"] if e["kind"] == "index"]}
    finally:
        dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
        json.dump(res, fh)


def run_world(args, world: int) -> dict:
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        mp.start_processes(_rank_main, args=(world, port, args, d), nprocs=world, join=True,
                           start_method="spawn" if args.device == "cuda" else "fork")
        ranks = [json.load(open(os.path.join(d, f"rank{r}.json"))) for r in range(world)]
    return {"wall": max(r["wall"] for r in ranks), "cpu": max(r["cpu"] for r in ranks), "kept": ranks[0]["kept"], "rounds": ranks[0]["rounds"],
            "comm_seconds_per_round": max(r["comm_seconds"] / max(1, r["rounds"]) for r in ranks),
            "comm_bytes_per_round": ranks[0]["comm_bytes"] / max(1, ranks[0]["rounds"]),
            "comm_calls_per_round": ranks[0]["comm_calls"] / max(1, ranks[0]["rounds"]),
            "comm_share": max(r["comm_seconds"] / r["wall"] for r in ranks),
            "index_bytes_per_rank": ranks[0]["index_bytes_per_rank"], "ranks": ranks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--planted", type=int, default=12000)
    ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--worlds", default=None, help="comma-separated process counts (default: 1,2 on CPU; 1..GPUs)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting; the fastest is reported")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here; run with --device cpu")
    ngpu = torch.cuda.device_count() if cuda else 0
    worlds = [int(w) for w in args.worlds.split(",")] if args.worlds else (list(range(1, ngpu + 1)) if cuda else [1, 2])
    if cuda and max(worlds) > ngpu:
        raise SystemExit(f"--worlds {worlds}: NCCL needs one GPU per process and there are {ngpu}")
    torch.set_num_threads(args.threads)
    records = corpus(args.planted)
    dev = "cuda:0" if cuda else "cpu"
    print(f"corpus: {len(records)} documents (6,046 SpamAssassin emails + {args.planted} planted near-duplicates); "
          f"chunk {args.chunk_size} per rank; {args.threads} torch thread(s) per process; device {args.device}")
    best = lambda runs: min(runs, key=lambda r: r["wall"])  # noqa: E731
    single = best([run_single(args, records, dev) for _ in range(args.repeat)])
    rows = [{"setting": "single process (peer)", "world": 1, **single}]
    w1 = best([run_world1(args, records, dev) for _ in range(args.repeat)])
    w1["comm_seconds_per_round"] = w1["comm"]["seconds"] / max(1, w1["rounds"])
    w1["comm_bytes_per_round"] = 0.0
    rows.append({"setting": "DistributedGuard, no process group", "world": 1, **w1})
    for w in worlds:
        if w == 1 and not cuda:
            continue
        r = best([run_world(args, w) for _ in range(args.repeat)])
        rows.append({"setting": f"DistributedGuard, {w} processes ({'nccl' if cuda else 'gloo'})", "world": w, **r})
    base = len(records) / single["wall"]
    print(f"\n{'setting':44s} {'ex/s':>7s} {'ratio':>6s} {'cpu s/rank':>10s} {'cpu ratio':>9s} {'kept':>6s} "
          f"{'comm ms/chunk':>13s} {'KB/chunk':>8s} {'comm %':>6s}")
    for r in rows:
        r["examples_per_second"] = round(len(records) / r["wall"], 1)
        r["ratio_to_single"] = round(r["examples_per_second"] / base, 3)
        r["kept_equals_single"] = r["kept"] == single["kept"]
        r["cpu_ratio_to_single"] = round(single["cpu"] / r["cpu"], 3)
        cms = r.get("comm_seconds_per_round")
        kb = r.get("comm_bytes_per_round")
        share = r.get("comm_share")
        print(f"{r['setting']:44s} {r['examples_per_second']:7.0f} {r['ratio_to_single']:6.2f} {r['cpu']:10.2f} "
              f"{r['cpu_ratio_to_single']:9.2f} {r['kept']:6d} {'' if cms is None else f'{cms * 1e3:.2f}':>13s} "
              f"{'' if kb is None else f'{kb / 1024:.1f}':>8s} {'' if share is None else f'{share * 100:.1f}':>6s}")
    bad = [r["setting"] for r in rows if not r["kept_equals_single"]]
    if bad:
        print(f"WARNING: kept counts differ from the single process for {bad}")
    result = {"machine": machine(), "corpus_documents": len(records), "planted": args.planted,
              "chunk_size": args.chunk_size, "threads_per_process": args.threads, "device": args.device,
              "repeat": args.repeat, "rows": rows}
    out = args.out or os.path.join(os.path.dirname(__file__), "results",
                                   "distributed_scaling_gpu.json" if cuda else "distributed_scaling.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"\nmachine: {result['machine']['cpu']}, {result['machine']['cores']} cores, torch {torch.__version__}; "
          f"wrote {out}")


if __name__ == "__main__":
    main()
