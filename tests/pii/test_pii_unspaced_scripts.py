"""Values glued to Thai, Lao, Khmer or Myanmar text (written without spaces between words) end where that script
starts, as they do next to Han. Until 2026-12-07 only Han, kana and Hangul were such boundaries: in
``ติดต่อsomchai@example.co.thได้เลย`` the address took the last letter of ``ติดต่อ`` and the ``ได`` of ``ได้``, and
redaction left ``ติดต่<EMAIL>้เลย`` (letters cut out of two words, a tone mark on nothing); a number glued to a
letter of these scripts was part of a word and was not found. Chinese context checks are unchanged: Thai text
near an 11-digit number does not make it a mainland mobile."""
import pytest

import torchdataguard as tdg
from torchdataguard.pii import find_pii


@pytest.mark.parametrize("before, value, after", [
    ("ติดต่อ", "somchai@example.co.th", "ได้เลย"),  # Thai
    ("ส่งอีเมลมาที่", "support@example.com", "หรือโทรมา"),
    ("ຕິດຕໍ່", "info@example.la", "ໄດ້"),  # Lao
    ("ទាក់ទង", "info@example.com.kh", "បាន"),  # Khmer
    ("ဆက်သွယ်ရန်", "info@example.mm", "သို့"),  # Myanmar
])
def test_an_address_glued_to_unspaced_script_keeps_the_words_around_it(before, value, after):
    text = before + value + after
    assert [(d.entity, text[d.start:d.end]) for d in find_pii(text)] == [("email", value)]
    assert tdg.PIIScrubber().scrub(text) == before + "<EMAIL>" + after


@pytest.mark.parametrize("text, entity, value", [
    ("ที่อยู่IPคือ192.168.1.1ครับ", "ipv4", "192.168.1.1"),
    ("บัตรเลขที่4111111111111111หมดอายุ", "credit_card", "4111111111111111"),
    ("โทรศัพท์0812345678ได้ตลอด", "phone", "0812345678"),
])
def test_a_number_glued_to_thai_is_found(text, entity, value):
    assert (entity, value) in [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    assert value not in tdg.PIIScrubber().scrub(text)


def test_thai_text_is_not_chinese_context():
    # a plain 11-digit number counts as a mainland mobile only near Chinese text or after a phone word
    for text in ["รหัสสินค้า 13812345678 ในคลัง", "13812345678"]:
        assert [d for d in find_pii(text) if d.entity == "phone"] == []


@pytest.mark.parametrize("before, value, after", [
    ("संपर्क: ", "राम@example.in", " पर लिखें"),  # Devanagari: a vowel sign inside the local part
    ("ইমেইল: ", "রহিম@example.com.bd", " দিন"),  # Bengali
    ("அஞ்சல்: ", "குமார்@example.com", " இல்"),  # Tamil: the local part ends in a virama
    ("ایمیل: ", "عَلی@example.ir", " است"),  # Persian with a haraka
])
def test_a_local_part_with_combining_marks_is_found_whole(before, value, after):
    # until 2026-12-07 a combining mark ended the local part: राम@ was found as म@ (रा left in the text,
    # "रा<EMAIL>"), and குமார்@, which ends in a virama, not at all
    text = before + value + after
    assert [(d.entity, text[d.start:d.end]) for d in find_pii(text)] == [("email", value)]
    assert tdg.PIIScrubber().scrub(text) == before + "<EMAIL>" + after


@pytest.mark.parametrize("before, value, after", [
    ("संपर्क: ", "info@उदाहरण.भारत", " पर लिखें"),  # Devanagari: vowel signs in the label and the top level
    ("संपर्क: ", "राम@उदाहरण.भारत", " पर"),
    ("ติดต่อ ", "info@ตัวอย่าง.ไทย", " ได้"),  # Thai: tone marks and vowel signs in the label
    ("அஞ்சல்: ", "info@இந்தியா.இந்தியா", " இல்"),  # Tamil: viramas
    ("mail ", "a@example.இந்தியா", " now"),  # found as a@example.இந before
    ("ইমেইল: ", "info@উদাহরণ.ভারত", " দিন"),  # Bengali
])
def test_a_domain_with_combining_marks_is_found_whole(before, value, after):
    # until 2026-12-07 a combining mark ended a domain label: info@उदाहरण.भारत was not found at all
    text = before + value + after
    assert [(d.entity, text[d.start:d.end]) for d in find_pii(text)] == [("email", value)]
    assert tdg.PIIScrubber().scrub(text) == before + "<EMAIL>" + after


def test_a_mark_does_not_start_a_label_and_a_decomposed_accent_is_part_of_it():
    assert [d for d in find_pii("a@\u093e\u0915.in") if d.entity == "email"] == []  # a label starts with a letter
    text = "mail jose@cafe\u0301.fr now"  # NFD: é as e and U+0301
    assert [text[d.start:d.end] for d in find_pii(text)] == ["jose@cafe\u0301.fr"]


@pytest.mark.parametrize("text", ["เวอร์ชัน1.2.3.4ออกแล้ว", "เวอร์ชั่น 10.2.0.1 ออกแล้ว", "อัปเดตเป็นเวอร์ชัน: 4.19.0.1",
                                  "バージョン1.2.3.4をリリース"])
def test_a_version_after_the_thai_or_japanese_word_for_version_is_not_an_address(text):
    """Since numbers glued to Thai are candidates (the fix above), "version 1.2.3.4" in Thai was redacted as an
    IPv4 address; Chinese 版本 and English "version" were already left alone."""
    assert [d for d in find_pii(text) if d.entity == "ipv4"] == []


def test_an_address_glued_to_thai_is_still_found():
    text = "ไอพี192.168.1.20ครับ"
    assert [(d.entity, text[d.start:d.end]) for d in find_pii(text)] == [("ipv4", "192.168.1.20")]


@pytest.mark.parametrize("before", ["✉\ufe0f", "📧\ufe0f ", "«\u0301"])
def test_a_mark_with_no_letter_before_it_is_not_part_of_the_local_part(before):
    """The fix above let a local part take any combining mark: an emoji's variation selector (✉️jane@...) became
    part of the address, which then got another pseudonym than the same address written elsewhere."""
    text = before + "jane@example.com wrote"
    assert [(d.entity, text[d.start:d.end]) for d in find_pii(text)] == [("email", "jane@example.com")]
    assert tdg.PIIScrubber().scrub(text) == before + "<EMAIL> wrote"
