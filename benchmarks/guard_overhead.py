"""What a guard costs while training: the same fine-tuning steps on the same batches, with and without it.

Each side runs in a fresh process here; on the shared 2-core machine a process's step time moves by 10-30% from one
process to the next, more than the effect (medians of -13% and +9% on the same code): the figure of record comes
from ``benchmarks/guard_overhead_blocks.py``, which takes turns in one process.

A small BERT (built from a config, random initialisation: 4 layers, hidden 256, sequence 128) is fine-tuned
for spam/ham classification on the shipped SpamAssassin emails (plus 20% planted exact and near copies, so
that the guard has work to drop), batch 16, AdamW, two DataLoader workers that tokenise (a word-hash
tokeniser, the same on both sides).

* guarded: ``DataLoader(guard.wrap(stream), num_workers=2)`` with ``tdg.Guard([Normalize(), QualityFilter(),
  PIIScrubber(), ExactDedup(), NearDedup()])``: the record stages and the keys run in the workers, the dedup
  decisions in the main process (the guard's decision service), while the model trains;
* plain: the same batches, recorded from the guarded run, in the same order, from a map-style dataset with
  the same two workers and the same collate function, no guard.

Both run ``--steps`` steps, ``--repeat`` rounds, the two sides taking turns going first (a plain run replays the
batches of the guarded run before it), each side of each round in a fresh Python process, so that nothing a
first run leaves behind (threads, memory, a closed guard) weighs on the second; rounds run in one process were
erratic on the 2-core benchmark machine. The model is warmed up first with ``--warmup`` steps on a fixed
batch; then the clock runs from the loader's iterator's creation to the end of the last step, so that what a guard
does before its first batch counts (a guard that decides one large chunk up front would otherwise hide that
chunk's work from a short window). Two figures per round:

* wall time per step: ``(guarded - plain) / plain``, best against best (``overhead_percent``) and the median of
  the rounds (``overhead_median_percent``). On a shared machine this moves by several points between rounds;
* CPU time per step, of this process (training threads and the guard's decision service) plus the loader's
  two workers (read from ``/proc``, Linux): ``cpu_overhead_median_percent``. The training threads' CPU moves
  with other tenants' load as much as the wall time does, so the guard's own CPU is reported apart:
  ``guard_cpu_ms_per_step_median``, what its workers spent beyond the plain run's workers (the same tokeniser)
  plus its decision threads (``torchdataguard-*``), and that as a share of a plain step's wall time
  (``guard_cpu_percent_of_plain_step_median``: the overhead if every cycle of the guard stalled training).

With CUDA, ``--device cuda`` trains on the GPU (the guard stays on the CPU workers and the main process).
Without a GPU, ``--step-ms N`` stands for one: the main process sleeps N ms instead of each training step, so
the CPU is the workers' and what shows is whether the guarded stream keeps up (its throughput, and the stalls
while a worker decides a chunk; the first batch and the longest wait for a batch are reported too).

Usage:
    python benchmarks/guard_overhead.py [--device cpu] [--steps 100] [--repeat 2] [--step-ms 0] [--quick]
Writes benchmarks/results/guard_overhead.json (guard_overhead_cuda.json for a CUDA device,
guard_overhead_step<N>ms.json with ``--step-ms N``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from statistics import median
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

SEQ = 128
VOCAB = 30522


def corpus(seed: int = 0) -> List[Dict[str, Any]]:
    """SpamAssassin emails (body and label) in a fixed shuffled order, with 20% planted copies."""
    from torchdataguard.assets import load_spamassassin

    rng = random.Random(seed)
    rows = [{"text": r["text"].split("\n\n", 1)[-1], "label": int(r["label"] == "spam")} for r in load_spamassassin()]
    rng.shuffle(rows)
    out = list(rows)
    for _ in range(len(rows) // 5):
        src = dict(rows[rng.randrange(len(rows))])
        w = src["text"].split()
        if w and rng.random() < 0.5:
            w[rng.randrange(len(w))] = "planted"
        src["text"] = " ".join(w) if rng.random() < 0.5 else src["text"].upper()
        out.insert(rng.randrange(len(out) + 1), src)
    for i, r in enumerate(out):
        r["idx"] = i
    return out


def collate(rows: Sequence[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
    """Word-hash tokenisation to ``SEQ`` ids (CLS ... SEP, padded), labels and the rows' indices."""
    ids = torch.zeros(len(rows), SEQ, dtype=torch.long)
    mask = torch.zeros(len(rows), SEQ, dtype=torch.long)
    for i, r in enumerate(rows):
        words = r["text"].split()[: SEQ - 2]
        toks = [101] + [1000 + zlib.crc32(w.lower().encode()) % (VOCAB - 1000) for w in words] + [102]
        ids[i, : len(toks)] = torch.tensor(toks)
        mask[i, : len(toks)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([r["label"] for r in rows]),
            "idx": torch.tensor([r["idx"] for r in rows])}


class Stream(IterableDataset):
    """The corpus as a stream, split between DataLoader workers by position."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(self.rows[w::n])


class Batches(Dataset):
    """Map-style view of the rows, read by a batch sampler that replays recorded batches."""

    def __init__(self, rows: List[Dict[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        return self.rows[i]


def model(device: torch.device):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=VOCAB, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=1024, max_position_embeddings=SEQ, num_labels=2)
    m = BertForSequenceClassification(cfg).to(device)
    return m, torch.optim.AdamW(m.parameters(), lr=5e-5)


def _proc_cpu(pid: Any) -> float:
    """User + system CPU seconds of process (or ``pid/task/tid``: thread) ``pid`` so far (Linux ``/proc``; nan where it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _cpu_now(it: Any) -> tuple[float, float, float]:
    """CPU seconds so far of this process (every thread: training, the guard's decision service), of the
    loader's worker processes, and of the guard's decision threads in this process (``torchdataguard-*``)."""
    workers = getattr(it, "_workers", None) or []
    return time.process_time(), sum(_proc_cpu(w.pid) for w in workers), _guard_threads_cpu()


def _guard_threads_cpu() -> float:
    """User + system CPU seconds of this process's threads named ``torchdataguard-*`` (the guard's decision
    service; Linux ``/proc``). A thread that has ended is no longer counted: read before the loader ends."""
    total = 0.0
    for t in threading.enumerate():
        if t.name.startswith("torchdataguard") and t.native_id is not None:
            total += _proc_cpu(f"{os.getpid()}/task/{t.native_id}")
    return total


#: ``--step-ms``: the main process sleeps this long instead of a training step (an accelerator's step, which
#: leaves the CPU to the loader's workers); 0 trains the model on ``--device``
STEP_S = 0.0


def train(loader, device: torch.device, steps: int, warmup: int, warm_rows: Sequence[Dict[str, Any]]
          ) -> Dict[str, Any]:
    """Per step, timed from the loader's iterator's creation to the end of step ``steps`` (so that work a
    loader does before its first batch counts): seconds of wall time (``wall``) and of CPU (``cpu``: this
    process; the loader's workers); the seconds to the first batch (``first``), the longest wait for a later
    batch (``wait``), and the batches seen (their row indices), in order (``seen``). ``warmup`` steps on
    ``warm_rows``, before the loader starts, warm the model up."""
    m, opt = model(device) if not STEP_S else (None, None)
    if m is not None:
        fixed = collate(warm_rows)
        fixed.pop("idx")
        for _ in range(warmup):
            _step(m, opt, fixed, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seen: List[List[int]] = []
    t0 = time.perf_counter()
    it = iter(loader)
    c0 = _cpu_now(it)
    first, longest = 0.0, 0.0
    for step in range(steps):
        t_ask = time.perf_counter()
        b = next(it)
        if step == 0:
            first = time.perf_counter() - t0
        else:
            longest = max(longest, time.perf_counter() - t_ask)
        seen.append(b.pop("idx").tolist())
        if STEP_S:
            time.sleep(STEP_S)
            continue
        _step(m, opt, b, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt, c1 = time.perf_counter() - t0, _cpu_now(it)
    del it
    return {"wall": dt / steps, "cpu": ((c1[0] - c0[0]) / steps, (c1[1] - c0[1]) / steps),
            "decision_cpu": (c1[2] - c0[2]) / steps, "first": first,
            "wait": longest, "seen": seen}


def _step(m, opt, b: Dict[str, torch.Tensor], device: torch.device) -> None:
    b = {k: v.to(device, non_blocking=True) for k, v in b.items()}
    loss = m(**b).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def guarded_run(rows, device, steps, warmup, batch):
    import torchdataguard as tdg

    guard = tdg.Guard([tdg.Normalize(), tdg.QualityFilter(), tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup()],
                      device="cpu", progress=False)
    loader = DataLoader(guard.wrap(Stream(rows)), batch_size=batch, num_workers=2, collate_fn=collate)
    r = train(loader, device, steps, warmup, rows[:batch])
    r["report"] = guard.report()
    guard.close()
    return r


def plain_run(rows, seen, device, steps, warmup):
    loader = DataLoader(Batches(rows), batch_sampler=seen, num_workers=2, collate_fn=collate)
    return train(loader, device, steps, warmup, rows[:len(seen[0])])


def run_side(side: str, a: argparse.Namespace, tmp: str, seen: Optional[List[List[int]]] = None) -> Dict[str, Any]:
    """Run one side of a round in a fresh Python process (this script with ``--side``) and read its result."""
    out = os.path.join(tmp, f"{side}.json")
    cmd = [sys.executable, os.path.abspath(__file__), "--side", side, "--side-out", out, "--device", a.device,
           "--steps", str(a.steps), "--warmup", str(a.warmup), "--batch", str(a.batch), "--step-ms", str(a.step_ms)]
    if seen is not None:
        cmd += ["--seen", os.path.join(tmp, "seen.json")]
        with open(cmd[-1], "w") as fh:
            json.dump(seen, fh)
    if os.path.exists(out):
        os.remove(out)
    rc = subprocess.run(cmd).returncode
    if rc != 0 and not os.path.exists(out):
        raise RuntimeError(f"the {side} side failed (exit code {rc}) before writing its result")
    with open(out) as fh:
        r = json.load(fh)
    # a side that wrote its result and then died at exit (the abort in docs/wrap.md) is counted, not hidden
    r["exit_code"] = rc
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="6 steps, one repeat (a smoke run)")
    ap.add_argument("--step-ms", type=float, default=0.0,
                    help="sleep this long per step instead of training (an accelerator's step that leaves the CPU "
                         "to the workers)")
    ap.add_argument("--out", default=None)
    # internal: one side of one round (run_side starts this script with them)
    ap.add_argument("--side", choices=["guarded", "plain"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seen", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--side-out", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.quick:
        a.steps, a.repeat, a.warmup = 6, 1, 2
    from _machine import machine, write_result

    global STEP_S
    STEP_S = a.step_ms / 1000
    device = torch.device(a.device)
    if a.side:  # one side of one round, in a fresh process (see run_side)
        rows = corpus()
        if a.side == "guarded":
            r = guarded_run(rows, device, a.steps, a.warmup, a.batch)
            r["report"] = {k: r["report"].get(k) for k in ("seen", "dropped_by_reason")}
        else:
            with open(a.seen) as fh:
                r = plain_run(rows, json.load(fh), device, a.steps, a.warmup)
        with open(a.side_out, "w") as fh:
            json.dump(r, fh)
        return 0
    pairs: List[tuple] = []  # (guarded, plain) results of each round
    seen: List[List[int]] = []
    tmp = tempfile.mkdtemp(prefix="guard-overhead-")
    for r in range(a.repeat):
        # The two sides take turns going first, each in a fresh process (rounds run in one process were
        # erratic on the benchmark machine; see the module docstring). The plain run replays the
        # batches of the guarded run before it: the guard's cross-worker dedup decisions depend on which
        # worker's copy arrives first, so two guarded runs can differ in a few rows (the plain step's cost does
        # not depend on which rows: fixed length).
        if r % 2 == 0:
            g = run_side("guarded", a, tmp)
            seen = g["seen"]
            p = run_side("plain", a, tmp, seen)
        else:
            p = run_side("plain", a, tmp, seen)
            g = run_side("guarded", a, tmp)
        assert p["seen"] == seen, "the plain run must replay the guarded run's batches in the same order"
        seen = g["seen"]
        pairs.append((g, p))
        gc, pc = sum(g["cpu"]), sum(p["cpu"])
        print(f"round {r + 1}: plain {p['wall'] * 1000:.0f} ms/step ({pc * 1000:.0f} ms CPU), guarded "
              f"{g['wall'] * 1000:.0f} ms/step ({gc * 1000:.0f} ms CPU): {(g['wall'] - p['wall']) / p['wall'] * 100:+.1f}% "
              f"wall, {(gc - pc) / pc * 100:+.1f}% CPU; first batch {p['first']:.2f} s / {g['first']:.2f} s, longest "
              f"wait {p['wait'] * 1000:.0f} ms / {g['wait'] * 1000:.0f} ms; the guard's own CPU "
              f"{((g['cpu'][1] - p['cpu'][1]) + g['decision_cpu']) * 1000:.0f} ms a step", flush=True)

    def ms(x: float) -> float:
        return round(x * 1000, 1)

    def pct(x: float, y: float) -> float:
        return round((x - y) / y * 100, 2)

    def guard_cpu(g: Dict[str, Any], p: Dict[str, Any]) -> float:
        """The guard's own CPU seconds a step: what its workers spent beyond the plain run's workers (the
        record stages and the keys; the tokeniser is the same on both sides) plus its decision threads."""
        return (g["cpu"][1] - p["cpu"][1]) + g["decision_cpu"]

    g_best, p_best = min(g["wall"] for g, _ in pairs), min(p["wall"] for _, p in pairs)
    own = median(guard_cpu(g, p) for g, p in pairs)
    rep = pairs[-1][0]["report"]
    step = f"--step-ms {a.step_ms:g} (sleep instead of a training step)" if a.step_ms else f"train on {device}"
    res = {"machine": machine(device), "device": str(device), "step": step, "step_ms": a.step_ms, "steps": a.steps,
           "warmup": a.warmup, "batch": a.batch, "seq": SEQ, "repeat": a.repeat,
           "stages": ["normalize", "quality", "pii", "exact", "near"],
           "plain_ms_per_step": ms(p_best), "guarded_ms_per_step": ms(g_best),
           "overhead_percent": pct(g_best, p_best),
           # each round's pair of runs, and the medians over rounds: wall time, CPU time (this process's threads
           # and the loader's two workers, read from /proc), the first batch and the longest wait for a batch
           "rounds": [{"plain_ms_per_step": ms(p["wall"]), "guarded_ms_per_step": ms(g["wall"]),
                       "overhead_percent": pct(g["wall"], p["wall"]),
                       "plain_cpu_ms_main_workers": [ms(x) for x in p["cpu"]],
                       "guarded_cpu_ms_main_workers": [ms(x) for x in g["cpu"]],
                       "cpu_overhead_percent": pct(sum(g["cpu"]), sum(p["cpu"])),
                       "guard_cpu_ms_per_step": ms(guard_cpu(g, p)),
                       "first_batch_s": {"plain": round(p["first"], 3), "guarded": round(g["first"], 3)},
                       "longest_wait_ms": {"plain": ms(p["wait"]), "guarded": ms(g["wait"])}} for g, p in pairs],
           "overhead_median_percent": round(median(pct(g["wall"], p["wall"]) for g, p in pairs), 2),
           "cpu_overhead_median_percent": round(median(pct(sum(g["cpu"]), sum(p["cpu"])) for g, p in pairs), 2),
           "guard_cpu_ms_per_step_median": ms(own),
           "guard_workers_cpu_ms_per_step_median": ms(median(g["cpu"][1] - p["cpu"][1] for g, p in pairs)),
           "guard_decision_threads_cpu_ms_per_step_median": ms(median(g["decision_cpu"] for g, _ in pairs)),
           # the guard's own CPU against the plain step's wall time: the overhead if every guard cycle stalled
           # training (an upper bound on a machine whose cores training keeps busy)
           "guard_cpu_percent_of_plain_step_median": round(median(guard_cpu(g, p) / p["wall"] * 100 for g, p in pairs), 2),
           "guard_cpu_percent_of_plain_cpu_median": round(median(guard_cpu(g, p) / sum(p["cpu"]) * 100 for g, p in pairs), 2),
           "guarded_first_batch_s_median": round(median(g["first"] for g, _ in pairs), 3),
           "guarded_longest_wait_ms_median": round(median(ms(g["wait"]) for g, _ in pairs), 1),
           "exit_codes": {"guarded": [g.get("exit_code", 0) for g, _ in pairs],
                          "plain": [p.get("exit_code", 0) for _, p in pairs]},
           "guard_seen": rep.get("seen"), "guard_dropped_by_reason": rep.get("dropped_by_reason"),
           "command": f"python benchmarks/guard_overhead.py --device {a.device} --steps {a.steps} --repeat {a.repeat}"
                      + (f" --step-ms {a.step_ms:g}" if a.step_ms else "")}
    print(f"overhead ({step}): {res['overhead_percent']:+.2f}% of the step, best against best (plain "
          f"{res['plain_ms_per_step']} ms, guarded {res['guarded_ms_per_step']} ms); median of the {a.repeat} paired "
          f"rounds {res['overhead_median_percent']:+.2f}%; CPU per step (this process and the workers) "
          f"{res['cpu_overhead_median_percent']:+.2f}%; the guard's own CPU {res['guard_cpu_ms_per_step_median']} ms a "
          f"step (workers {res['guard_workers_cpu_ms_per_step_median']}, decision threads "
          f"{res['guard_decision_threads_cpu_ms_per_step_median']}), {res['guard_cpu_percent_of_plain_step_median']}% "
          f"of a plain step's wall time; guarded first batch {res['guarded_first_batch_s_median']} s, longest wait "
          f"{res['guarded_longest_wait_ms_median']} ms (medians)")
    name = ("guard_overhead_cuda.json" if device.type == "cuda" else
            f"guard_overhead_step{a.step_ms:g}ms.json" if a.step_ms else "guard_overhead.json")
    write_result(a.out or os.path.join(HERE, "results", name), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
