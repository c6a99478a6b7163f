"""Normalize: mojibake repair, control characters, Unicode form, whitespace, unrepairable drops, schema."""
import copy
import pickle
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import torchdataguard as tdg
from torchdataguard.assets import load_spamassassin
from torchdataguard.errors import ConfigError
from torchdataguard.quality.normalize import FieldSpec


def norm(text, **kw):
    rec = {"text": text, "label": 1}
    before = copy.deepcopy(rec)
    out = tdg.Normalize(**kw).process(tdg.Example(0, rec, text, "text"))
    assert rec == before  # the input record is never mutated
    return out


def _sloppy_cp1252(byte):
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:  # bytes cp1252 leaves undefined decode as the C1 control of the same number
        return chr(byte)


def mis_decode(s):
    """UTF-8 bytes read as Windows-1252, the way browsers and old mail readers do it."""
    return "".join(_sloppy_cp1252(b) for b in s.encode("utf-8"))


@pytest.mark.parametrize("good", [
    "The caf\u00e9 on the corner serves cr\u00e8me br\u00fbl\u00e9e.",
    "He said \u201cdon\u2019t\u201d and left \u2014 quickly.",
    "Stra\u00dfe, na\u00efve, \u00fcber, S\u00e3o Paulo, \u00c5ngstr\u00f6m.",
])
def test_mojibake_is_repaired_and_counted(good):
    bad = mis_decode(good)
    assert bad != good
    out = norm(bad)
    assert isinstance(out, tdg.Example)
    assert out.text == unicodedata.normalize("NFKC", good) and out.record["text"] == out.text
    assert out.record["label"] == 1 and out.counts["normalize/mojibake_fixed"] == 1


def test_unrepairable_text_is_dropped_not_mangled():
    assert norm("lost \ufffd character").reason == "normalize/replacement_chars"
    # a ratio can be allowed
    out = norm("a long enough text with one lost \ufffd character in it", max_replacement_ratio=0.05)
    assert isinstance(out, tdg.Example) and "\ufffd" in out.text
    # mojibake that ftfy cannot undo (a byte of the sequence is gone) is dropped
    assert norm("It doesn\u00e2\u20act work").reason == "normalize/mojibake"
    assert isinstance(norm("It doesn\u00e2\u20act work", drop_unrepaired=False), tdg.Example)
    # nothing left
    assert norm("\x00\x01\u200b").reason == "normalize/empty"


def test_control_characters_and_terminal_escapes():
    out = norm("bell\x07 null\x00 zero\u200bwidth \ufeffbom \u202eoverride \x1b[31mred\x1b[0m done")
    assert out.text == "bell null zerowidth bom override red done"
    assert out.counts == {"normalize/control_chars": 1}
    # tabs, newlines, zero-width joiners (emoji) are kept
    out = norm("a\tb\nc \U0001f468\u200d\U0001f469", whitespace=None)
    assert out.text == "a\tb\nc \U0001f468\u200d\U0001f469"


def test_unicode_form_is_configurable():
    assert norm("\uff21\uff22\uff23 \ufb01ne x\u00b2").text == "ABC fine x2"
    out = norm("\uff21\uff22\uff23 \ufb01ne", form="NFC")
    assert out.text == "\uff21\uff22\uff23 \ufb01ne"
    out = norm("e\u0301t\u00e9", form="NFC")
    assert out.text == "\u00e9t\u00e9" and out.counts == {"normalize/nfc": 1}
    assert norm("e\u0301", form=None).text == "e\u0301"


def test_whitespace_modes():
    text = "  Title\r\n\r\nline  with \t gaps   \n\n\n\n    indented  code\u3000x\n\u2028end  "
    out = norm(text, form=None)
    assert out.text == "Title\n\nline with gaps\n\n    indented code x\n\nend"
    assert out.counts == {"normalize/whitespace": 1}
    lines = norm(text, form=None, whitespace="lines")
    assert lines.text == "  Title\n\nline  with \t gaps\n\n    indented  code\u3000x\n\nend"
    assert norm(text, form=None, whitespace="collapse", max_blank_lines=0).text.count("\n\n") == 0
    assert norm(text, form=None, whitespace=None).text == text  # unchanged: same object back
    ex = tdg.Example(0, "clean text", "clean text")
    assert tdg.Normalize().process(ex) is ex


def test_schema_fills_and_drops():
    schema = {"label": {"type": "int", "required": True}, "lang": {"type": "str", "default": "en"},
              "score": FieldSpec("float"), "tags": {"type": "list", "default": []}}
    st = tdg.Normalize(schema=schema)

    def run(rec):
        return st.process(tdg.Example(0, rec, rec.get("text"), "text"))

    out = run({"text": "hello there", "label": 3, "score": 2})
    assert out.record == {"text": "hello there", "label": 3, "score": 2, "lang": "en", "tags": []}
    assert out.counts == {"normalize/filled/lang": 1, "normalize/filled/tags": 1}
    out.record["tags"].append("x")  # defaults are copied, not shared
    assert run({"text": "hi", "label": 1}).record["tags"] == []
    assert run({"text": "hi"}).reason == "normalize/missing/label"
    assert run({"text": "hi", "label": None}).reason == "normalize/missing/label"
    assert run({"text": "hi", "label": "3"}).reason == "normalize/bad_type/label"
    assert run({"text": "hi", "label": True}).reason == "normalize/bad_type/label"
    assert run({"text": "hi", "label": 1, "score": "high"}).reason == "normalize/bad_type/score"
    assert st.process(tdg.Example(0, "just text", "just text")).reason == "normalize/not_a_mapping"
    cfg = st.config()["schema"]
    assert cfg["lang"] == {"type": "str", "required": False, "default": "en"} and "default" not in cfg["label"]


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="form='NFX'"):
        tdg.Normalize(form="NFX")
    with pytest.raises(ConfigError, match="whitespace='all'"):
        tdg.Normalize(whitespace="all")
    with pytest.raises(ConfigError, match="max_replacement_ratio=2"):
        tdg.Normalize(max_replacement_ratio=2)
    with pytest.raises(ConfigError, match="one of"):
        tdg.Normalize(schema={"x": {"type": "decimal"}})
    with pytest.raises(ConfigError, match="default 'a' is not of type 'int'"):
        FieldSpec("int", default="a")
    with pytest.raises(ConfigError, match="unknown keys"):
        tdg.Normalize(schema={"x": {"typ": "int"}})


def test_guard_counts_and_pickling():
    records = [mis_decode("na\u00efve caf\u00e9 text"), "plain  text", "fine", None, "\ufffd\ufffd broken"]
    stage = tdg.Normalize(schema=None)
    clone = pickle.loads(pickle.dumps(stage))
    g = tdg.Guard([clone], device="cpu", progress=False)
    assert g.filter(records) == ["na\u00efve caf\u00e9 text", "plain text", "fine"]
    rep = g.report()
    assert rep["counts"] == {"normalize/mojibake_fixed": 1, "normalize/whitespace": 1}
    assert rep["dropped_by_reason"] == {"invalid/none": 1, "normalize/replacement_chars": 1}


def test_real_email_keeps_its_words():
    for row in load_spamassassin(limit=40):
        out = tdg.Normalize(max_replacement_ratio=1.0).process(tdg.Example(0, row["text"], row["text"]))
        assert isinstance(out, tdg.Example)
        assert out.text.split() == unicodedata.normalize("NFKC", row["text"]).split() or \
            "normalize/mojibake_fixed" in out.counts or "normalize/control_chars" in out.counts


@settings(max_examples=200, deadline=None)
@given(hst.text(alphabet=hst.characters(exclude_categories=("Cs",)), max_size=80))
def test_normalizing_is_idempotent_and_never_crashes(text):
    st = tdg.Normalize(max_replacement_ratio=1.0, drop_unrepaired=False)
    out = st.process(tdg.Example(0, text, text))
    if isinstance(out, tdg.Drop):
        assert out.reason == "normalize/empty"
        return
    again = st.process(tdg.Example(0, out.text, out.text))
    assert isinstance(again, tdg.Example) and again.text == out.text


def _thai_fixture_texts():
    import json
    from pathlib import Path
    texts = []
    for line in (Path(__file__).resolve().parents[1] / "fixtures" / "th" / "short.jsonl").read_text("utf-8").splitlines():
        texts.extend(json.loads(line)["texts"])
    return texts


@pytest.mark.parametrize("text", [
    "ㅋㅋㅋ 진짜 웃겨요 ㅠㅠ",  # Korean chat: jamo written alone (NFKC: conjoining jamo U+110F, U+1172)
    "ㄱㅏ 나 다",  # NFKC composed these two jamo into the syllable 가
    "ดื่มน้ำเยอะๆ นะครับ",  # Thai SARA AM (NFKC: NIKHAHIT + SARA AA)
    "ນ້ຳ ແລະ ໜ້າ ໝາ",  # Lao AM, HO NO, HO MO
    "Հայաստան և Վրաստան",  # Armenian ech-yiwn, the word "and"
])
def test_nfkc_leaves_letters_of_korean_thai_lao_and_armenian_as_they_are(text):
    # until 2026-12-07 the default NFKC rewrote these letters into another spelling of their script
    out = tdg.Normalize().process(tdg.Example(0, text, text))
    assert out.text == text and "normalize/nfkc" not in out.counts


def test_nfkc_still_folds_around_kept_letters_and_real_thai_keeps_its_spelling():
    text = "ＡＢＣ ㅋㅋ ﬁne น้ำ ｶﾀｶﾅ"
    assert tdg.Normalize().normalize_text(text) == ("ABC ㅋㅋ fine น้ำ カタカナ", ["nfkc"])
    assert tdg.Normalize(form="NFKD").normalize_text("ㅋ é")[0] == "ㅋ e\u0301"
    thai = _thai_fixture_texts()
    with_am = [t for t in thai if "\u0e33" in t]
    assert len(with_am) > 300
    out = tdg.Guard([tdg.Normalize(whitespace=None)], device="cpu", progress=False).filter(with_am)
    assert len(out) == len(with_am)  # NFKC still folds their "…" into "..."
    assert [t.count("\u0e33") for t in out] == [t.count("\u0e33") for t in with_am]
    assert not any("\u0e4d" in t for t in out)


@pytest.mark.parametrize("text", [
    "សូម\u200bចុច\u200bប៊ូតុង\u200bនេះ",  # Khmer: the words of "please press this button"
    "ဖိုင်\u200bကို\u200bဖွင့်\u200bပါ",  # Myanmar
    "กรุณา\u200bกด\u200bปุ่ม",  # Thai
    "ກະລຸນາ\u200bກົດ",  # Lao
])
def test_zero_width_spaces_between_words_of_scripts_without_spaces_are_kept(text):
    # until 2026-12-07 they were removed: no letter changed, but the words ran together
    out = tdg.Normalize().process(tdg.Example(0, text, text))
    assert out.text == text and "normalize/control_chars" not in out.counts


@pytest.mark.parametrize("text, want", [
    ("hello\u200bworld", "helloworld"),  # elsewhere they go, as before
    ("中文\u200b文本", "中文文本"),
    ("សូម\u200b ចុច", "សូម ចុច"),  # next to a space, punctuation or the end: no boundary to keep
    ("\u200bសូម\u200b", "សូម"),
    ("សូម\u200b.", "សូម."),
    ("សូម\u200bok", "សូមok"),
    ("សូម\u200b\u200b\u200bចុច", "សូម\u200bចុច"),  # one of a run
    ("សូម\u200b\x00ចុច", "សូម\u200bចុច"),  # controls go first
])
def test_other_zero_width_spaces_are_removed(text, want):
    assert tdg.Normalize().normalize_text(text)[0] == want
    assert tdg.Normalize().normalize_text(want)[0] == want


def test_half_width_hangul_jamo_become_the_jamo_written_alone():
    # NFKC made them conjoining jamo (U+1100..), which compose with the jamo around them: "ﾡￂ" (half-width
    # kiyeok, a) became the syllable 가, "ﾻﾻ" the conjoining ᄏᄏ; they are narrow forms of the compatibility jamo,
    # as half-width katakana are of the full-width ones, and now become those (kept by NFKC, see above)
    assert tdg.Normalize().normalize_text("ﾻﾻ ﾡￂ ｶﾀｶﾅ") == ("ㅋㅋ ㄱㅏ カタカナ", ["nfkc"])
    assert tdg.Normalize(form="NFKD").normalize_text("ﾻ")[0] == "ㅋ"
    assert tdg.Normalize(form="NFC").normalize_text("ﾻ")[0] == "ﾻ"  # NFC keeps width forms
    import unicodedata
    for c in range(0xFFA0, 0xFFDD):
        ch = chr(c)
        if unicodedata.category(ch) != "Cn":
            out = tdg.Normalize().normalize_text(ch)[0]
            assert out == unicodedata.normalize("NFKC", ch) or "\u3131" <= out <= "\u318e", hex(c)
            assert not "\u1100" <= out <= "\u11ff", hex(c)
