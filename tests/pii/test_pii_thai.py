"""Thai phone numbers after a Thai phone word (โทร, โทรศัพท์, มือถือ, แฟกซ์; written without spaces too) were
passed unscrubbed until 2026-12-07: the phone words were English, European, Arabic, Hebrew, Hindi, Japanese and
Chinese ones only. Thai text without a number after such a word is left alone (โทรทัศน์ is "television")."""
import json
from pathlib import Path

import pytest

import torchdataguard as tdg
from torchdataguard.pii import find_pii

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "th"


@pytest.mark.parametrize("text, number", [("ติดต่อ somchai@example.co.th โทร 081-234-5678", "081-234-5678"),
                                          ("โทร.02-123-4567 ต่อ 12", "02-123-4567"),
                                          ("โทรศัพท์: 02 123 4567", "02 123 4567"),
                                          ("มือถือ 0812345678 ครับ", "0812345678"),
                                          ("แฟกซ์ 02-123-4568", "02-123-4568"),
                                          ("สอบถามโทร๐๘๑-๒๓๔-๕๖๗๘", "๐๘๑-๒๓๔-๕๖๗๘")])  # Thai digits
def test_a_number_after_a_thai_phone_word_is_found(text, number):
    assert ("phone", number) in [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    assert number not in tdg.PIIScrubber().scrub(text)


def test_thai_text_without_such_numbers_is_left_alone():
    texts = ["ดูโทรทัศน์ 0 ชั่วโมง", "รุ่น 2.0 โทร 0"]
    for name in ("short.jsonl", "long.jsonl"):
        for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts.extend(row.get("texts", [])) if "texts" in row else texts.append(row["text"])
    assert len(texts) > 1000
    assert [t for t in texts if any(d.entity == "phone" for d in find_pii(t))] == []
