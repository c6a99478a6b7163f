"""Detectors on generated values: valid checksums found, broken ones left alone, versions not addresses."""
import random

import pytest

from torchdataguard.pii.detectors import (
    ENTITY_TYPES, IBAN_LENGTHS, Detection, card_issuer_ok, find_pii, iban_valid, is_version_context, luhn_valid,
    resolve_overlaps, ssn_valid, text_shape)
from torchdataguard.pii.synthetic import (
    CARD_SCHEMES, SECRET_KINDS, fake_card, fake_email, fake_iban, fake_ipv4, fake_ipv6, fake_phone, fake_secret,
    fake_ssn, luhn_check_digit)

N = 200  # generated values per case


def found(text):
    return [(d.entity, text[d.start:d.end]) for d in find_pii(text)]


def in_context(value):
    return f"Please note: {value}, thanks."


# -- checksums -------------------------------------------------------------------------------------------
def test_luhn_against_known_numbers():
    assert luhn_valid("4111111111111111")
    assert luhn_valid("5500005555555559")
    assert luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")
    assert not luhn_valid("378282246310006")


def test_luhn_check_digit_makes_every_prefix_valid():
    rng = random.Random(1)
    for _ in range(N):
        partial = "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 18)))
        d = luhn_check_digit(partial)
        assert luhn_valid(partial + d)
        assert not luhn_valid(partial + str((int(d) + 1) % 10))


def test_iban_mod97_on_published_examples():
    for iban in ["GB82WEST12345698765432", "DE89370400440532013000", "FR1420041010050500013M02606",
                 "NL91ABNA0417164300", "BE68539007547034", "CH9300762011623852957", "NO9386011117947"]:
        assert iban_valid(iban), iban
    assert not iban_valid("GB82WEST12345698765433")  # one digit off
    assert not iban_valid("GB82WEST1234569876543")  # wrong length for GB
    assert not iban_valid("ZZ82WEST12345698765432")  # no such country


def test_ssn_rules():
    assert ssn_valid("123", "45", "6789")
    for area, group, serial in [("000", "12", "3456"), ("666", "12", "3456"), ("900", "12", "3456"),
                                ("123", "00", "3456"), ("123", "45", "0000")]:
        assert not ssn_valid(area, group, serial)


def test_card_issuer_prefixes():
    assert card_issuer_ok("4" + "1" * 15)
    assert card_issuer_ok("34" + "1" * 13)
    assert not card_issuer_ok("34" + "1" * 14)  # Amex has 15 digits
    assert not card_issuer_ok("1" * 16)
    assert not card_issuer_ok("9" * 16)


# -- generated values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", sorted(CARD_SCHEMES))
@pytest.mark.parametrize("fmt", ["plain", "spaces", "dashes"])
def test_cards_valid_found_invalid_left_alone(scheme, fmt):
    rng = random.Random(hash((scheme, fmt)) & 0xFFFF)
    for _ in range(N // 4):
        good = fake_card(rng, scheme, fmt=fmt)
        assert found(in_context(good)) == [("credit_card", good)]
        bad = fake_card(rng, scheme, valid=False, fmt=fmt)
        assert not any(e == "credit_card" for e, _ in found(in_context(bad))), bad


@pytest.mark.parametrize("grouped", [False, True])
def test_ibans_of_every_country(grouped):
    rng = random.Random(7)
    for country in sorted(IBAN_LENGTHS):
        for _ in range(3):
            good = fake_iban(rng, country, grouped=grouped)
            assert found(in_context(good)) == [("iban", good)], country
            bad = fake_iban(rng, country, valid=False, grouped=grouped)
            assert not iban_valid(bad.replace(" ", ""))
            assert not any(e == "iban" for e, _ in found(in_context(bad))), bad


def test_two_ibans_in_a_row_and_a_word_after():
    rng = random.Random(3)
    a, b = fake_iban(rng, "DE"), fake_iban(rng, "GB")
    text = f"pay {a} {b} NOW"
    assert found(text) == [("iban", a), ("iban", b)]


@pytest.mark.parametrize("sep", ["-", " "])
def test_ssn_valid_found_invalid_left_alone(sep):
    rng = random.Random(11)
    for _ in range(N):
        good = fake_ssn(rng, sep=sep)
        assert found(in_context(good)) == [("us_ssn", good)]
        bad = fake_ssn(rng, valid=False, sep=sep)
        assert not any(e == "us_ssn" for e, _ in found(in_context(bad))), bad


def test_ssn_not_inside_longer_numbers():
    assert found("ref 1123-45-6789 and 123-45-67890 and 123-45-6789-1") == []


def test_emails_phones_addresses_and_secrets():
    rng = random.Random(5)
    for _ in range(N):
        for ent, value in [("email", fake_email(rng)), ("phone", fake_phone(rng)), ("ipv4", fake_ipv4(rng)),
                           ("ipv6", fake_ipv6(rng, compressed=rng.random() < 0.5)),
                           ("secret", fake_secret(rng, rng.choice(SECRET_KINDS)))]:
            assert found(in_context(value)) == [(ent, value)], value


@pytest.mark.parametrize("text,expected", [
    ("Call +1 (415) 555-0100 now", [("phone", "+1 (415) 555-0100")]),
    ("Call +44 20 7946 0958.", [("phone", "+44 20 7946 0958")]),
    ("Ruf an: +49 (0)30 1234567", [("phone", "+49 (0)30 1234567")]),
    ("Appelez le +33 6 12 34 56 78", [("phone", "+33 6 12 34 56 78")]),
    ("compact +12025550143 too", [("phone", "+12025550143")]),
    ("US (212) 555-0123 and 212.555.0123 and 1-800-555-0199", [
        ("phone", "(212) 555-0123"), ("phone", "212.555.0123"), ("phone", "1-800-555-0199")]),
    ("Tel: 020 7946 0958", [("phone", "020 7946 0958")]),
    ("Fax. (030) 1234 5678", [("phone", "(030) 1234 5678")]),
    # one block after the area code (German, British, Irish numbers), and phone words of other languages
    ("Tel.: 030 1234567", [("phone", "030 1234567")]),
    ("Telefon 030/1234567", [("phone", "030/1234567")]),
    ("Handy: 0171 1234567", [("phone", "0171 1234567")]),
    ("Telephone: 01702 530174", [("phone", "01702 530174")]),
    ("mobile: 07700 900123 (day)", [("phone", "07700 900123")]),
    ("WhatsApp: 07700900123", [("phone", "07700900123")]),
    ("Tél. : 01 23 45 67 89", [("phone", "01 23 45 67 89")]),
    ("Teléfono: 0912 345 678", [("phone", "0912 345 678")]),
    ("Telefone: (011) 91234-5678", [("phone", "(011) 91234-5678")]),
    ("Rufnummer 030 1234567", [("phone", "030 1234567")]),
    ("Tlf.: 022 12 34 56", [("phone", "022 12 34 56")]),
    ("Tel. 0049 30 1234567", [("phone", "0049 30 1234567")]),
    ("Fax: 0086-519-5209776", [("phone", "0086-519-5209776")]),
    # too many digits: the groups after the number are cut off, one at a time, as before groups of 5-8 digits counted
    ("Fax 03838923525 24 hours", [("phone", "03838923525")]),
    ("Call 08 2564 8910 02703 08157.", [("phone", "08 2564 8910")]),
    ("Telephone: 011-507 226-2675", [("phone", "011-507 226-2675")]),  # 011: the international prefix from the US
    # Japanese and traditional Chinese words (glued to the number or after a full-width colon), Arabic, Hebrew, Hindi
    ("電話番号：090-1234-5678", [("phone", "090-1234-5678")]),
    ("お問い合わせ TEL：03-1234-5678", [("phone", "03-1234-5678")]),
    ("携帯電話03-1234-5678", [("phone", "03-1234-5678")]),
    ("聯絡電話 (02) 2345-6789", [("phone", "(02) 2345-6789")]),
    ("الهاتف: 0501234567", [("phone", "0501234567")]),
    ("טלפון: 03-1234567", [("phone", "03-1234567")]),
    ("फ़ोन: 098765 43210", [("phone", "098765 43210")]),
    # thirteenth session: Russian and Ukrainian phone words, the Russian trunk 8, 8-digit numbers (Hong Kong, Singapore)
    ("тел. 8 (495) 123-45-67, офис 5", [("phone", "8 (495) 123-45-67")]),
    ("Телефон: 8-800-555-35-35", [("phone", "8-800-555-35-35")]),
    ("моб. 8 912 345 67 89", [("phone", "8 912 345 67 89")]),
    ("тел.: 044 123 45 67", [("phone", "044 123 45 67")]),
    ("Phone: 8 (495) 123-45-67", [("phone", "8 (495) 123-45-67")]),
    ("Mobile: 96687523\nE-mail", [("phone", "96687523")]),  # SpamAssassin, a Hong Kong letterhead
    ("Tel: 2345 6789", [("phone", "2345 6789")]),
    ("電話：2345-6789", [("phone", "2345-6789")]),
    # review: inflected Russian phone words, the trunk 8 glued to the number
    ("по телефону 8 (495) 123-45-67", [("phone", "8 (495) 123-45-67")]),
    ("контактный телефон: 89161234567", [("phone", "89161234567")]),
])
def test_phone_formats(text, expected):
    assert found(text) == expected


def test_each_phone_word_finds_its_number_once():
    from torchdataguard.pii.detectors.finders_phone import _PHONE_WORD_FORMS, find_phone
    from torchdataguard.pii.detectors.shape import text_shape

    for form in _PHONE_WORD_FORMS:
        for word in (form, form.title(), form.upper()):
            text = f"x {word}.: 030 1234567 y"
            assert find_phone(text, text_shape(text)) == [(len(text) - 13, len(text) - 2)], text


@pytest.mark.parametrize("before", ["İstanbul office. ", "İİİİ ", "KİTAP: ", "ﬁle ß İ "])
def test_phone_after_a_word_when_lower_casing_changes_the_length(before):
    # "İ".lower() is two characters, so the lower-cased text's positions ran ahead of the text's: the number
    # after the phone word was looked for in the wrong place and missed
    assert len(before.lower()) != len(before)
    assert found(before + "Phone: 020 7946 0958 ok") == [("phone", "020 7946 0958")]
    assert found(before + "call (030) 1234 5678") == [("phone", "(030) 1234 5678")]


@pytest.mark.parametrize("text", [
    "Date: Thu, 22 Aug 2002 12:36:23 +0100 (IST)",  # time zone offset
    "order 020 7946 0958 shipped",  # national number without a phone word: too ambiguous
    "on 01-02-2003 12 people came",  # a date
    "area 123-555-0100 is not a US area code",  # area codes do not start with 0 or 1
    "version 555.123.4567.1",
    "+123",
    "a handy 0.5 mm tool",  # a phone word, but no number after it
    "call 0800 123 now",  # too few digits
    "fon 0123456789012345",  # too many
    "Handy 030 1234567-2",  # a longer code
    "hotel: 2345 6789",  # "tel" inside a word
    "Tel: 1234 5678",  # 8 digits starting with 1
    "ph: 2019-2020",  # years
    "Order no: 8 (495) 123-45-67",  # no phone word
    "Fax 20231231", "call 20240115 build",  # dates written as 8 digits
])
def test_phone_lookalikes_left_alone(text):
    assert [e for e, _ in found(text)] == []


# -- IPv4 versus version strings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "dpkg (1.2.3.4) unstable; urgency=low",
    "libxfixes (1:3.0.1.2-5) UNRELEASED; urgency=low",
    "Bump Standards-Version to 3.9.8.0.",
    "Standards-Version updated to 4.6.0.1",
    "New upstream version 2.1.8.2",
    "upgrade foo-1.2.3.4 and bar/2.0.4.1 and baz==1.0.0.1",
    "Depends: libc6 (>= 2.3.6.1)",
    "package 1.2.3.4-1ubuntu2 and 2.0.0.1~rc1 and 4.0.0.1+dfsg",
    "v1.2.3.4 and ver. 1.2.3.5 and rev 1.1.2.1",
    "download foo-1.2.3.4.tar.gz",
])
def test_version_strings_left_alone(text):
    assert [e for e, _ in found(text)] == []


@pytest.mark.parametrize("text,ip", [
    ("Received: from localhost (127.0.0.1) by mail", "127.0.0.1"),
    ("from mail.example.com (mail.example.com [66.187.233.211])", "66.187.233.211"),
    ("Received: from dialup-65.57.29.85.Dial1.KansasCity1.Level3.net", "65.57.29.85"),
    ("see http://10.1.2.3/index.html", "10.1.2.3"),
    ("server 192.168.1.20.", "192.168.1.20"),
    ("range 10.0.0.1-10.0.0.255", "10.0.0.1"),
    ("smtp.example.net (209.228.33.241) with SMTP; 17 Sep", "209.228.33.241"),
])
def test_addresses_are_addresses(text, ip):
    assert ("ipv4", ip) in found(text)


@pytest.mark.parametrize("text", ["999.1.1.1", "1.2.3", "01.02.03.04", "1.2.3.4.5", "a1.2.3.4", "1.2.3.4a"])
def test_ipv4_shapes_that_are_not_addresses(text):
    assert [e for e, _ in found(text)] == []


def test_is_version_context_direct():
    t = "from localhost (127.0.0.1) by mail"
    assert not is_version_context(t, 16, 25)
    t = "pkg (1.2.3.4) unstable; urgency=medium"
    assert is_version_context(t, 5, 12)


@pytest.mark.parametrize("text", [
    "time 12:30:45 and 08:00", "std::vector<int> x", "a[1::2]", "MAC 00:1A:2B:3C:4D:5E", "::", "::1",
    "abc::def",
])
def test_ipv6_lookalikes_left_alone(text):
    assert [e for e, _ in found(text)] == []


def test_ipv6_forms():
    for v in ["2001:db8:85a3::8a2e:370:7334", "fe80::1ff:fe23:4567:890a", "2001:0db8:0000:0000:0000:ff00:0042:8329",
              "::ffff:192.0.2.128"]:
        assert found(f"addr {v} end") == [("ipv6", v)], v
    assert found("http://[2001:db8::1]/") == [("ipv6", "2001:db8::1")]


# -- secrets ----------------------------------------------------------------------------------------------------
def test_private_key_block_and_aws_secret():
    rng = random.Random(2)
    block = fake_secret(rng, "private_key")
    text = f"config:\n{block}\nmore text"
    assert found(text) == [("secret", block)]
    truncated = block.split("-----END")[0]
    assert found(f"pasted: {truncated}")[0][0] == "secret"
    sec = "".join(rng.choice("ABCDEFGHIJabcdefghij0123456789/+") for _ in range(40))
    text = f'aws_secret_access_key = "{sec}"'
    assert found(text) == [("secret", sec)]
    assert found(f"my_secret_key = {sec}") == []  # 40 characters alone are not enough without "aws"


def test_pypi_token_found_where_it_starts_a_word():
    # the prefix is 20 characters: the boundary look-behind must reach the character before it (it looked at the
    # prefix's own "p" and never matched until 2026-12)
    token = "pypi-AgEIcHlwaS5vcmc" + "CJGNhNzE2ZWM2LTM0YzYtNGQ5Yi1hNjk0LWU3ZTY1Yjg2Y2E5MgACKlsz"
    assert found(f"TWINE_PASSWORD={token}") == [("secret", token)]
    assert found(token) == [("secret", token)]
    assert found(f"upload with {token} now") == [("secret", token)]
    assert found(f"x{token}") == []  # glued to a word: not a token start
    assert found("pypi-AgEIcHlwaS5vcmc" + "short") == []  # too short to be a token


def test_secret_lookalikes_left_alone():
    assert found("the ghp_short token and sk-learn and hf_ and AKIA alone") == []


# -- mechanics --------------------------------------------------------------------------------------------------
def test_text_shape_keeps_positions():
    text = "Grüße an Jörg: 030 1234-5678 ✓"
    shape = text_shape(text)
    assert len(shape) == len(text)
    assert shape == "Aaaaa aa Aaaa: 000 0000-0000 ?"


def test_non_ascii_neighbours_block_matches():
    assert found("ü4111111111111111") == []  # a letter right before the digits: part of a word
    assert found("… 4111111111111111") == [("credit_card", "4111111111111111")]


def test_resolve_overlaps_priority_then_length():
    d = resolve_overlaps([Detection(0, 10, "phone"), Detection(5, 20, "ipv4"), Detection(12, 14, "email"),
                          Detection(30, 35, "phone")])
    # email wins over the address it overlaps; the phone before it does not overlap the email
    assert d == [Detection(0, 10, "phone"), Detection(12, 14, "email"), Detection(30, 35, "phone")]
    d = resolve_overlaps([Detection(0, 4, "phone"), Detection(2, 9, "phone")])
    assert d == [Detection(2, 9, "phone")]


def test_entity_filter_and_empty_text():
    text = "bob@example.com 10.0.0.1"
    assert [d.entity for d in find_pii(text, ["ipv4"])] == ["ipv4"]
    assert find_pii("") == []
    assert set(ENTITY_TYPES) >= {"email", "phone", "ipv4", "ipv6", "credit_card", "iban", "us_ssn", "secret"}


@pytest.mark.parametrize("text", [
    "-----BEGIN RSA PRIVATE KEY-----!" * 6000,  # BEGIN lines with no END: no quadratic rescans
    ":" * 200_000,
    "ab:" * 70_000,
    "1" * 200_000,
    "a@" * 100_000,
    "1.1." * 50_000,
])
def test_adversarial_inputs_stay_linear(text):
    import time

    t = time.perf_counter()
    find_pii(text)
    assert time.perf_counter() - t < 3.0  # about 0.03 s here; generous for a busy machine


def test_key_blocks_nested_and_truncated():
    block = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----BEGIN PRIVATE KEY-----\nBBBB\n-----END PRIVATE KEY-----"
    assert found(f"x {block} y") == [("secret", block)]
    assert found("k: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n\n") == [
        ("secret", "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE")]


# -- issue 19 item 3: e-mail addresses glued to separator lines -----------------------------------------------
@pytest.mark.parametrize("text,address", [
    ("walter@profits2you.com-----------------------------------------------------CashPO", "walter@profits2you.com"),
    ("name@post.com______________________", "name@post.com"), ("name@post.com====", "name@post.com"),
    ("name@post.com....", "name@post.com"), ("write to name@post.com.", "name@post.com"),
    ("name@post.co.uk--\nnext", "name@post.co.uk"), ("a@b.xn--p1ai____", "a@b.xn--p1ai"),
])
def test_email_before_a_separator_run(text, address):
    assert found(text) == [("email", address)]


def test_email_domain_labels_with_hyphens_still_whole():
    assert found("x a@my--host.example.com y") == [("email", "a@my--host.example.com")]
    assert found("a@xn--bcher-kva.de") == [("email", "a@xn--bcher-kva.de")]


@pytest.mark.parametrize("sep", [" ", "-"])
def test_19_digit_cards_in_groups_of_four(sep):
    rng = random.Random(19)
    for prefix in ["4", "62", "6759"]:  # Visa, UnionPay, Maestro: 19 digits allowed
        for _ in range(30):
            body = prefix + "".join(rng.choice("0123456789") for _ in range(18 - len(prefix)))
            num = body + luhn_check_digit(body)
            grouped = sep.join(num[i:i + 4] for i in range(0, 19, 4))
            assert found(f"card {grouped} end") == [("credit_card", grouped)]
            bad = grouped[:-1] + str((int(grouped[-1]) + 1) % 10)
            assert ("credit_card", bad) not in found(f"card {bad} end")
    # a 16-digit card followed by another group of digits is still the 16-digit card
    assert found("card 4111 1111 1111 1111 123 cvv") == [("credit_card", "4111 1111 1111 1111")]
