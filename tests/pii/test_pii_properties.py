"""Property tests: scrubbing leaves nothing detectable, redaction is idempotent, planted values never survive,
and the fast (shape-anchored) detectors agree with plain reference regexes, also next to Han characters (which
are word characters to Python's ``re`` but boundaries to the detectors)."""
import random
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchdataguard.pii import PIIScrubber
from torchdataguard.pii import detectors as D
from torchdataguard.pii.detectors import finders as F
from torchdataguard.pii.detectors.shape import CJK_RANGES
from torchdataguard.pii.synthetic import (
    CARD_SCHEMES, SECRET_KINDS, fake_card, fake_cn_id, fake_cn_landline, fake_cn_mobile, fake_email, fake_hk_id,
    fake_iban, fake_ipv4, fake_ipv6, fake_passport, fake_phone, fake_secret, fake_ssn, fake_tw_id, fake_unionpay)

KEY = "property-test-key-0123456789abcdef"
REDACT = PIIScrubber()
PSEUDO = PIIScrubber(actions="pseudonymize", key=KEY)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _planted(seed: int) -> str:
    rng = random.Random(seed)
    kind = rng.randrange(10)
    if kind == 9:  # Chinese values, with the word or Han text they come with
        return rng.choice([
            "手机" + fake_cn_mobile(rng, rng.choice(["plain", "spaces", "dashes", "+86", "0086", "(+86)"])),
            "电话：" + fake_cn_landline(rng, rng.choice(["dash", "parens", "fullwidth", "space", "ext"])),
            "身份证" + fake_cn_id(rng, legacy=rng.random() < 0.2), "证件" + fake_hk_id(rng, letters=rng.choice([1, 2])),
            "身分證" + fake_tw_id(rng), "卡号" + fake_unionpay(rng, valid=rng.random() < 0.5),
            "护照号码" + fake_passport(rng, rng.choice(["E", "EA", "G", "K"]))])
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
noise = st.text(alphabet=st.sampled_from(list("abcXYZ0123456789 .,-+@:()[]<>_/\n\t") + ["é", "…", "\u00a0", "张", "号",
                                                                                        "。"]),
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
            if not v.isascii():  # a Chinese value: the word before it stays, the number does not
                assert re.match(_CJK + "+", v).group() in out


# -- fast detectors against plain reference patterns -----------------------------------------------------
# W: a word character that is not Han, kana or Hangul (those are boundaries, as spaces are in English);
# X: a non-ASCII letter or digit; N: the same but not CJK
_CJK = f"[{CJK_RANGES}]"
_W = f"[^\\W{CJK_RANGES}]"
_X = r"[^\W\x00-\x7f]"
_N = f"[^\\W\\x00-\\x7f{CJK_RANGES}]"
# domain labels take letters and digits of any script (bücher.de, 例子.中国); the top-level label is letters of
# one kind (CJK or not) or an IDNA label; a run of "--" or "__" after it is a separator line, not the domain's
_SEP_AFTER = r"(?=--|__)"
_DOMAIN = (r"(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
           rf"(?:(?:[Xx][Nn]--[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|(?:(?!{_CJK})[^\W\d_]){{2,24}})"
           rf"(?:{_SEP_AFTER}|(?!{_W}|-|\.[^\W_]))"
           rf"|(?:(?={_CJK})[^\W\d_]){{2,24}}(?:{_SEP_AFTER}|(?![\w\-]|\.[^\W_])))")
# local parts: ASCII address characters and non-CJK letters of any script (müller@), starting after a
# non-address character, or after a CJK character when the part has an ASCII character (邮箱jane@); or,
# without any ASCII character, letters of any script with at least one CJK (张三@)
_REF_EMAIL = re.compile(
    rf"(?:(?<![\w.%+\-='])|(?<={_CJK})(?=[^@]*?[\x00-\x7f]))[.=']*(?P<addr>(?:[A-Za-z0-9_%+\-]|{_N})"
    rf"(?:[A-Za-z0-9_%+\-=']|{_N}|\.(?!\.)){{0,63}}@{_DOMAIN})"
    rf"|(?<!{_X})(?=[^@]*?{_CJK})(?P<addr2>{_X}{{1,64}}@{_DOMAIN})")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_REF_IPV4 = re.compile(rf"(?<!{_W}|\.){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!{_W}|\.[0-9])")
# each card form is looked for on its own (as the detector does: the forms overlap)
_CARD_END = rf"(?!{_W}|-|[.,][0-9])"
_REF_CARDS = (
    re.compile(rf"(?<!{_W}|[\-.,])[0-9]{{13,19}}{_CARD_END}"),
    re.compile(rf"(?<!{_W}|[\-.,])[0-9]{{4}}([ \-])[0-9]{{4}}\1[0-9]{{4}}\1[0-9]{{1,7}}{_CARD_END}"),
    re.compile(rf"(?<!{_W}|[\-.,])[0-9]{{4}}([ \-])[0-9]{{4}}\1[0-9]{{4}}\1[0-9]{{4}}\1[0-9]{{1,3}}{_CARD_END}"),
    re.compile(rf"(?<!{_W}|[\-.,])[0-9]{{4}}([ \-])[0-9]{{6}}\1[0-9]{{4,5}}{_CARD_END}"),
)
_REF_SSN = re.compile(rf"(?<!{_W}|[\-.])([0-9]{{3}})([\- ])([0-9]{{2}})\2([0-9]{{4}})(?!{_W}|-|\.[0-9])")


def _ref(text):
    out = {("ipv4", m.span()) for m in _REF_IPV4.finditer(text) if not D.is_version_context(text, *m.span())}
    for m in (m for rx in _REF_CARDS for m in rx.finditer(text)):
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
        s, e = m.span("addr") if m.group("addr") is not None else m.span("addr2")
        spans.append((s, e))
        text = text[:s] + "<" + "X" * (e - s - 2) + ">" + text[e:]
        pos = e
