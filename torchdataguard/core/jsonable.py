"""Records as JSON: one JSON line per record (quarantine, scan outputs) and best-effort JSON-able values."""
from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from typing import Any, Callable, Optional

import torch

__all__ = ["json_line", "to_jsonable"]


#: what ``json.dumps(obj, ensure_ascii=False)`` uses, made once (its settings are all it holds)
_UTF8 = json.JSONEncoder(ensure_ascii=False)


def _c_encoder() -> Optional[Callable[[Any, int], Any]]:
    """The C encoder that ``_UTF8.encode`` builds at every call, built once, without the check for reference
    cycles (the values written are :func:`to_jsonable`'s copies or flat records: a cycle never reaches it);
    ``None`` where Python has no C encoder or it does not write what ``_UTF8`` writes."""
    try:
        from json.encoder import c_make_encoder, encode_basestring

        enc = c_make_encoder(None, _UTF8.default, encode_basestring, None, _UTF8.key_separator,
                             _UTF8.item_separator, False, False, True)
        probe = {"id": 1, "t": "é\u2028\"x\"", "f": [0.1, float("nan"), -1e300], "n": None, "b": True}
        return enc if "".join(enc(probe, 0)) == _UTF8.encode(probe) else None
    except Exception:  # noqa: BLE001 - no C encoder, or another signature: the encoder's own path
        return None


_C_UTF8 = _c_encoder()


def json_line(obj: Any) -> str:
    """One JSON line, UTF-8 where possible; strings with lone surrogates are written as escapes."""
    # json.dumps(obj, ensure_ascii=False): the encoder's C function called at once (it makes the same text)
    line = "".join(_C_UTF8(obj, 0)) if _C_UTF8 is not None and type(obj) is not str else _UTF8.encode(obj)
    if line.isascii():  # the usual line: nothing to check
        return line
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(obj, ensure_ascii=True)
    return line


#: the types :func:`to_jsonable` returns as they are (exactly these: a subclass goes through the checks)
_SAME = frozenset((str, int, bool, type(None)))


def _iso_duration(td: datetime.timedelta) -> str:
    """``td`` as an ISO 8601 duration, as ``pandas.Timedelta`` reads it back: ``P1DT2H3M4.5S``, ``-PT3S``.

    Example:
        >>> _iso_duration(datetime.timedelta(days=1, hours=2, minutes=3, seconds=4.5)), _iso_duration(-datetime.timedelta(seconds=3))
        ('P1DT2H3M4.5S', '-PT3S')
    """
    us = (td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds
    sign, us = ("-" if us < 0 else ""), abs(us)
    days, us = divmod(us, 86_400_000_000)
    hours, us = divmod(us, 3_600_000_000)
    minutes, us = divmod(us, 60_000_000)
    seconds, us = divmod(us, 1_000_000)
    sec = f"{seconds}.{us:06d}".rstrip("0") if us else str(seconds)
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{sec}S" if sec != "0" else "")
    return f"{sign}P{f'{days}D' if days else ''}T{clock or '0S'}"


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion of a record to JSON-able values (tensors to lists, bytes to text, dates and times to
    ISO 8601 strings, durations to ISO 8601 durations, decimals to their digits).

    Example:
        >>> import datetime, decimal
        >>> to_jsonable({"ts": datetime.datetime(2024, 1, 2, 3, 4, 5), "price": decimal.Decimal("1.10")})
        {'ts': '2024-01-02T03:04:05', 'price': '1.10'}
    """
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, dict):  # the plain values of a container are taken as they are, without a call each
        return {str(k): v if type(v) in _SAME else to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [v if type(v) in _SAME else to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, (datetime.date, datetime.time)):  # a Parquet or datasets timestamp, date or time column
        return obj.isoformat()  # ISO 8601, as pandas and datasets read it back (was the repr until 2026-12-07)
    if isinstance(obj, datetime.timedelta):  # a Parquet duration column (the repr too until 2026-12-07)
        return _iso_duration(obj)
    if isinstance(obj, (decimal.Decimal, uuid.UUID)):
        return str(obj)  # every digit of a decimal column kept: "1.10"
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        try:
            return obj.item()
        except Exception:  # noqa: BLE001 - fall through to repr
            pass
    return repr(obj)
