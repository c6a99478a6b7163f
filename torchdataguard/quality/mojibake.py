"""The normalize stage's mojibake repair (``ftfy``), called only on the lines it could change.

``ftfy.fix_text`` with the stage's configuration (:func:`ftfy_config`: encoding repairs only) repairs a text in
independent segments, its lines, and returns a segment as it is unless

* ftfy's mojibake heuristic (``ftfy.badness.BADNESS_RE``) matches in it (the encoding repair starts only then),
* or it holds a C1 control character (``fix_c1_controls``) or a surrogate code point (``fix_surrogates``).

Every branch of ``BADNESS_RE`` must match one character of a fixed set (``Ã``, ``¤``, ``€``, U+FFFD, box
drawing...), and no match is longer than a few characters. :func:`gate_pattern` reads that set and that
length out of ftfy's own pattern (adding the C1 controls and surrogates), and :func:`fix_lines` hands to
ftfy only the lines where the heuristic matches close to such a character, or that hold a C1 control or a
surrogate; every other line is returned as it is, which is what ftfy would return. On e-mails this skips
almost all of ftfy's work; tests compare :func:`fix_lines` with :func:`fix_lines_plain` (ftfy on every
non-ASCII line) and :func:`looks_bad` with ``is_bad`` on real and random texts.

Example:
    >>> fix_lines("fine line\\nThe Mona Lisa doesnâ€™t have eyebrows.\\n", ftfy_config())
    'fine line\\nThe Mona Lisa doesn’t have eyebrows.\\n'
"""
from __future__ import annotations

import re
from typing import Any, Dict, FrozenSet, List, Optional, Tuple

__all__ = ["fix_lines", "fix_lines_plain", "ftfy_config", "gate_pattern", "looks_bad"]

_UNSET: Any = object()
_GATE: Any = _UNSET  # (gate pattern, longest match), None when they cannot be derived (then no shortcut)
_C1_AND_SURROGATES = "\x80-\x9f\ud800-\udfff"
_FTFY_FIXES_ALONE = re.compile(f"[{_C1_AND_SURROGATES}]")  # changed by ftfy wherever they stand
_LONGEST = 64  # a heuristic with longer (or unbounded) matches gets no shortcut


def ftfy_config() -> Any:
    """The ``ftfy.TextFixerConfig`` of the stage: encoding repairs only (Unicode form, whitespace and control
    characters are the stage's own steps)."""
    import ftfy

    return ftfy.TextFixerConfig(unescape_html=False, remove_terminal_escapes=False, fix_encoding=True,
                                restore_byte_a0=True, replace_lossy_sequences=True, decode_inconsistent_utf8=True,
                                fix_c1_controls=True, fix_latin_ligatures=False, fix_character_width=False,
                                uncurl_quotes=False, fix_line_breaks=False, fix_surrogates=True,
                                remove_control_chars=False, normalization=None, explain=False)


def _parse(pattern: str, flags: int) -> Any:
    try:
        from re import _parser as parser  # type: ignore[attr-defined]  # Python 3.11+
    except ImportError:  # Python 3.10
        import sre_parse as parser  # type: ignore[no-redef]
    return parser.parse(pattern, flags)


def badness_chars(pattern: "re.Pattern[str]") -> Optional[FrozenSet[str]]:
    """A set of characters of which every match of ``pattern`` holds one, or ``None`` when the pattern is not
    an alternation of branches that each have a plain character or character class (no ``\\\\s``, no
    negation) to take it from. For each branch the element with the fewest ASCII characters, then the fewest
    characters, is taken.

    Example:
        >>> sorted(badness_chars(re.compile("ab|[xy]z|c")))
        ['a', 'c', 'z']
    """
    if pattern.flags & re.IGNORECASE:
        return None
    tree = _parse(pattern.pattern, pattern.flags)
    data = list(tree.data)
    if len(data) == 1 and str(data[0][0]) == "BRANCH":
        branches = [list(b.data) for b in data[0][1][1]]
    else:
        branches = [data]
    out: set = set()
    for items in branches:
        best: Optional[FrozenSet[str]] = None
        for op, av in items:
            chars = _element_chars(getattr(op, "name", str(op)), av)
            if chars is not None and (best is None or _cost(chars) < _cost(best)):
                best = chars
        if best is None:
            return None
        out |= best
    return frozenset(out)


def _element_chars(op: str, av: Any) -> Optional[FrozenSet[str]]:
    """The characters one parsed element matches, when it is a literal or a class of literals and ranges."""
    if op == "LITERAL":
        return frozenset(chr(av))
    if op != "IN":
        return None
    chars: set = set()
    for kind, value in av:
        kind = getattr(kind, "name", str(kind))
        if kind == "LITERAL":
            chars.add(chr(value))
        elif kind == "RANGE":
            chars.update(chr(c) for c in range(value[0], value[1] + 1))
        else:  # NEGATE, CATEGORY (\s, \w) ...
            return None
    return frozenset(chars)


def _cost(chars: FrozenSet[str]) -> tuple:
    return (sum(ch.isascii() for ch in chars), len(chars))


def gate_pattern() -> Optional[Tuple["re.Pattern[str]", int]]:
    """``(pattern, width)``: a pattern matching every character that can make ftfy change a line (see the
    module) and the length of the longest match of ftfy's heuristic; ``None`` when they cannot be derived
    from the installed ftfy (then :func:`fix_lines` hands every non-ASCII line to ftfy)."""
    global _GATE
    if _GATE is _UNSET:
        gate = None
        try:
            import ftfy
            from ftfy.badness import BADNESS_RE

            chars = badness_chars(BADNESS_RE) if ftfy.__version__.split(".")[0] == "6" else None
            width = _parse(BADNESS_RE.pattern, BADNESS_RE.flags).getwidth()[1]
            if chars is not None and 0 < width <= _LONGEST:
                body = "".join(sorted(re.escape(ch) for ch in chars if not "\x80" <= ch <= "\x9f"
                                      and not "\ud800" <= ch <= "\udfff"))
                gate = (re.compile(f"[{body}{_C1_AND_SURROGATES}]"), width)
        except Exception:  # noqa: BLE001 - an ftfy whose pattern cannot be read: no shortcut
            gate = None
        _GATE = gate
    return _GATE


def _bad_near(t: str, hits: List[int], width: int, lo: int, hi: int) -> bool:
    """Whether ftfy's heuristic matches in ``t[lo:hi]`` (as a string of its own) with a match that holds one of
    the positions ``hits``: every match holds one (see :func:`badness_chars`) and is at most ``width`` long,
    so only the windows around them are searched. ``lo`` must be 0 or follow a line break when ``^`` matters:
    the heuristic's ``^`` matches only at the start of the searched string, which is the start of ``t``."""
    from ftfy.badness import BADNESS_RE

    seg = t if lo == 0 and hi == len(t) else t[lo:hi]
    n = len(seg)
    start = end = -1
    for h in hits:
        a, b = max(0, h - lo - width + 1), min(n, h - lo + width)
        if a > end:
            if end > start and BADNESS_RE.search(seg, start, end) is not None:
                return True
            start = a
        end = b
    return end > start and BADNESS_RE.search(seg, start, end) is not None


def fix_lines_plain(t: str, config: Any) -> str:
    """``ftfy.fix_text(t, config=config)``, with ftfy called only on the segments that are not ASCII.

    ftfy repairs a text in independent segments: each line (up to and including its ``\\\\n``), cut every
    ``config.max_decode_length`` characters. This cuts the same segments, and an ASCII segment is returned as
    it is: with this configuration (encoding repairs only) ftfy cannot change ASCII text.
    """
    import ftfy

    out: List[str] = []
    pos, n, most = 0, len(t), config.max_decode_length
    while pos < n:
        end = t.find("\n", pos) + 1 or n
        if end - pos > most:
            end = pos + most
        seg = t[pos:end]
        out.append(seg if seg.isascii() else ftfy.fix_text(seg, config=config))
        pos = end
    return "".join(out)


def fix_lines(t: str, config: Any, memo: Optional[Dict[str, str]] = None) -> str:
    """:func:`fix_lines_plain`, with ftfy called only on the lines it could change (see the module).

    ``memo`` (line -> ftfy's result with ``config``), when given, is read and filled: the stage's later rounds
    on the same text meet the lines ftfy left as they were again, and ftfy is a function of the line alone.
    """
    gate = gate_pattern()
    if gate is None or len(t) > config.max_decode_length:  # a longer text may have segments cut inside a line
        return fix_lines_plain(t, config)
    pattern, width = gate
    m = pattern.search(t)
    if m is None:
        return t
    import ftfy

    out: List[str] = []
    pos = 0
    while m is not None:
        start = t.rfind("\n", 0, m.start()) + 1
        end = t.find("\n", m.start()) + 1 or len(t)
        hits = [h.start() for h in pattern.finditer(t, m.start(), end)]
        if _FTFY_FIXES_ALONE.search(t, start, end) is not None or _bad_near(t, hits, width, start, end):
            seg = t[start:end]
            fixed = memo.get(seg) if memo is not None else None
            if fixed is None:
                fixed = ftfy.fix_text(seg, config=config)
                if memo is not None:
                    memo[seg] = fixed
            out.append(t[pos:start])
            out.append(fixed)
            pos = end
        m = pattern.search(t, end)
    if pos == 0:
        return t
    out.append(t[pos:])
    return "".join(out)


def looks_bad(t: str) -> bool:
    """``ftfy.badness.is_bad(t)``: whether ftfy's heuristic still sees mojibake in ``t``, searched only around
    the characters every match needs (see the module)."""
    gate = gate_pattern()
    if gate is None:
        from ftfy.badness import is_bad

        return bool(is_bad(t))
    pattern, width = gate
    hits = [h.start() for h in pattern.finditer(t)]
    return bool(hits) and _bad_near(t, hits, width, 0, len(t))
