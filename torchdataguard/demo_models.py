"""The models of ``torchdataguard demo`` and ``benchmarks/dp_utility.py``: what is trained, with or without DP.

all-MiniLM-L6-v2 is a sentence encoder: its useful output is the mean of its token states (how it was trained),
not BERT's ``[CLS]`` pooler. Three ways to fine-tune it for a classification task, from fewest to most trained
parameters:

* ``"head"``: the encoder frozen, a ``Linear(384, classes)`` head on the mean-pooled, L2-normalised sentence
  embedding. The embeddings are computed once (:func:`embed_texts`, evaluation mode, no gradient), so each
  epoch of training costs almost nothing and DP-SGD can afford the many epochs and large batches it needs.
  Each embedding is a function of its own email only, so DP-SGD on the head is DP for the emails.
* ``"lora"``: LoRA adapters (peft, rank 8 on the attention's query and value) and the head; the encoder's
  weights frozen. Every step runs the encoder forward and backward.
* ``"full"``: every parameter of the encoder and the head.

Example:
    >>> import torch
    >>> head = FeatureHead(4, 2)
    >>> out = head(features=torch.randn(3, 4), labels=torch.tensor([0, 1, 1]))
    >>> tuple(out["logits"].shape), out["loss"].dim()
    ((3, 2), 0)
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

__all__ = ["FeatureHead", "MeanPoolClassifier", "TRAINABLE", "build_classifier", "embed_texts", "mean_pool"]

#: what a demo run can train, in the order of the benchmark table
TRAINABLE = ("head", "lora", "full")


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token states over the real (unmasked) tokens, L2-normalised: the sentence embedding.

    Example:
        >>> h = torch.ones(1, 3, 2); m = torch.tensor([[1, 1, 0]])
        >>> mean_pool(h, m).tolist()
        [[0.7071067690849304, 0.7071067690849304]]
    """
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    emb = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    return emb / emb.norm(dim=1, keepdim=True).clamp_min(1e-12)


class FeatureHead(nn.Module):
    """A linear head on precomputed sentence embeddings, returning ``{"loss", "logits"}`` as a Hugging Face
    model does (so the Trainer, ``GuardCallback`` and the DP engine take it as it is)."""

    def __init__(self, dim: int, num_labels: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, num_labels)

    def forward(self, features: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        logits = self.head(features)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


class MeanPoolClassifier(nn.Module):
    """An encoder (a ``transformers`` ``BertModel``, possibly LoRA-wrapped) and a linear head on its mean-pooled,
    L2-normalised output. ``position_ids`` and ``token_type_ids`` are passed with the batch's shape: BERT's
    broadcast ``[1, T]`` buffers would give every row the same per-sample gradient slot under DP-SGD."""

    def __init__(self, encoder: nn.Module, dim: int, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(dim, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: Optional[torch.Tensor] = None,
                **_: Any) -> Dict[str, torch.Tensor]:
        n, t = input_ids.shape
        pos = torch.arange(t, device=input_ids.device).unsqueeze(0).expand(n, t)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos,
                              token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
        logits = self.head(mean_pool(hidden, attention_mask))
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def build_classifier(kind: str, model_dir: str, *, num_labels: int = 2, lora_rank: int = 8,
                     seed: int = 0) -> nn.Module:
    """The model that trains ``kind`` (``"head"``, ``"lora"`` or ``"full"``) of the encoder in ``model_dir``.

    ``"head"`` returns a :class:`FeatureHead` (train it on :func:`embed_texts`); the others a
    :class:`MeanPoolClassifier` whose trainable parameters are the LoRA adapters and the head (``"lora"``) or all
    of them (``"full"``).
    """
    from transformers import AutoConfig, AutoModel

    if kind not in TRAINABLE:
        from .errors import ConfigError

        raise ConfigError.bad("train", kind, "one of " + ", ".join(repr(k) for k in TRAINABLE))
    torch.manual_seed(seed)
    dim = int(AutoConfig.from_pretrained(model_dir).hidden_size)
    if kind == "head":
        return FeatureHead(dim, num_labels)
    encoder = AutoModel.from_pretrained(model_dir, add_pooling_layer=False)
    if kind == "lora":
        import peft

        encoder = peft.get_peft_model(encoder, peft.LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank,
                                                               lora_dropout=0.0, target_modules=["query", "value"]))
    torch.manual_seed(seed)
    return MeanPoolClassifier(encoder, dim, num_labels)


def embed_texts(texts: Sequence[str], model_dir: str, *, max_length: int = 128, batch_size: int = 64,
                tokenizer: Any = None) -> torch.Tensor:
    """The frozen encoder's sentence embeddings of ``texts`` (``[N, 384]``, evaluation mode, no gradient)."""
    from transformers import AutoModel, AutoTokenizer

    tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(model_dir)
    enc = AutoModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    out: List[torch.Tensor] = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            b = tok(list(texts[i:i + batch_size]), truncation=True, max_length=max_length, padding=True,
                    return_tensors="pt")
            out.append(mean_pool(enc(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state,
                                 b["attention_mask"]))
    return torch.cat(out) if out else torch.zeros(0, int(enc.config.hidden_size))
