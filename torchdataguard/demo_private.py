"""``torchdataguard demo --private``: DP-SGD that learns on the demo task.

What trains by default is the head alone (``Linear(384, 2)``) on the frozen encoder's mean-pooled sentence
embedding: 770 parameters keep DP-SGD's noise small (``benchmarks/dp_utility.py``, settings chosen on a validation
split; see ``docs/private-fine-tuning.md``), where at about 1,300 emails the noise on all 22.7M parameters drowned
the gradient (0.725, the majority class).
The settings come from :func:`~torchdataguard.dp.recipe.recommend` (a large expected logical batch through
Poisson sampling, many epochs, the learning rate that worked). Training runs in the ``transformers`` Trainer with
``GuardCallback(guard, privacy=...)``, so the epsilon printed is the accountant's for the Poisson steps that ran.
``--train lora`` and ``--train full`` train the others the same way (slower: the encoder runs at every step).
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Dict, List, Optional

__all__ = ["WHY", "train_private"]

#: why each choice trains what it trains (printed in the summary)
WHY = {
    "head": "770 parameters keep DP-SGD's noise small (settings chosen on a validation split by "
            "benchmarks/dp_utility.py); the frozen encoder's embeddings are computed once",
    "lora": "asked for with --train lora: LoRA adapters (rank 8, query/value) and the head, through peft",
    "full": "asked for with --train full: every parameter (drowns in noise at this data size)",
}


def train_private(*, kind: str, guard: Any, train: List[Dict[str, Any]], test: List[Dict[str, Any]], mdir: str,
                  tok: Any, epsilon: float, seed: int, max_length: int, out: str, progress: bool,
                  say: Callable[..., None], after_wrap: Optional[Callable[[], None]] = None) -> Dict[str, Any]:
    """Train ``kind`` with DP-SGD at ``epsilon`` on the guard's kept ``train`` rows; test on ``test`` (already
    rewritten); ``after_wrap`` is called once the guard has filtered ``train``. Returns the summary fields and the
    callback (``"callback"``) holding the report."""
    import datasets
    import torch
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator

    import torchdataguard as tdg
    from .demo_models import build_classifier, embed_texts

    kept = guard.wrap(train, source="train")
    if after_wrap is not None:
        after_wrap()
    recipe = tdg.DPConfig.recommend(len(kept), target_epsilon=epsilon, trainable=kind, seed=seed)
    lr = recipe.learning_rate[0]
    say(f"private training of the {kind}: {WHY[kind]}")
    for note in recipe.notes[1:]:
        say(f"  {note}")
    t0 = time.time()
    model = build_classifier(kind, mdir, seed=seed)
    if kind == "head":
        feats = embed_texts([r["text"] for r in kept], mdir, max_length=max_length, tokenizer=tok)
        test_feats = embed_texts([r["text"] for r in test], mdir, max_length=max_length, tokenizer=tok)
        say(f"  embedded {len(kept)} training and {len(test)} test emails in {time.time() - t0:.0f} s")
        train_ds = datasets.Dataset.from_dict({"features": feats.tolist(), "labels": [r["label"] for r in kept]})
        test_ds = datasets.Dataset.from_dict({"features": test_feats.tolist(), "labels": [r["label"] for r in test]})
        train_ds, test_ds = train_ds.with_format("torch"), test_ds.with_format("torch")
        collator = default_data_collator
    else:
        def encode(rows):
            enc = tok([r["text"] for r in rows], truncation=True, max_length=max_length)
            return datasets.Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                                               "labels": [r["label"] for r in rows]})
        train_ds, test_ds = encode(kept), encode(test)
        collator = DataCollatorWithPadding(tok)
    params = [p for p in model.parameters() if p.requires_grad]
    groups: Any = params
    if recipe.head_learning_rate is not None:  # the new head at its own rate (see DPConfig.recommend)
        head = {id(p) for p in model.head.parameters()}
        groups = [{"params": [p for p in params if id(p) not in head]},
                  {"params": [p for p in params if id(p) in head], "lr": recipe.head_learning_rate}]
    opt = (torch.optim.SGD(groups, lr=lr, momentum=0.9) if recipe.optimizer.startswith("SGD")
           else torch.optim.AdamW(groups, lr=lr, weight_decay=0.0))
    args = TrainingArguments(output_dir=out, per_device_train_batch_size=recipe.micro_batch,
                             gradient_accumulation_steps=recipe.accumulation, per_device_eval_batch_size=256,
                             num_train_epochs=recipe.epochs, learning_rate=lr, lr_scheduler_type="constant",
                             logging_steps=10, save_strategy="no", report_to=[], seed=seed, use_cpu=True,
                             disable_tqdm=not progress, dataloader_num_workers=0, max_grad_norm=0.0)
    callback = tdg.GuardCallback(guard, privacy=recipe.config)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=test_ds, data_collator=collator,
                      callbacks=[callback], optimizers=(opt, None))

    def accuracy() -> float:
        import numpy as np

        pred = trainer.predict(test_ds)
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return float((np.argmax(logits, axis=-1) == pred.label_ids).mean())

    before = accuracy()
    t1 = time.time()
    trainer.train()
    return {"callback": callback, "trainer": trainer, "accuracy_before": before, "accuracy_after": accuracy(),
            "train_seconds": time.time() - t1, "steps": trainer.state.global_step, "kept": len(kept),
            "trained": kind, "why": WHY[kind], "recipe": recipe.to_dict(), "learning_rate": lr,
            "learning_rates": [g["lr"] for g in opt.param_groups],
            "trainable_parameters": sum(p.numel() for p in params), "test_dataset": test_ds,
            "report_dir": os.path.abspath(out)}
