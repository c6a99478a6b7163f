"""Stream the records of a ``.json`` file (a JSON array, or an object holding one array) without loading it.

Elements are decoded one at a time with the standard library's ``json.JSONDecoder.raw_decode`` over a
buffered text reader, so memory is bounded by the largest element (capped at ``max_item_chars``), not by
the file. A file that is not valid JSON ends the stream with a
:class:`~torchdataguard.errors.GuardInputError` that says where, after the elements before the fault have
been yielded.
"""
from __future__ import annotations

import json
from typing import IO, Any, Iterator, List, Optional

from ..errors import ConfigError, GuardInputError

__all__ = ["iter_json_records"]

_WS = " \t\r\n"


class _Cursor:
    """A position in a text stream that reads more only when the parser needs it."""

    def __init__(self, fh: IO[str], *, name: str, block: int = 1 << 16, max_item_chars: int = 1 << 26) -> None:
        self.fh = fh
        self.name = name
        self.block = block
        self.max_item_chars = max_item_chars
        self.buf = ""
        self.pos = 0
        self.base = 0  # characters dropped from the front of ``buf``
        self.eof = False
        self.dec = json.JSONDecoder()

    def at(self) -> int:
        """Character offset in the file."""
        return self.base + self.pos

    def fault(self, what: str) -> GuardInputError:
        end = " (the file is truncated?)" if self.eof and len(self.buf) - self.pos < self.block else ""
        return GuardInputError(f"{self.name} is not a valid JSON file: {what} at character {self.at():,}{end}")

    def more(self, want: int = 0) -> bool:
        """Read at least one more block (``want`` characters when larger); False at the end of the file."""
        if self.eof:
            return False
        if self.pos:
            self.base += self.pos
            self.buf = self.buf[self.pos:]
            self.pos = 0
        chunk = self.fh.read(max(self.block, want))
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end of the file), not consumed."""
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < n:
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            raise self.fault(f"expected {what}, found {'the end of the file' if c == '' else repr(c)}")
        self.pos += 1
        return c

    def value(self) -> Any:
        """Decode the next JSON value, reading more until it is complete (bounded by ``max_item_chars``)."""
        self.peek()
        while True:
            try:
                v, end = self.dec.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # an error at the end of the buffer may only mean the value goes on in the next block
                incomplete = exc.pos >= len(self.buf) - 8 or exc.msg.startswith("Unterminated string")
                if incomplete and self._grow():
                    continue
                self.pos = min(exc.pos, len(self.buf))
                msg = exc.msg[:-3] if exc.msg.endswith(" at") else exc.msg
                raise self.fault(msg) from None
            except RecursionError:  # valid JSON Python cannot decode: the element's end cannot be found either
                raise self.fault("a value nested too deeply for Python's JSON decoder") from None
            except ValueError as exc:  # an integer of more than 4,300 digits (int's conversion limit)
                raise self.fault(f"a value Python's JSON decoder refuses ({str(exc).split(';', 1)[0]})") from None
            if end == len(self.buf) and self._grow():  # a number at the end of a block may have more digits
                continue
            self.pos = end
            return v

    def _grow(self) -> bool:
        pending = len(self.buf) - self.pos
        if pending >= self.max_item_chars:  # a limit of this reader, not a fault of the file (until 2026-12-07 the
            # message said "is not a valid JSON file", and a user re-downloaded a good file)
            raise GuardInputError(f"{self.name}: the value at character {self.at():,} is longer than "
                                  f"{self.max_item_chars:,} characters, the most one element of a .json file may hold "
                                  f"(the limit follows max_chars): raise --max-chars, or convert the file to JSON lines "
                                  f"(an array: jq -c '.[]' {self.name} > records.jsonl), where a text over --max-chars is "
                                  f"dropped as invalid/too_long and the scan goes on")
        return self.more(pending)


def _elements(cur: _Cursor) -> Iterator[Any]:
    """The elements of the array whose '[' was just consumed."""
    if cur.peek() == "]":
        cur.pos += 1
        return
    while True:
        yield cur.value()
        if cur.expect(",]", "',' or ']' after an array element") == "]":
            return


def _object_lists(cur: _Cursor, stream_key: Optional[str]) -> Iterator[Any]:
    """Walk the object whose '{' was just consumed: yield the elements of ``stream_key``'s array, or, when
    ``stream_key`` is None, yield the key of every member whose value is an array (its elements skipped)."""
    if cur.peek() == "}":
        cur.pos += 1
        return
    while True:
        if cur.peek() != '"':
            raise cur.fault("expected a member name in double quotes")
        key = cur.value()
        cur.expect(":", "':' after a member name")
        if cur.peek() == "[":
            cur.pos += 1
            if stream_key is None:
                for _ in _elements(cur):
                    pass
                yield key
            elif key == stream_key:
                yield from _elements(cur)
            else:
                for _ in _elements(cur):
                    pass
        else:
            cur.value()
        if cur.expect(",}", "',' or '}' after an object member") == "}":
            return


def _end(cur: _Cursor) -> None:
    if cur.peek() != "":
        raise cur.fault("extra data after the top-level value")


def iter_json_records(open_text, *, name: str, max_item_chars: int = 1 << 26, block: int = 1 << 16) -> Iterator[Any]:
    """Yield the elements of the JSON array in the file ``open_text()`` opens (a text stream).

    A top-level object must hold exactly one array (``{"data": [...]}``): it is read twice, once to find
    the array, once to stream it. Anything else raises :class:`~torchdataguard.errors.ConfigError`.
    ``block`` characters are read at a time; one element may be up to ``max_item_chars`` long.

    Example:
        >>> import io
        >>> list(iter_json_records(lambda: io.StringIO('[{"text": "a"}, {"text": "b"}]'), name="x.json"))
        [{'text': 'a'}, {'text': 'b'}]
    """
    with open_text() as fh:
        cur = _Cursor(fh, name=name, block=block, max_item_chars=max_item_chars)
        first = cur.peek()
        if first == "[":
            cur.pos += 1
            yield from _elements(cur)
            _end(cur)
            return
        if first != "{":
            if first == "":
                raise cur.fault("the file is empty")
            kind = type(cur.value()).__name__
            raise ConfigError(f"{name} holds a JSON {kind}; expected a list of records (or use .jsonl for one "
                              f"record per line)")
        cur.pos += 1
        lists: List[str] = list(_object_lists(cur, None))
        _end(cur)
    if len(lists) != 1:
        raise ConfigError(f"{name} holds a JSON object; expected a list of records or an object with exactly one "
                          f"list of records (found {len(lists)} lists)")
    with open_text() as fh:
        cur = _Cursor(fh, name=name, block=block, max_item_chars=max_item_chars)
        cur.expect("{", "'{'")
        yield from _object_lists(cur, lists[0])
