"""Numbers written in other digits (Arabic-Indic, Devanagari, full-width ...) are found like ASCII ones."""
import pytest

import torchdataguard as tdg
from torchdataguard.pii import find_pii

def in_digits(text, zero):
    """``text`` with its ASCII digits written from the digit ``zero`` on (``"٠"``, ``"०"``, ``"０"``)."""
    return text.translate({ord("0") + d: ord(zero) + d for d in range(10)})


@pytest.mark.parametrize("zero", ["\u0660", "\u06f0", "\u0966", "\u0e50", "\uff10"])  # Arabic-Indic, Persian, Devanagari, Thai, full-width
@pytest.mark.parametrize("text, entity", [("بطاقة 4111 1111 1111 1111 شكرا", "credit_card"),
                                          ("कार्ड 4111-1111-1111-1111 है", "credit_card"),
                                          ("call +1 (415) 555-0132 now", "phone"),
                                          ("SSN 536-22-1234 on file", "us_ssn")])
def test_numbers_in_other_digits_are_found_with_their_extent(zero, text, entity):
    ascii_dets = [(d.entity, d.start, d.end) for d in find_pii(text)]
    assert (entity in [e for e, _, _ in ascii_dets])
    other = in_digits(text, zero)
    # before: nothing found (the detectors read ASCII digits only), so the number reached training unscrubbed
    assert [(d.entity, d.start, d.end) for d in find_pii(other)] == ascii_dets
    scrubbed = tdg.PIIScrubber().scrub(other)
    _, start, end = next(d for d in ascii_dets if d[0] == entity)
    assert other[start:end] not in scrubbed and f"<{entity.upper()}>" in scrubbed


def test_full_width_separators_between_other_digits():
    text = "卡号４１１１　１１１１　１１１１　１１１１已冻结"
    dets = find_pii(text)
    assert [(d.entity, text[d.start:d.end]) for d in dets] == [("credit_card", "４１１１　１１１１　１１１１　１１１１")]


def test_ascii_text_and_digitless_text_are_unchanged():
    for text in ["no numbers here at all", "日本語のテキスト", "card 4111 1111 1111 1112 fails Luhn",
                 "٤١١١ ١١١١ ١١١١ ١١١٢ fails Luhn too"]:
        assert find_pii(text) == []


def test_a_number_in_other_digits_gets_the_ascii_spelling_pseudonym():
    s = tdg.PIIScrubber(actions="pseudonymize", key="k" * 32)
    ascii_card = s.scrub("card 4111 1111 1111 1111")
    assert ascii_card.startswith("card <CREDIT_CARD_")
    assert s.scrub(in_digits("card 4111 1111 1111 1111", "\u0660")) == ascii_card
