"""Phone numbers after the phone words of Persian, Urdu, Vietnamese, Indonesian, Bengali, Tamil, Armenian and
Georgian. Until 2026-12-07 they passed unscrubbed: the Arabic words were listed but Persian spells "mobile" with
its own yeh (موبایل, not موبايل) and says تلفن, and the other languages had no phone word at all. Numbers in the
languages' own digits (۰۹۱۲, ০১৭১২) are read as ASCII digits, as before."""
import pytest

import torchdataguard as tdg
from torchdataguard.pii import find_pii


@pytest.mark.parametrize("before, number, after", [
    ("شماره تلفن: ", "۰۹۱۲ ۳۴۵ ۶۷۸۹", " است."),  # Persian, Persian digits
    ("تلفن همراه: ", "0912 345 6789", ""),
    ("برای هماهنگی با موبایل ", "09123456789", " تماس بگیرید"),
    ("شماره تماس: ", "021-88776655", ""),
    ("مزید معلومات کے لیے فون: ", "0300 1234567", " پر رابطہ کریں"),  # Urdu
    ("Điện thoại: ", "0912 345 678", " (giờ hành chính)"),  # Vietnamese
    ("Liên hệ qua SĐT ", "0912345678", " nhé"),
    ("Hubungi kami di telp. ", "021 5551234", " atau email."),  # Indonesian
    ("ফোন: ", "০১৭১২ ৩৪৫৬৭৮", " নম্বরে যোগাযোগ করুন"),  # Bengali, Bengali digits
    ("மேலும் தகவலுக்கு தொலைபேசி: ", "044 2345 6789", " அழைக்கவும்"),  # Tamil
    ("கைபேசி ", "098765 43210", ""),
    ("Հեռախոս: ", "010 123456", ""),  # Armenian
    ("ტელეფონი: ", "032 212 3456", ""),  # Georgian
])
def test_a_number_after_the_phone_word_is_found_and_the_text_around_it_kept(before, number, after):
    text = before + number + after
    assert ("phone", number) in [(d.entity, text[d.start:d.end]) for d in find_pii(text)]
    assert tdg.PIIScrubber().scrub(text) == before + "<PHONE>" + after


@pytest.mark.parametrize("text", [
    "نسخه 0.12 از تلفن‌های همراه پشتیبانی می‌کند",  # a version, no number after the word
    "Điện thoại 2 SIM, giá 0 đồng",  # a price, not a number
    "telepon 0",
    "தொலைபேசிகள் 2010 முதல்",  # "telephones since 2010"
    "ফোনের দাম ১০০ টাকা",  # "the phone's price is 100 taka"
])
def test_words_without_a_phone_number_after_them_are_left_alone(text):
    assert [d for d in find_pii(text) if d.entity == "phone"] == []
