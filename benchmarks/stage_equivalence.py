"""Check that two checkouts give identical outputs for the ``normalize`` and ``pii`` stages.

Builds a fixed corpus (the shipped SpamAssassin bodies and raw e-mails, cuts of 1-500 words, 10,000-word
concatenations, Chinese/Japanese/Arabic/emoji text, mojibake, odd whitespace and control characters, lone
surrogates, synthetic personal data glued to odd neighbours, random Unicode), runs each stage (in several
configurations) on it in a fresh interpreter per checkout, and compares every output: the text, the record,
``counts``, ``scores``, drop reasons, ``normalize_text`` results, PII detections and scrubbed text (redacted
and pseudonymised).

Usage:
    python benchmarks/stage_equivalence.py --against /tmp/old_checkout [--seed 0]

Prints the number of comparisons and of differences (with the first few); exits 1 on any difference.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_SCRIPTS = ("中文文本，联系电话：010-62345678，手机13812345678。身份证11010519491231002X 护照号码：E12345678 ",
            "日本語のテキストです。メールは taro@example.jp まで。カタカナ　全角スペース ",
            "هذا نص عربي مع رقم ٠١٢٣٤٥٦٧٨٩ وبريد ali@example.com ",
            "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷 zwj ‍ keycap 1️⃣ ",
            "Ελληνικά κείμενο, кириллица текст, עברית טקסט, हिन्दी पाठ, ไทย ",
            "ﬁne ﬂow ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ① ½ ™ Å K ſ İ ß ")
_ODD = ("\t", "\r\n", "\r", "\xa0", "\u200b", "\u2060", "\ufeff", "\x00", "\x07", "\x1b[31m", "\x0b", "\x0c",
        "\x85", "\u2028", "\u2029", "\u3000", "\u202e", "\u00ad", "  ", "   \n", " \t ", "\n\n\n\n", "\x1c",
        "\u2003", "\x9d", "\x81", "\ud800", "\udc00", "\ud83d\ude00", "\ufffd", "Ã ", "Â ", "\nÃ ", "\nÂ ", "\u200d")
_ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n\t.-_:@/+()#=,;'\"<>"
             "éèÃÂâ€™œšžŸ¢£¤¥¦§¨©ª«¬®¯°±²³´µ¶·¸¹º»¼½¾¿ÀÁÄÅÆÇÐÑÒ×ØÙÞßàáäåæçðñò÷øùþÿ–—‘’“”•…"
             "\x80\x81\x8d\x9d\x9f\xa0\xad中文日本語한국어ابتكВГРСвЂΒΓΞΟβ€ā√≈‚Ä─│┌═║╔▀▄█░▒▓\u3000\u2028\ufffd")


def _cut(text: str, words: int) -> str:
    pos = -1
    for _ in range(words):
        pos = text.find(" ", pos + 1)
        if pos < 0:
            return text
    return text[:pos]


def _mojibake(rng: random.Random, text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    codec = rng.choice(("latin-1", "cp1252", "cp1251", "cp1253", "mac_roman", "cp1257"))
    return raw.decode(codec, "replace")


def _pii_text(rng: random.Random, synthetic: Any) -> str:
    makers = [lambda: synthetic.fake_email(rng), lambda: synthetic.fake_phone(rng), lambda: synthetic.fake_ipv4(rng),
              lambda: synthetic.fake_ipv6(rng), lambda: synthetic.fake_card(rng, valid=rng.random() < 0.7),
              lambda: synthetic.fake_iban(rng, rng.choice(["DE", "GB", "FR", "NL"])),
              lambda: synthetic.fake_ssn(rng, valid=rng.random() < 0.7),
              lambda: synthetic.fake_secret(rng, rng.choice(synthetic.SECRET_KINDS)),
              lambda: synthetic.fake_cn_mobile(rng, rng.choice(["plain", "spaces", "dashes", "+86", "0086", "(+86)"])),
              lambda: synthetic.fake_cn_landline(rng), lambda: synthetic.fake_cn_id(rng),
              lambda: synthetic.fake_hk_id(rng), lambda: synthetic.fake_tw_id(rng),
              lambda: synthetic.fake_unionpay(rng), lambda: synthetic.fake_passport(rng),
              lambda: "version 1.2.3.4", lambda: "tel. 0201 234 5678", lambda: "call (020) 7946 0958",
              lambda: "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))]
    glue = ["", " ", "\n", ".", ",", "-", ":", "/", "@", "<", ">", "(", ")", "电话", "卡号", "护照", "x", "0", "_", "=", "\t"]
    return "".join(rng.choice(glue) + rng.choice(makers)() + rng.choice(glue) for _ in range(rng.randint(1, 8)))


def build_corpus(seed: int) -> List[str]:
    """Every input text (deterministic for a seed)."""
    from torchdataguard.assets import load_spamassassin
    from torchdataguard.pii import synthetic

    rng = random.Random(seed)
    raw = [r["text"] for r in load_spamassassin()]
    bodies = [t.split("\n\n", 1)[-1] for t in raw]
    out = list(bodies) + list(raw)
    for _ in range(4000):
        out.append(_cut(rng.choice(bodies), rng.randint(1, 500)))
    words = " ".join(bodies).split(" ")
    for _ in range(12):
        i = rng.randrange(len(words) - 10000)
        out.append(" ".join(words[i:i + 10000]))
    for _ in range(1500):
        parts = [rng.choice(_SCRIPTS) for _ in range(rng.randint(1, 6))]
        out.append("".join(p + rng.choice(_ODD) if rng.random() < 0.5 else p for p in parts))
    for _ in range(1500):
        src = rng.choice(bodies + list(_SCRIPTS))
        out.append(_mojibake(rng, _cut(src, rng.randint(1, 80)) + rng.choice(_SCRIPTS)))
    for _ in range(3000):
        t = list(_cut(rng.choice(bodies), rng.randint(1, 120)))
        for _ in range(rng.randint(1, 12)):
            t.insert(rng.randint(0, len(t)), rng.choice(_ODD))
        out.append("".join(t))
    for _ in range(3000):
        out.append(_pii_text(rng, synthetic))
    for _ in range(3000):
        n = rng.randint(0, 200)
        if rng.random() < 0.5:
            out.append("".join(rng.choice(_ALPHABET) for _ in range(n)))
        else:
            out.append("".join(chr(rng.choice([rng.randint(0, 0x7f), rng.randint(0x80, 0x2fff),
                                               rng.randint(0x3000, 0x10ffff)])) for _ in range(n)))
    out += ["", " ", "\n", "\t", "\x00", "\ufeff", "Ã ", "Â foo", "a\nÃ b", "\ud800", "x" * 5000, " " * 3000 + "x",
            "a" + " " * 3000 + "b", "a" + " \t" * 2000 + "\n" + "\t" * 3000 + "b" + " " * 2000]
    return out


CHILD = r"""
import hashlib, json, sys
import torchdataguard as tdg
from torchdataguard.core.stage import Drop, Example
assert tdg.__file__.startswith(sys.argv[3]), tdg.__file__
texts = json.load(open(sys.argv[1]))
KEY = "0123456789abcdef-equivalence"
norm = [tdg.Normalize(), tdg.Normalize(whitespace="lines"), tdg.Normalize(whitespace=None, form=None),
        tdg.Normalize(max_blank_lines=0, form="NFC"), tdg.Normalize(max_blank_lines=3, fix_mojibake=False),
        tdg.Normalize(control_chars=False, drop_unrepaired=False, max_replacement_ratio=0.5)]
pii = [tdg.PIIScrubber(), tdg.PIIScrubber(actions="pseudonymize", key=KEY),
       tdg.PIIScrubber(actions={"default": "keep", "secret": "drop", "email": "pseudonymize"}, key=KEY),
       tdg.PIIScrubber(entities=["email", "phone"]), tdg.PIIScrubber(entities=["ipv4", "ipv6", "credit_card"])]
def res(r):
    if isinstance(r, Drop):
        return ["drop", r.reason, repr(r.matched), r.score]
    return ["keep", r.text, r.record, sorted(r.counts.items()), sorted(r.scores.items())]
out = []
for i, t in enumerate(texts):
    ex = Example(i, t, t)
    row = [res(s.process(ex)) for s in norm]
    row.append(list(norm[0].normalize_text(t)))
    for s in pii:
        row.append(res(s.process(ex)))
    row.append([list(d) for d in pii[0].detect(t)])
    row.append(pii[0].scrub(t))
    row.append(pii[1].scrub(t))
    rec = {"text": t, "subject": t[:200]}
    row.append(res(tdg.PIIScrubber(fields=("subject",)).process(Example(i, rec, t, "text"))))
    out.append(row)
g = tdg.Guard([tdg.Normalize(), tdg.PIIScrubber()], device="cpu", progress=False)
kept = g.filter(texts[:20000])
out.append([kept, sorted(g.report()["counts"].items())])
json.dump(out, open(sys.argv[2], "w"), ensure_ascii=True)
"""


def run_side(root: str, corpus_path: str, out_path: str) -> List[Any]:
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    subprocess.run([sys.executable, "-c", CHILD, corpus_path, out_path, os.path.join(root, "")], env=env, cwd=root,
                   check=True)
    with open(out_path) as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", required=True, help="root of the other checkout")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    corpus = build_corpus(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        cpath = os.path.join(tmp, "corpus.json")
        with open(cpath, "w") as f:
            json.dump(corpus, f, ensure_ascii=True)
        this = run_side(ROOT, cpath, os.path.join(tmp, "this.json"))
        other = run_side(os.path.abspath(args.against), cpath, os.path.join(tmp, "other.json"))
    comparisons = differences = 0
    shown = 0
    for i, (a, b) in enumerate(zip(this, other)):
        for j, (x, y) in enumerate(zip(a, b)):
            comparisons += 1
            if x != y:
                differences += 1
                if shown < 5:
                    shown += 1
                    t = corpus[i] if i < len(corpus) else "<guard run>"
                    print(f"DIFF input {i} output {j}: input {t[:120]!r}\n  this  {str(x)[:300]}\n  other {str(y)[:300]}")
    digest = hashlib.sha256(json.dumps(corpus, ensure_ascii=True).encode()).hexdigest()[:16]
    print(json.dumps({"inputs": len(corpus), "comparisons": comparisons, "differences": differences,
                      "corpus_sha256": digest, "length_mismatch": len(this) != len(other)}))
    sys.exit(1 if differences or len(this) != len(other) else 0)


if __name__ == "__main__":
    main()
