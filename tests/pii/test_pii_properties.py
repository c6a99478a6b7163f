"""Property tests: scrubbing leaves nothing detectable, redaction is idempotent, planted values never survive,
and the fast (shape-anchored) detectors agree with plain reference regexes."""
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchdataguard.pii import PIIScrubber
from torchdataguard.pii import detectors as D
from torchdataguard.pii.detectors import finders as F
from torchdataguard.pii.synthetic import (
    CARD_SCHEMES, SECRET_KINDS, fake_card, fake_email, fake_iban, fake_ipv4, fake_ipv6, fake_phone, fake_secret,
    fake_ssn)

KEY = "property-test-key-0123456789abcdef"
REDACT = PIIScrubber()
PSEUDO = PIIScrubber(actions="pseudonymize", key=KEY)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _planted(seed: int) -> str:
    rng = random.Random(seed)
    kind = rng.randrange(9)
    if kind == 0:
        return fake_card(rng, rng.choice(sorted(CARD_SCHEMES)), fmt=rng.choice(["plain", "spaces", "dashes"]))
    if kind == 1:
        return fake_iban(rng, rng.choice(sorted(D.IBAN_LENGTHS)), grouped=rng.random() < 0.5)
    if kind == 2:
        return fake_ssn(rng, sep=rng.choice("- "))
    if kind == 3:
        return fake_email(rng)
    if kind == 4:
        return fake_phone(rng)
    if kind == 5:
        return fake_ipv4(rng)
    if kind == 6:
        return fake_ipv6(rng, compressed=rng.random() < 0.5)
    if kind == 7:
        return fake_secret(rng, rng.choice(SECRET_KINDS))
    return rng.choice(["version 1.2.3.4", "foo-2.0.1.3", "\npkg (1:2.3.4.5-1) unstable; urgency=low\n"])


planted = st.integers(0, 2**32).map(_planted)
noise = st.text(alphabet=st.sampled_from(list("abcXYZ0123456789 .,-+@:()[]<>_/\n\t") + ["é", "…", "\u00a0"]),
                max_size=12)
texts = st.lists(st.one_of(planted, noise), min_size=1, max_size=12).map("".join)
_VERSION_WORDS = {"v", "ver", "rel", "rev", "build", "policy", "upstream", "standard", "standards", "firmware",
                  "version", "versions", "release", "releases", "revision"}
words = st.text(alphabet=st.sampled_from(list("abcdefghijklmnopqrstuvwxyz")), min_size=1, max_size=8).filter(
    lambda w: w not in _VERSION_WORDS)  # a planted address after "version" is a version, by design


@SETTINGS
@given(texts)
def test_redacted_output_has_nothing_left_to_detect_and_is_idempotent(text):
    once = REDACT.scrub(text)
    assert REDACT.detect(once) == []
    assert REDACT.scrub(once) == once


@SETTINGS
@given(texts)
def test_pseudonymised_output_has_nothing_left_to_detect(text):
    once = PSEUDO.scrub(text)
    assert PSEUDO.detect(once) == []
    assert PSEUDO.scrub(once) == once


@SETTINGS
@given(texts)
def test_only_detected_spans_change(text):
    dets = REDACT.detect(text)
    out = REDACT.scrub(text)
    pieces, pos = [], 0
    for d in dets:
        assert d.start >= pos and d.end > d.start
        pieces += [text[pos:d.start], f"<{d.entity.upper()}>"]
        pos = d.end
    pieces.append(text[pos:])
    assert out == "".join(pieces)


@SETTINGS
@given(st.lists(st.tuples(planted, words), min_size=1, max_size=6))
def test_planted_values_never_survive(pairs):
    text = " ".join(f"{w} {v}" for v, w in pairs) + " end"
    out = REDACT.scrub(text)
    for v, _ in pairs:
        if v.startswith(("version", "foo-", "\npkg")):
            assert v.strip() in out  # version strings are not addresses
        else:
            assert v not in out


# -- fast detectors against plain reference patterns -----------------------------------------------------
# local parts and domain labels take letters and digits of any script (müller@bücher.de), as the detector does;
# [^\W\x00-\x7f] is "a non-ASCII letter or digit"
_REF_EMAIL = re.compile(r"(?<![\w.%+\-='])[.=']*(?P<addr>(?:[A-Za-z0-9_%+\-]|[^\W\x00-\x7f])"
                        r"(?:[A-Za-z0-9_%+\-=']|[^\W\x00-\x7f]|\.(?!\.)){0,63}"
                        r"@(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+[^\W\d_]{2,24})(?![\w\-]|\.[^\W_])")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_REF_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!\w|\.[0-9])")
_REF_CARD = re.compile(r"(?<![\w\-.,])(?:[0-9]{13,19}|[0-9]{4}([ \-])[0-9]{4}\1[0-9]{4}\1[0-9]{1,7}"
                       r"|[0-9]{4}([ \-])[0-9]{6}\2[0-9]{4,5})(?![\w\-]|[.,][0-9])")
_REF_SSN = re.compile(r"(?<![\w\-.])([0-9]{3})([\- ])([0-9]{2})\2([0-9]{4})(?![\w\-]|\.[0-9])")


def _ref(text):
    out = {("ipv4", m.span()) for m in _REF_IPV4.finditer(text) if not D.is_version_context(text, *m.span())}
    for m in _REF_CARD.finditer(text):
        digits = re.sub(r"[ \-]", "", m.group())
        if D.card_issuer_ok(digits) and D.luhn_valid(digits):
            out.add(("credit_card", m.span()))
    out |= {("us_ssn", m.span()) for m in _REF_SSN.finditer(text) if D.ssn_valid(m.group(1), m.group(3), m.group(4))}
    return out


def _fast(text):
    shape = D.text_shape(text)
    return ({("ipv4", s) for s in F.find_ipv4(text, shape)} | {("credit_card", s) for s in F.find_card(text, shape)}
            | {("us_ssn", s) for s in F.find_ssn(text, shape)})


@SETTINGS
@given(texts)
def test_fast_finders_agree_with_reference_patterns(text):
    assert _fast(text) == _ref(text)
    assert F.find_email(text, D.text_shape(text)) == _ref_emails(text)


def _ref_emails(text):
    # non-overlapping matches, each replaced by a placeholder-like mask before looking further (an address
    # right after another one starts at the placeholder's ">")
    spans, pos = [], 0
    while True:
        m = _REF_EMAIL.search(text, pos)
        if m is None:
            return spans
        s, e = m.span("addr")
        spans.append((s, e))
        text = text[:s] + "<" + "X" * (e - s - 2) + ">" + text[e:]
        pos = e
