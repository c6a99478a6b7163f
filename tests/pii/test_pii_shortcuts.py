"""The PII detectors' shortcuts of session 8 give exactly what their plain definitions give: secret patterns
run only when their anchor occurs, phone-word patterns only when a phone word can end before a number, each
finder only when the text holds as many ASCII digits as its shortest match, grouped card patterns only
after two groups of four digits, and the IPv4 pattern that scans for ".0"."""
from __future__ import annotations

import random
import re
from typing import List, Tuple

import pytest

from torchdataguard.assets import load_spamassassin
from torchdataguard.pii import synthetic
from torchdataguard.pii.detectors import detect, finders, finders_phone, secrets
from torchdataguard.pii.detectors.checksums import card_issuer_ok, luhn_valid
from torchdataguard.pii.detectors.shape import text_shape

ANCHORS = ["ghp_", "gho_", "hf_", "npm_", "github_pat_", "sk_live_", "rk_test_", "sk-", "sk-proj-", "glpat-",
           "pypi-AgEIcHlwaS5vcmc", "xoxb-", "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----",
           "AKIA", "ASIA", "AIza", "eyJ", ".eyJ", "https://hooks.slack.com/services/", "aws_secret_access_key = ",
           "AWS_SECRET_ACCESS_KEY=", "secret", "SECRET", "_", "-", "A"]
PHONE = ["tel", "Tel.", "telephone:", "TELEFON", "Handy", "tél.", "Rufnummer", "WhatsApp", "ph", "Phone #", "fax",
         "FAX:", "mob", "mobile", "cell", "call",
         "Call", " ", "\n", ":", "#", ".", "(", "0", "020", "7946", "0958", "(0)", "2002", "x", "\u3000", "İ", "ß",
         "852", "(852)", "8", "23456789", "\tcall   ", "  4011a6:\t", " <puts@plt>"]
GLUE = ["", " ", "\n", ".", ",", "-", ":", "/", "@", "(", ")", "x", "0", "_", "=", "1", "12", "a", "Z", "电话", "卡号"]


def _values(rng: random.Random) -> List[str]:
    return [synthetic.fake_email(rng), synthetic.fake_phone(rng), synthetic.fake_ipv4(rng), synthetic.fake_ipv6(rng),
            synthetic.fake_card(rng, rng.choice(list(synthetic.CARD_SCHEMES)), fmt=rng.choice(["plain", "spaces",
                                                                                               "dashes"])),
            synthetic.fake_iban(rng, rng.choice(["DE", "GB", "NO", "BE"])), synthetic.fake_ssn(rng),
            synthetic.fake_secret(rng, rng.choice(synthetic.SECRET_KINDS)), synthetic.fake_cn_mobile(rng),
            synthetic.fake_cn_id(rng), synthetic.fake_hk_id(rng), synthetic.fake_passport(rng),
            "4222222222222", "1.2.3.4", "536-22-1234", "536 22 1234", "555-0100", "(555) 010-0123", "+44 20 7946 0958"]


def pii_texts(n: int, seed: int):
    """Random texts of personal data, anchors, phone words and glue, often cut short (few digits)."""
    rng = random.Random(seed)
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 8)):
            pool = rng.choice([_values(rng), ANCHORS, PHONE, GLUE])
            parts.append(rng.choice(pool))
        text = "".join(parts)
        if rng.random() < 0.5:
            a = rng.randrange(len(text) + 1)
            text = text[a:a + rng.randint(0, 40)]
        yield text


@pytest.fixture(scope="module")
def corpus():
    bodies = [r["text"].split("\n\n", 1)[-1] for r in load_spamassassin()[:800]]
    return bodies + list(pii_texts(12000, seed=0))


# -- secrets ---------------------------------------------------------------------------------------------
def find_secret_plain(text: str) -> List[Tuple[int, int]]:
    """find_secret as first written: one gate, then every pattern."""
    if secrets._SECRET_GATE.search(text) is None and not any(lit in text for lit in secrets._SECRET_LITERALS):
        return []
    saved = secrets.secret_anchors
    try:
        secrets.secret_anchors = lambda t: (True,) * 7
        return secrets.find_secret(text, "")
    finally:
        secrets.secret_anchors = saved


def test_secret_patterns_need_their_anchor(corpus):
    found = 0
    for text in corpus:
        expected = find_secret_plain(text)
        found += bool(expected)
        assert secrets.find_secret(text, "") == expected, repr(text)
        assert secrets.secret_gate(text) == bool(secrets._SECRET_GATE.search(text)
                                                 or any(lit in text for lit in secrets._SECRET_LITERALS))
    assert found > 300


OTHER_SECRETS = [
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sk-proj-abcdefghijklmnopqrstuvwxyz012345", "xoxb-1234567890-abcdefghij",
    "AIza" + "B" * 35, "sk_live_" + "a1" * 12, "pypi-AgEIcHlwaS5vcmc" + "Ab1_-" * 11]


def test_each_secret_kind_is_found_through_its_anchor():
    rng = random.Random(1)
    values = [synthetic.fake_secret(rng, kind) for kind in synthetic.SECRET_KINDS for _ in range(20)]
    for value in values + OTHER_SECRETS:
        text = f"key: {value} end"
        assert secrets.find_secret(text, "") == find_secret_plain(text) != [], value


# -- phone words -----------------------------------------------------------------------------------------
def same_length_lower(text):
    """``text.lower()``, but a letter whose lower case is longer ("İ") stays as it is: positions stay aligned."""
    return "".join(low if len(low := ch.lower()) == 1 else ch for ch in text)


def test_phone_word_gate_lets_through_every_text_a_phone_word_matches(corpus):
    matched = 0
    for text in corpus:
        lower = same_length_lower(text)
        if any(rx.search(lower) for rx in finders_phone._PHONE_WORDS):
            matched += 1
            assert finders_phone.phone_word_lower(text) == lower, repr(text)
        elif finders_phone.phone_word_lower(text) is not None:
            assert finders_phone.phone_word_lower(text) == lower
    assert matched > 50


def test_phone_word_gate_on_every_word_and_separator():
    matched = 0
    for form in finders_phone._PHONE_WORD_FORMS:
        for word in (form, form.upper(), form.title()):
            for sep in ("", " ", ".", ":", " # ", "\t", ".:\n", "\u3000"):
                for tail in ("0", "(0", "1", "(1"):
                    for lead in ("x ", "é "):  # ASCII texts and others (lower-cased first)
                        text = f"{lead}{word}{sep}{tail}20 7946 0958"
                        if any(rx.search(text.lower()) for rx in finders_phone._PHONE_WORDS):
                            matched += 1
                            assert finders_phone.phone_word_lower(text) == text.lower(), repr(text)
    assert matched > 400


def test_phone_word_gate_lets_through_every_number_after_a_phone_word():
    # the numbers without a trunk 0 (8 ..., 852 ..., 2345 6789) are looked for only in texts the gate lets through
    matched = 0
    for form in finders_phone._PHONE_WORD_FORMS:
        for word in (form, form.upper(), form.title()):
            for sep in ("", " ", ".", ":", " # ", "\t", ".:\n", "\u3000"):
                for tail in "123456789(":
                    for lead in ("x ", "é "):
                        before = f"{lead}{word}{sep}"
                        if finders_phone._WORD_BEFORE.search(before.lower()):
                            matched += 1
                            text = f"{before}{tail}9 2345 6789"
                            assert finders_phone.phone_word_lower(text) == text.lower(), repr(text)
    assert matched > 4000


def test_find_phone_equals_the_plain_run(corpus, monkeypatch):
    fast = [finders.find_phone(t, text_shape(t)) for t in corpus]
    monkeypatch.setattr(finders_phone, "phone_word_lower", str.lower)
    assert [finders.find_phone(t, text_shape(t)) for t in corpus] == fast


# -- digits, cards, IPv4 ---------------------------------------------------------------------------------
def test_find_pii_equals_the_run_without_digit_bounds(corpus, monkeypatch):
    fast = [detect.find_pii(t) for t in corpus]
    assert sum(bool(d) for d in fast) > 1500
    monkeypatch.setattr(detect, "MIN_DIGITS", {k: 0 for k in finders.MIN_DIGITS})
    monkeypatch.setattr(detect, "MULTI_MIN_DIGITS", (0,) * len(finders.MULTI_FINDERS))
    assert [detect.find_pii(t) for t in corpus] == fast


def test_digit_bounds_are_the_fewest_digits_of_a_detection(corpus):
    """No detection of an entity type in a text with fewer ASCII digits than its bound; and the bounds are
    tight enough to matter (some detection sits at or near each bound that is above zero)."""
    least = {}
    for text in corpus:
        n = sum(ch in finders.ASCII_DIGITS for ch in text)
        for d in detect.find_pii(text):
            least[d.entity] = min(least.get(d.entity, n), n)
    for entity, bound in finders.MIN_DIGITS.items():
        assert least.get(entity, bound) >= bound, entity
    assert least["credit_card"] <= 16 and least["ipv4"] <= 6 and least["us_ssn"] <= 11


_CARD_PLAIN_RX = finders._CARD_PATTERNS


def find_card_plain(text: str, shape: str) -> List[Tuple[int, int]]:
    """find_card without the check for two groups of four digits."""
    out = []
    spaced = False
    for k, rx in enumerate(_CARD_PLAIN_RX):
        if k == 2 and not spaced and "0000-0000-0000-0000-0" not in shape:
            continue
        for m in rx.finditer(shape):
            spaced = spaced or k == 1
            s, e = m.span()
            digits = text[s:e].replace(" ", "").replace("-", "")
            if card_issuer_ok(digits) and luhn_valid(digits):
                out.append((s, e))
    return out


def test_find_card_equals_the_plain_run(corpus):
    found = 0
    for text in corpus:
        shape = text_shape(text)
        expected = find_card_plain(text, shape)
        found += bool(expected)
        assert finders.find_card(text, shape) == expected, repr(text)
    assert found > 100


class AlwaysIn(str):
    """A shape for which every ``literal in shape`` check answers yes: the finders then run every pattern."""

    def __contains__(self, item: object) -> bool:
        return True


@pytest.mark.parametrize("finder", [finders.find_card, finders.find_iban, finders.find_ssn, finders.find_phone,
                                    finders.find_chinese])
def test_literal_checks_on_the_shape_skip_only_patterns_that_find_nothing(corpus, finder):
    found = 0
    for text in corpus:
        shape = text_shape(text)
        expected = finder(text, AlwaysIn(shape))
        found += bool(expected)
        assert finder(text, shape) == expected, repr(text)
    assert found > 30


def test_ipv4_pattern_matches_like_the_first_one():
    first = re.compile(r"\.(0{1,3})\.(0{1,3})\.(0{1,3})(?!\w|\.0)")
    rng = random.Random(2)
    for _ in range(30000):
        shape = "".join(rng.choice(["0", "00", "000", "0000", ".", "a", " ", "_", "A"]) for _ in range(rng.randint(0, 20)))
        assert [m.span() for m in finders._IPV4_TAIL.finditer(shape)] == [m.span() for m in first.finditer(shape)]
