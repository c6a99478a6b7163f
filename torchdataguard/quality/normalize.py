"""The ``normalize`` stage: repair mis-decoded text, remove control characters, Unicode form, whitespace.

Text that cannot be repaired is dropped with a reason (``normalize/replacement_chars``,
``normalize/mojibake``), never passed on half-mangled. Optional schema checks fill or drop the fields of
tabular records.
"""
from __future__ import annotations

import copy
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from ..core.stage import Drop, Example, Rewriter, register_stage
from ..errors import ConfigError
from .mojibake import fix_lines, ftfy_config, looks_bad
from .whitespace import collapse_blank_runs, has_ascii_controls, has_ascii_specials, has_other_spaces, tidy_lines

__all__ = ["FieldSpec", "Normalize", "NormalizeConfig"]

_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
_WHITESPACE_MODES = ("collapse", "lines")
_TYPES: Dict[str, Any] = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": (list, tuple),
                          "dict": Mapping, "any": object}
_MISSING: Any = type("_Missing", (), {"__repr__": lambda self: "MISSING", "__reduce__": lambda self: "_MISSING"})()

# ANSI terminal escape sequences (colour codes in logs), removed whole.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
# C0 and C1 controls except tab, line feed, vertical tab, form feed and carriage return; DEL; soft hyphen;
# word joiner; byte order mark; bidirectional embeddings, overrides and isolates; interlinear annotation marks.
# Zero-width joiners (emoji, Indic scripts) are kept.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\u00ad\u2060\ufeff\u202a-\u202e\u2066-\u2069\ufff9-\ufffb]")
# zero-width spaces: removed, but one is kept between two characters of the scripts written without spaces that
# use it between words (Khmer, Myanmar, often Thai and Lao; Tai Le, New Tai Lue, Tai Tham, Tai Viet, Balinese,
# Javanese; group 1: the kept one). Until 2026-12-07 all went: the 1,577 Khmer and 180 Myanmar messages of Debian's
# catalogues that hold one lost their word boundaries.
_SPACELESS = "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u1950-\u19ff\u1a20-\u1aaf\u1b00-\u1b7f\ua980-\ua9ff\uaa60-\uaadf"
_ZWSP = re.compile(f"(?<=[{_SPACELESS}])(\u200b)\u200b*(?=[{_SPACELESS}])|\u200b+")
_NEWLINES = re.compile("\r\n?|[\x0b\x0c\x85\u2028\u2029]")
_HS = "[ \t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]"
_HS_NOT_SPACE = "[\t\xa0\u1680\u2000-\u200a\u202f\u205f\u3000]"
_TRAILING = re.compile(_HS + "+$", re.M)
_INNER_RUN = re.compile(r"(?<=\S)(?:" + _HS + "{2,}|" + _HS_NOT_SPACE + r")(?=\S)")
_REPLACEMENT = "\ufffd"
# Letters that NFKC and NFKD rewrite into another spelling of their script, left as they are by those forms:
# Hangul compatibility jamo (the jamo written alone, "ㅋㅋ", "ㅠㅠ": NFKC makes them conjoining jamo, U+1100..,
# and composes "ㄱㅏ" into "가"), the Thai and Lao vowel AM ("น้ำ" "water" becomes NIKHAHIT + SARA AA: 22% of
# Debian's Thai messages changed), the Lao letters HO NO and HO MO, and the Armenian ligature ech-yiwn ("և", the
# word "and"). They are compatibility characters only by Unicode's history; their text has no other spelling.
_KEEP_IN_COMPAT = re.compile("[\u3131-\u318e\u0e33\u0eb3\u0edc\u0edd\u0587]+")
# Half-width Hangul jamo (U+FFA0-U+FFDC) become the compatibility jamo they are narrow forms of ("ﾻ" -> "ㅋ", as
# half-width katakana become full-width), which _KEEP_IN_COMPAT keeps; NFKC alone made them conjoining jamo (U+110F),
# which compose with the letters around them into syllables ("ﾡￂ" read "가"), until 2026-12-07.
_HALF_JAMO = re.compile("[\uffa0-\uffdc]")
_HALF_TO_COMPAT = {c: int(d.split()[1], 16) for c in range(0xFFA0, 0xFFDD)
                   if (d := unicodedata.decomposition(chr(c))).startswith("<narrow>")}
_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x85", "\u2028", "\u2029")


def _may_have_newlines(t: str) -> bool:
    """Whether ``_NEWLINES`` can match ``t`` (a line break other than ``\\n``)."""
    return any(b in t for b in _LINE_BREAKS)


@dataclass(frozen=True)
class FieldSpec:
    """One declared field of a tabular record.

    Attributes:
        type: ``"str"``, ``"int"``, ``"float"`` (ints accepted), ``"bool"``, ``"list"``, ``"dict"`` or ``"any"``.
        required: a record without the field (or with ``None``) and no ``default`` is dropped as
            ``normalize/missing/<field>``.
        default: filled in when the field is missing or ``None`` (counted as ``normalize/filled/<field>``).

    Example:
        >>> FieldSpec("int", default=0).default
        0
    """

    type: str = "any"
    required: bool = False
    default: Any = _MISSING

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ConfigError.bad("FieldSpec.type", self.type, f"one of {sorted(_TYPES)}")
        if not isinstance(self.required, bool):
            raise ConfigError.bad("FieldSpec.required", self.required, "True or False")
        if self.default is not _MISSING and self.default is not None and not self.accepts(self.default):
            raise ConfigError(f"FieldSpec default {self.default!r} is not of type {self.type!r}; give a default of "
                              f"that type or change the type")

    def accepts(self, value: Any) -> bool:
        if self.type in ("int", "float") and isinstance(value, bool):
            return False
        return isinstance(value, _TYPES[self.type])

    def to_json(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"type": self.type, "required": self.required}
        if self.default is not _MISSING:
            out["default"] = self.default
        return out

    @classmethod
    def parse(cls, name: str, spec: Any) -> "FieldSpec":
        if isinstance(spec, FieldSpec):
            return spec
        if isinstance(spec, str):
            return cls(type=spec)
        if isinstance(spec, Mapping):
            unknown = sorted(set(spec) - {"type", "required", "default"})
            if unknown:
                raise ConfigError(f"schema field {name!r} has unknown keys {unknown}; allowed: type, required, default")
            return cls(**dict(spec))
        raise ConfigError(f"schema field {name!r} is {spec!r}; expected a FieldSpec, a type name such as 'int', or a "
                          f"dict like {{'type': 'int', 'required': True}}")


@dataclass
class NormalizeConfig:
    """Settings of :class:`Normalize` (validated when built); see the stage for their meaning."""

    form: Optional[str] = "NFKC"
    fix_mojibake: bool = True
    control_chars: bool = True
    whitespace: Optional[str] = "collapse"
    max_blank_lines: int = 1
    max_replacement_ratio: float = 0.0
    drop_unrepaired: bool = True
    schema: Optional[Dict[str, FieldSpec]] = field(default=None)

    def __post_init__(self) -> None:
        problems = []
        if self.form is not None and self.form not in _FORMS:
            problems.append(f"form={self.form!r}: expected one of {list(_FORMS)} or None (no Unicode normalisation)")
        for name in ("fix_mojibake", "control_chars", "drop_unrepaired"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"{name}={getattr(self, name)!r}: expected True or False")
        if self.whitespace is not None and self.whitespace not in _WHITESPACE_MODES:
            problems.append(f"whitespace={self.whitespace!r}: expected 'collapse' (runs of spaces inside lines become "
                            f"one), 'lines' (only line ends and blank lines) or None")
        mbl = self.max_blank_lines
        if isinstance(mbl, bool) or not isinstance(mbl, int) or mbl < 0:
            problems.append(f"max_blank_lines={mbl!r}: expected an integer >= 0")
        r = self.max_replacement_ratio
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
            problems.append(f"max_replacement_ratio={r!r}: expected a float in [0, 1] (0 drops any text with U+FFFD)")
        if self.schema is not None:
            if not isinstance(self.schema, Mapping) or not self.schema:
                problems.append(f"schema={self.schema!r}: expected a non-empty dict of field name -> FieldSpec")
            else:
                parsed = {}
                for k, v in self.schema.items():
                    try:
                        parsed[str(k)] = FieldSpec.parse(str(k), v)
                    except ConfigError as exc:
                        problems.append(str(exc))
                self.schema = parsed
        if problems:
            raise ConfigError.collect(problems, "Normalize settings")


def drop_controls(text: str) -> str:
    """``text`` without ANSI escapes, the characters of ``_CONTROL`` and the zero-width spaces of ``_ZWSP`` (one
    kept between two letters of Khmer, Myanmar, Thai ...: they separate words there).

    Example:
        >>> drop_controls("a\\u200bb\\x00"), drop_controls("\\u1780\\u200b\\u200b\\u1781") == "\\u1780\\u200b\\u1781"
        ('ab', True)
    """
    t = _ANSI.sub("", text) if "\x1b" in text else text
    t = _CONTROL.sub("", t)
    return _ZWSP.sub(r"\1", t) if "\u200b" in t else t


def normal_form(form: str, text: str) -> str:
    """``unicodedata.normalize(form, text)``, except that NFKC and NFKD leave the letters of ``_KEEP_IN_COMPAT``
    as they are (Hangul jamo written alone, Thai and Lao AM, Lao HO NO and HO MO, Armenian ech-yiwn): the text
    between them is normalised piece by piece; half-width Hangul jamo become those jamo (``_HALF_TO_COMPAT``).

    Example:
        >>> normal_form("NFKC", "ㅋㅋ ﬁne น้ำ ﾻ"), normal_form("NFC", "e\u0301")
        ('ㅋㅋ fine น้ำ ㅋ', 'é')
    """
    if form in ("NFKC", "NFKD") and _HALF_JAMO.search(text):
        text = text.translate(_HALF_TO_COMPAT)
    if form in ("NFKC", "NFKD") and _KEEP_IN_COMPAT.search(text):
        parts = _KEEP_IN_COMPAT.split(text)
        kept = _KEEP_IN_COMPAT.findall(text)
        return "".join(unicodedata.normalize(form, p) + (kept[i] if i < len(kept) else "") for i, p in enumerate(parts))
    return unicodedata.normalize(form, text)


@register_stage("normalize")
class Normalize(Rewriter):
    """Repair and tidy text; drop what cannot be repaired; optionally fill or check tabular fields.

    Steps, in order, each counted per record that it changed:

    1. ``fix_mojibake``: repair text decoded with the wrong codec (``"donâ€™t"`` -> ``"don’t"``) with
       ``ftfy``; counted as ``normalize/mojibake_fixed``. Pure ASCII text is skipped (it cannot hold mojibake).
    2. ``control_chars``: remove C0/C1 control characters (tab and line breaks kept), ANSI colour escapes,
       zero-width spaces, byte order marks, soft hyphens and bidirectional overrides
       (``normalize/control_chars``). A zero-width space between two letters of Khmer, Myanmar, Thai, Lao and
       the other scripts written without spaces stays (one of a run): it is their word boundary.
    3. ``form``: Unicode normal form, ``"NFKC"`` by default (``normalize/nfkc``); ``None`` to skip. NFKC and NFKD
       leave Hangul jamo written alone, the Thai and Lao AM, Lao HO NO and HO MO and Armenian ech-yiwn as they are,
       and make half-width Hangul jamo those jamo (:func:`normal_form`).
    4. ``whitespace``: line breaks unified to ``\\n``, trailing spaces removed, at most
       ``max_blank_lines`` blank lines in a row, and with ``"collapse"`` (default) runs of spaces and tabs
       inside a line become one space (indentation is kept) and the text is stripped
       (``normalize/whitespace``); ``"lines"`` leaves spaces inside lines alone; ``None`` skips the step.

    Drops: ``normalize/replacement_chars`` when the share of U+FFFD characters left after repair is above
    ``max_replacement_ratio`` (0 by default: any), ``normalize/mojibake`` when ftfy still detects mojibake
    after repair (``drop_unrepaired``), ``normalize/empty`` when nothing is left.

    ``schema`` declares fields of mapping records (``{"label": {"type": "int", "required": True},
    "lang": {"type": "str", "default": "en"}}``): a missing or ``None`` field is filled with its default
    (``normalize/filled/<field>``), or the record is dropped (``normalize/missing/<field>`` when required,
    ``normalize/bad_type/<field>`` when a value has the wrong type, ``normalize/not_a_mapping``).

    Example:
        >>> import torchdataguard as tdg
        >>> g = tdg.Guard([tdg.Normalize()], device="cpu", progress=False)
        >>> g.wrap(["The Mona Lisa doesnâ€™t have eyebrows.", "tabs\\tand   spaces  \\n\\n\\n\\nend\\x00"])
        ['The Mona Lisa doesn’t have eyebrows.', 'tabs and spaces\\n\\nend']
        >>> sorted(g.report()["counts"].items())
        [('normalize/control_chars', 1), ('normalize/mojibake_fixed', 1), ('normalize/whitespace', 1)]
        >>> tdg.Normalize().process(tdg.Example(0, "broken \\ufffd text", "broken \\ufffd text")).reason
        'normalize/replacement_chars'
    """

    needs_text = True

    def __init__(self, *, form: Optional[str] = "NFKC", fix_mojibake: bool = True, control_chars: bool = True,
                 whitespace: Optional[str] = "collapse", max_blank_lines: int = 1, max_replacement_ratio: float = 0.0,
                 drop_unrepaired: bool = True, schema: Optional[Mapping[str, Any]] = None) -> None:
        self.cfg = NormalizeConfig(form=form, fix_mojibake=fix_mojibake, control_chars=control_chars,
                                   whitespace=whitespace, max_blank_lines=max_blank_lines,
                                   max_replacement_ratio=float(max_replacement_ratio)
                                   if isinstance(max_replacement_ratio, (int, float))
                                   and not isinstance(max_replacement_ratio, bool) else max_replacement_ratio,
                                   drop_unrepaired=drop_unrepaired, schema=dict(schema) if schema is not None else None)
        self._ftfy = None
        if self.cfg.fix_mojibake or self.cfg.drop_unrepaired:
            self._ftfy = ftfy_config()
        self._blank_keep = "\n" * (self.cfg.max_blank_lines + 1)

    def config(self) -> Dict[str, Any]:
        c = self.cfg
        return {"form": c.form, "fix_mojibake": c.fix_mojibake, "control_chars": c.control_chars,
                "whitespace": c.whitespace, "max_blank_lines": c.max_blank_lines,
                "max_replacement_ratio": c.max_replacement_ratio, "drop_unrepaired": c.drop_unrepaired,
                "schema": None if c.schema is None else {k: v.to_json() for k, v in c.schema.items()}}

    # -- text ------------------------------------------------------------------------------------------
    def normalize_text(self, text: str) -> tuple[str, list[str]]:
        """The normalised text and the kinds of change made (no drop decisions).

        The steps repeat until the text no longer changes (at most four rounds), because removing a control
        character can join the halves of a mojibake sequence that the repair then recognises: the result is
        a fixed point, so normalising twice gives what normalising once gave.

        Example:
            >>> Normalize().normalize_text("ﬁne  day ")
            ('fine day', ['nfkc', 'whitespace'])
        """
        changes: list[str] = []
        t = text
        memo: Dict[str, str] = {}  # ftfy's result for each line it saw, for the later rounds
        for _ in range(4):
            before = t
            t = self._one_round(t, changes, memo)
            # An ASCII result is already the fixed point, so the round that would confirm it is skipped (about
            # 40% of the stage's time on e-mails): the repair only looks at text that is not ASCII, the round
            # removed every control character it removes and no later step adds one, NFKC leaves ASCII alone,
            # and the whitespace step gives the same text when run on its own output.
            if t == before or t.isascii():
                break
        return t, changes

    def _one_round(self, t: str, changes: list[str], memo: Optional[Dict[str, str]] = None) -> str:
        c = self.cfg

        def note(kind: str) -> None:
            if kind not in changes:
                changes.append(kind)

        # ASCII text without any character of ASCII_SPECIALS (most texts) skips the checks that look for them
        plain = t.isascii() and not has_ascii_specials(t)
        if c.fix_mojibake and not t.isascii():
            fixed = fix_lines(t, self._ftfy, memo)
            if fixed != t:
                note("mojibake_fixed")
                t = fixed
        if c.control_chars and not plain and (not t.isascii() or has_ascii_controls(t)):
            fixed = drop_controls(t)
            if fixed != t:
                note("control_chars")
                t = fixed
        # ASCII text is in every normal form
        if c.form is not None and not t.isascii() and not unicodedata.is_normalized(c.form, t):
            fixed = normal_form(c.form, t)
            if fixed != t:
                note(c.form.lower())
                t = fixed
        if c.whitespace is not None:
            # each substitution runs only where it can match (the checks are exact; they save most of the
            # step's time on the many texts that hold nothing to change, and on the round that confirms it)
            fixed = _NEWLINES.sub("\n", t) if not plain and _may_have_newlines(t) else t
            collapse = c.whitespace == "collapse"
            # text whose only whitespace is space, tab and \n is tidied with string methods (whitespace.py)
            # (tidy_lines looks for what it would change itself, and returns the text as it is when nothing)
            if plain or not has_other_spaces(fixed):
                fixed = tidy_lines(fixed, collapse)
            else:
                fixed = _TRAILING.sub("", fixed)
                if collapse:
                    fixed = _INNER_RUN.sub(" ", fixed)
            if self._blank_keep + "\n" in fixed:
                fixed = collapse_blank_runs(fixed, len(self._blank_keep))
            fixed = fixed.strip() if c.whitespace == "collapse" else fixed.strip("\n")
            if fixed != t:
                note("whitespace")
                t = fixed
        return t

    def _unrepaired(self, t: str) -> Optional[str]:
        c = self.cfg
        n_bad = t.count(_REPLACEMENT)
        if n_bad and n_bad / len(t) > c.max_replacement_ratio:
            return "replacement_chars"
        if c.drop_unrepaired and not t.isascii() and looks_bad(t):
            return "mojibake"
        return None

    # -- records ---------------------------------------------------------------------------------------
    def _apply_schema(self, record: Any) -> tuple[Any, list[str]] | Drop:
        schema = self.cfg.schema
        assert schema is not None
        if not isinstance(record, Mapping):
            return Drop("normalize/not_a_mapping")
        filled = []
        out = None
        for name, spec in schema.items():
            value = record.get(name)
            if value is None:
                if spec.default is not _MISSING:
                    if out is None:
                        out = dict(record)
                    out[name] = copy.deepcopy(spec.default)
                    filled.append(name)
                elif spec.required:
                    return Drop(f"normalize/missing/{name}")
                continue
            if not spec.accepts(value):
                return Drop(f"normalize/bad_type/{name}")
        return (record if out is None else out), filled

    def rewrite(self, ex: Example) -> Example | Drop:
        new = ex
        filled: list[str] = []
        if self.cfg.schema is not None:
            res = self._apply_schema(ex.record)
            if isinstance(res, Drop):
                return res
            rec, filled = res
            if filled:
                new = ex.with_record(rec)
        text = new.text
        if not isinstance(text, str):
            return Drop("normalize/no_text")
        t, changes = self.normalize_text(text)
        if not t.strip():
            return Drop("normalize/empty")
        why = self._unrepaired(t)
        if why is not None:
            return Drop(f"normalize/{why}")
        if changes:
            new = new.with_text(t)
        elif new is ex:
            return ex
        for name in filled:
            new.count(f"normalize/filled/{name}")
        for kind in changes:
            new.count(f"normalize/{kind}")
        return new
