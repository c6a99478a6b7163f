"""Records as JSON: one JSON line per record (quarantine, scan outputs) and best-effort JSON-able values."""
from __future__ import annotations

import datetime
import decimal
import json
import math
import uuid
from typing import Any, Callable, Optional

from .arrays import is_tensor

__all__ = ["iso_duration", "json_line", "to_jsonable"]


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


def iso_duration(td: datetime.timedelta) -> str:
    """``td`` as an ISO 8601 duration in days, hours, minutes and seconds, the form pandas writes and reads back
    (``pd.Timedelta``): every digit kept, down to a pandas ``Timedelta``'s nanoseconds; a negative one is the
    duration with a leading ``-`` (was the repr, ``"datetime.timedelta(seconds=90)"``, until 2026-12-07).

    Example:
        >>> iso_duration(datetime.timedelta(days=1, seconds=90, microseconds=500)), iso_duration(-datetime.timedelta(seconds=3))
        ('P1DT0H1M30.0005S', '-P0DT0H0M3S')
    """
    ns = ((td.days * 86400 + td.seconds) * 1_000_000 + td.microseconds) * 1000 + getattr(td, "nanoseconds", 0)
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    days, ns = divmod(ns, 86400 * 10**9)
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    seconds, ns = divmod(ns, 10**9)
    frac = f".{ns:09d}".rstrip("0") if ns else ""
    return f"{sign}P{days}DT{hours}H{minutes}M{seconds}{frac}S"


#: the types :func:`to_jsonable` returns as they are (exactly these: a subclass goes through the checks)
_SAME = frozenset((str, int, bool, type(None)))


def to_jsonable(obj: Any) -> Any:
    """Best-effort conversion of a record to JSON-able values (tensors to lists, bytes to text, dates and times to
    ISO 8601 strings, durations to ISO 8601 durations (:func:`iso_duration`), decimals to their digits).

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
    if is_tensor(obj):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", errors="replace")
    if isinstance(obj, (datetime.date, datetime.time)):  # a Parquet or datasets timestamp, date or time column
        return obj.isoformat()  # ISO 8601, as pandas and datasets read it back (was the repr until 2026-12-07)
    if isinstance(obj, datetime.timedelta):  # a Parquet duration column (pandas' Timedelta too)
        return iso_duration(obj)
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
