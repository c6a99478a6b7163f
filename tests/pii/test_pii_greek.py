"""Greek phone numbers (10 digits, no trunk 0: landlines start with 2, mobiles with 69) after a Greek phone word,
or after tel/phone/fax near Greek text. Until 2026-12-07 they passed unscrubbed: the national patterns look for a
trunk 0 after a phone word."""
import pytest

import torchdataguard as tdg
from torchdataguard.pii import find_pii


@pytest.mark.parametrize("before, value, after", [
    ("Τηλέφωνο: ", "210 1234567", ""),
    ("τηλ. ", "2101234567", " (πρωί)"),
    ("κιν. ", "6912345678", ""),
    ("ΤΗΛ.: ", "210-1234567", ", ΦΑΞ: "),
    ("Τηλ/νο: ", "2810 123 456", " Ηράκλειο"),
    ("κινητό:", "697 123 4567", "."),
    ("Τηλ.: ", "(+30) 210 1234567", ""),
    ("τηλ. ", "0030 6912345678", ""),
    ("Tel.: ", "2310 123456", " Θεσσαλονίκη"),  # a Latin phone word in Greek text
    ("τηλ. ", "210 1234567", " 24 ώρες"),  # the hours are not part of the number
])
def test_greek_numbers_after_a_phone_word_are_scrubbed(before, value, after):
    text = before + value + after
    assert ("phone", value) in [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    assert tdg.PIIScrubber().scrub(text) == before + "<PHONE>" + after


@pytest.mark.parametrize("text", [
    "αρ. παραγγελίας 2101234567",  # no phone word
    "ΑΦΜ 2101234567",
    "τηλ. 6812345678",  # neither 2 nor 69
    "τηλ. 21012345678",  # 11 digits
    "τηλ. 210 123456",  # 9 digits
    "κινητήρας 2101234567",  # a word that starts like κιν
    "Tel. 2101234567 Berlin",  # a Latin word without Greek text near
    "τηλ. +44 2101234567",  # not the Greek country code: the international pattern's
])
def test_other_ten_digit_numbers_are_left_alone(text):
    from torchdataguard.pii.detectors.finders_el import find_greek_phone
    from torchdataguard.pii.detectors.shape import text_shape
    assert find_greek_phone(text, text_shape(text)) == []
