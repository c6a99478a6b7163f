"""Privacy audit: the one-run lower bound on epsilon next to the accountant's, without DP and with DP-SGD.

Task: scikit-learn's ``load_digits`` (1,797 8x8 digits, ships offline), a small MLP trained from random init on
the CPU. Canaries: held-out digits with random labels (``PrivacyAudit(pool=...)``), each put into the training
data by the audit's coin. The same data, model and canaries are trained without DP and with DP-SGD at each
target epsilon (``make_private``, Poisson sampling, PRV accountant); after training the audit scores every canary
by its loss and reports the lower bound at 95% confidence, the membership AUC, and the accountant's epsilon.

Run:  python benchmarks/privacy_audit.py                      (about 3 to 5 minutes on 2 CPU cores)
      python benchmarks/privacy_audit.py --epsilons 8 --canaries 600 --epochs 80
Writes benchmarks/results/privacy_audit.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine, write_result  # noqa: E402

import torchdataguard as tdg  # noqa: E402


def load(seed: int):
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    return x, y


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))


def run(eps: Optional[float], *, args, train, pool, test) -> Dict[str, Any]:
    audit = tdg.PrivacyAudit(num_canaries=args.canaries, seed=args.seed, pool=pool, delta=args.delta)
    data = audit.wrap(train)
    torch.manual_seed(args.seed)
    model = mlp()
    x = torch.stack([d[0] for d in data])
    y = torch.tensor([int(d[1]) for d in data])
    t0 = time.perf_counter()
    privacy: Optional[Dict[str, Any]] = None
    if eps is None:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        for _ in range(args.epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), args.batch):
                idx = perm[i:i + args.batch]
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
    else:
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        loader = DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=args.batch)
        cfg = tdg.DPConfig(target_epsilon=eps, delta=args.delta, epochs=args.epochs, max_grad_norm=args.clip,
                           seed=args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dp = tdg.make_private(model, opt, loader, cfg)
            model, opt, loader = dp
            for _ in range(args.epochs):
                for xb, yb in loader:
                    opt.zero_grad()
                    nn.functional.cross_entropy(model(xb), yb).backward()
                    opt.step()
            privacy = dp.report()
            dp.close()
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = audit.run(model)
    score_s = time.perf_counter() - t1
    from torchdataguard.audit.compare import compare_with_accountant

    res = compare_with_accountant(res, privacy)
    with torch.no_grad():
        acc = float((model(test[0]).argmax(1) == test[1]).float().mean())
    return {"target_epsilon": eps, "accountant_epsilon": res["accountant_epsilon"],
            "epsilon_lower_bound": res["epsilon_lower_bound"], "auc": res["auc"], "guesses": res["guesses"],
            "correct": res["correct"], "included": res["included"], "num_canaries": res["num_canaries"],
            "exceeds_accountant": res["exceeds_accountant"], "test_accuracy": round(acc, 4),
            "train_seconds": round(train_s, 1), "score_seconds": round(score_s, 2)}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epsilons", type=float, nargs="*", default=[1.0, 4.0, 8.0], help="DP-SGD target epsilons")
    ap.add_argument("--canaries", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--delta", type=float, default=1e-5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "privacy_audit.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    x, y = load(args.seed)
    n_test = 300
    test = (x[:n_test], y[:n_test])
    pool = [(x[i], int(y[i])) for i in range(n_test, n_test + args.canaries)]  # canary inputs, never trained on
    train = [(x[i], int(y[i])) for i in range(n_test + args.canaries, len(x))]
    rows = []
    for eps in [None] + list(args.epsilons):
        rows.append(run(eps, args=args, train=train, pool=pool, test=test))
        r = rows[-1]
        print(f"done: {'no DP' if eps is None else f'DP eps {eps:g}'} in {r['train_seconds']} s", flush=True)
    print()
    print(f"{'training':<12}{'accountant eps':>16}{'lower bound':>13}{'AUC':>7}{'right/guesses':>15}"
          f"{'test acc':>10}{'score s':>9}")
    for r in rows:
        name = "no DP" if r["target_epsilon"] is None else f"DP eps {r['target_epsilon']:g}"
        acc_eps = r["accountant_epsilon"]
        acc_txt = "inf" if acc_eps == "inf" else f"{acc_eps:.2f}"
        print(f"{name:<12}{acc_txt:>16}{r['epsilon_lower_bound']:>13.2f}{r['auc']:>7.3f}"
              f"{str(r['correct']) + '/' + str(r['guesses']):>15}{r['test_accuracy']:>10.3f}{r['score_seconds']:>9.2f}")
        if r["exceeds_accountant"]:
            print("  !! the lower bound is above the accountant's epsilon: a broken DP guarantee")
    result = {"task": "sklearn load_digits, MLP 64-256-10, held-out digits with random labels as canaries",
              "train_size": len(train), "settings": vars(args), "rows": rows,
              "machine": machine("cpu"), "confidence": 0.95}
    write_result(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
