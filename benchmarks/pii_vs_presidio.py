"""PIIScrubber against Presidio's regex-and-checksum recognisers: speed on real mail, recall on planted values.

Contenders, on the same documents, one thread each (both are pure Python):
  * torchdataguard ``PIIScrubber().detect`` with its default entity types;
  * Presidio ``AnalyzerEngine`` (presidio-analyzer) with a blank spaCy pipeline (``spacy.blank("en")``: no
    model, no download) and the recognisers for the types both tools cover: CreditCardRecognizer
    (Luhn), IbanRecognizer (mod-97), EmailRecognizer, IpRecognizer, PhoneRecognizer (python-phonenumbers),
    UsSsnRecognizer. Presidio's phone recogniser alone is timed too. tldextract, which Presidio's e-mail
    recogniser calls, is pointed at its bundled suffix list so that nothing is fetched.

Speed: documents per second on the first --docs SpamAssassin mails (raw, headers included; they hold real
addresses, IPs and phone numbers), median over --repeat rounds, contenders alternating within a round.

Recall on checksum-validated types: --planted documents, each a SpamAssassin mail body with one planted
payment card (Visa, Mastercard, Amex, Discover, JCB, Diners; plain, spaced or dashed) or IBAN (every
country in the registry, grouped or not) with valid checksums, plus as many with broken checksums (which
must NOT be reported). A planted value counts as found when a reported span of the right type covers it.

Usage:
    python benchmarks/pii_vs_presidio.py [--docs 300] [--repeat 3] [--planted 600] [--seed 0]
Writes benchmarks/results/pii_vs_presidio.json.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _machine import machine, write_result  # noqa: E402

from torchdataguard.assets import load_spamassassin  # noqa: E402
from torchdataguard.pii.detectors import IBAN_LENGTHS  # noqa: E402
from torchdataguard.pii import PIIScrubber  # noqa: E402
from torchdataguard.pii.synthetic import CARD_SCHEMES, fake_card, fake_iban  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results", "pii_vs_presidio.json")
TYPE_MAP = {"CREDIT_CARD": "credit_card", "IBAN_CODE": "iban", "EMAIL_ADDRESS": "email", "IP_ADDRESS": "ip",
            "PHONE_NUMBER": "phone", "US_SSN": "us_ssn"}


def build_presidio(only_phone: bool = False):
    """An analyzer with a blank spaCy pipeline and the regex/checksum recognisers (no model, no download)."""
    import logging

    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer, UsSsnRecognizer)

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # bundled list, no fetch
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    engine.nlp = {"en": spacy.blank("en")}
    registry = RecognizerRegistry(supported_languages=["en"])
    kinds = (PhoneRecognizer,) if only_phone else (
        CreditCardRecognizer, IbanRecognizer, EmailRecognizer, IpRecognizer, PhoneRecognizer, UsSsnRecognizer)
    for rec in kinds:
        registry.add_recognizer(rec())
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])


def presidio_spans(analyzer, text: str) -> List[Tuple[int, int, str]]:
    return [(r.start, r.end, TYPE_MAP.get(r.entity_type, r.entity_type)) for r in analyzer.analyze(text=text,
                                                                                                   language="en")]


def tdg_spans(scrubber: PIIScrubber, text: str) -> List[Tuple[int, int, str]]:
    return [(d.start, d.end, "ip" if d.entity in ("ipv4", "ipv6") else d.entity) for d in scrubber.detect(text)]


def time_round(fn: Callable[[str], object], docs: Sequence[str], min_seconds: float = 0.0) -> float:
    """Seconds per pass over ``docs`` (passes repeated until ``min_seconds`` have gone by)."""
    passes = 0
    t0 = time.perf_counter()
    while True:
        for d in docs:
            fn(d)
        passes += 1
        el = time.perf_counter() - t0
        if el >= min_seconds:
            return el / passes


def planted_docs(bodies: Sequence[str], n: int, seed: int) -> List[dict]:
    rng = random.Random(seed)
    out = []
    schemes = sorted(CARD_SCHEMES)
    countries = sorted(IBAN_LENGTHS)
    for i in range(n):
        kind = "credit_card" if i % 2 == 0 else "iban"
        valid = (i // 2) % 2 == 0
        if kind == "credit_card":
            value = fake_card(rng, rng.choice(schemes), valid=valid, fmt=rng.choice(["plain", "spaces", "dashes"]))
        else:
            value = fake_iban(rng, rng.choice(countries), valid=valid, grouped=rng.random() < 0.5)
        body = rng.choice(bodies)
        cut = body.find(" ", rng.randrange(max(1, len(body))))
        cut = len(body) if cut < 0 else cut
        lead = rng.choice(["Please pay with card ", "Card number: ", "Account (IBAN) ", "my details are ", "ref "])
        text = body[:cut] + " " + lead + value + " thanks. " + body[cut:]
        start = cut + 1 + len(lead)
        out.append({"text": text, "kind": kind, "valid": valid, "span": (start, start + len(value))})
    return out


def covered(spans: Sequence[Tuple[int, int, str]], kind: str, span: Tuple[int, int]) -> bool:
    return any(t == kind and s <= span[0] and e >= span[1] for s, e, t in spans)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", type=int, default=300, help="SpamAssassin mails timed (Presidio manages ~15/s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--planted", type=int, default=600, help="documents with a planted card or IBAN")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from importlib.metadata import version

    presidio_version = version("presidio-analyzer")
    rows = load_spamassassin()
    docs = [r["text"] for r in rows[: args.docs]]
    mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    scrubber = PIIScrubber()
    presidio = build_presidio()
    phone_only = build_presidio(only_phone=True)
    presidio_spans(presidio, "warm up mail@example.com 10.0.0.1 +1 415 555 0100")  # first-call costs
    presidio_spans(phone_only, "warm up +1 415 555 0100")
    contenders = {
        "torchdataguard": lambda t: scrubber.detect(t),
        "presidio": lambda t: presidio.analyze(text=t, language="en"),
        "presidio_phone_only": lambda t: phone_only.analyze(text=t, language="en"),
    }
    times: Dict[str, List[float]] = {k: [] for k in contenders}
    for r in range(args.repeat):
        order = list(contenders)[r % 3:] + list(contenders)[: r % 3]
        for name in order:
            times[name].append(time_round(contenders[name], docs, min_seconds=2.0 if name == "torchdataguard" else 0))
    speed = {k: len(docs) / statistics.median(v) for k, v in times.items()}
    full_t = time_round(lambda t: scrubber.detect(t), [r["text"] for r in rows])
    full_speed = len(rows) / full_t

    # detections by type on the real mails
    counts: Dict[str, Dict[str, int]] = {"torchdataguard": {}, "presidio": {}}
    for d in docs:
        for name, spans in (("torchdataguard", tdg_spans(scrubber, d)), ("presidio", presidio_spans(presidio, d))):
            for _, _, t in spans:
                counts[name][t] = counts[name].get(t, 0) + 1

    # recall and false alarms on planted checksum-validated values
    bodies = [r["text"].split("\n\n", 1)[-1][:3000] for r in rows if r["label"] == "ham"][:500]
    planted = planted_docs(bodies, args.planted, args.seed)
    recall: Dict[str, Dict[str, Dict[str, float]]] = {}
    for name, fn in (("torchdataguard", lambda t: tdg_spans(scrubber, t)), ("presidio", lambda t: presidio_spans(presidio, t))):
        res: Dict[str, Dict[str, float]] = {}
        for kind in ("credit_card", "iban"):
            good = [p for p in planted if p["kind"] == kind and p["valid"]]
            bad = [p for p in planted if p["kind"] == kind and not p["valid"]]
            found = sum(covered(fn(p["text"]), kind, p["span"]) for p in good)
            false = sum(covered(fn(p["text"]), kind, p["span"]) for p in bad)
            res[kind] = {"valid_planted": len(good), "found": found, "recall": round(found / max(1, len(good)), 4),
                         "invalid_planted": len(bad), "invalid_reported": false}
        recall[name] = res

    ratio = speed["torchdataguard"] / speed["presidio"]
    print(f"machine: {machine()['cpu']}, {os.cpu_count()} cores, one thread per contender; "
          f"presidio-analyzer {presidio_version}")
    print(f"\nspeed on {len(docs)} SpamAssassin mails ({mb:.2f} MB), median of {args.repeat} rounds")
    print(f"{'contender':<24}{'docs/s':>10}{'MB/s':>9}{'vs presidio':>13}")
    for k in contenders:
        print(f"{k:<24}{speed[k]:>10.1f}{speed[k] * mb / len(docs):>9.3f}{speed[k] / speed['presidio']:>12.1f}x")
    print(f"torchdataguard on all {len(rows)} mails: {full_speed:.0f} docs/s")
    print(f"\ndetections on those mails (ip = IPv4 + IPv6)")
    types = sorted(set(counts["torchdataguard"]) | set(counts["presidio"]))
    print(f"{'type':<14}" + "".join(f"{t:>12}" for t in types))
    for name in counts:
        print(f"{name:<14}" + "".join(f"{counts[name].get(t, 0):>12}" for t in types))
    print(f"\nplanted values ({args.planted} documents): recall on valid checksums, reports of broken ones")
    print(f"{'contender':<16}{'type':<13}{'recall':>8}{'found':>8}{'of':>6}{'broken reported':>17}")
    for name, res in recall.items():
        for kind, r in res.items():
            print(f"{name:<16}{kind:<13}{r['recall']:>8.3f}{r['found']:>8}{r['valid_planted']:>6}"
                  f"{r['invalid_reported']:>12} of {r['invalid_planted']}")
    result = {
        "machine": machine(), "presidio_analyzer": presidio_version,
        "documents": len(docs), "megabytes": round(mb, 3), "repeat": args.repeat,
        "docs_per_second": {k: round(v, 2) for k, v in speed.items()},
        "speed_ratio_vs_presidio": round(ratio, 1),
        "torchdataguard_all_mails_docs_per_second": round(full_speed, 1),
        "detections": counts, "planted": {"documents": args.planted, "seed": args.seed, "results": recall},
        "command": "python benchmarks/pii_vs_presidio.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_result(OUT, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
