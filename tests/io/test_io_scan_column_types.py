"""Columns of a Parquet file (or a saved ``datasets`` folder) that JSON has no type for reach ``kept.jsonl`` and
``dropped.jsonl`` as the strings other tools read back: ISO 8601 dates and times, a decimal's digits.

Until the fifteenth session (2026-12-07) they were written as Python reprs: a timestamp column became
``"datetime.datetime(2024, 1, 1, 12, 0)"`` and a decimal one ``"Decimal('1.10')"`` in every record written, which
``pandas.read_json`` or ``datasets`` then held as text that no date parser reads.
"""
import datetime
import decimal
import json

import pytest

from torchdataguard.cli import main

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def test_dates_times_and_decimals_are_written_as_iso_strings_and_digits(tmp_path, capsys):
    n = 5
    texts = [f"record {i} tells a story about the harbour and its boats" for i in range(n - 1)]
    texts.append(texts[0])  # an exact duplicate: one record in dropped.jsonl
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "text": texts,
        "ts": pa.array([datetime.datetime(2024, 1, 1, 12, 0, i) for i in range(n)], pa.timestamp("us")),
        "ts_utc": pa.array([datetime.datetime(2024, 3, 1, 8, 30, tzinfo=datetime.timezone.utc)] * n,
                           pa.timestamp("ms", tz="UTC")),
        "day": pa.array([datetime.date(2024, 2, i + 1) for i in range(n)]),
        "at": pa.array([datetime.time(9, 15)] * n, pa.time64("us")),
        "price": pa.array([decimal.Decimal("1.10")] * n, pa.decimal128(5, 2)),
    })
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out"
    code = main(["scan", str(src), "--out", str(out), "--stages", "exact", "--device", "cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    kept = [json.loads(line) for line in (out / "kept.jsonl").read_text(encoding="utf-8").splitlines()]
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(kept) == 4 and len(dropped) == 1
    first = kept[0]
    assert first["ts"] == "2024-01-01T12:00:00" and first["day"] == "2024-02-01" and first["at"] == "09:15:00"
    assert first["ts_utc"] == "2024-03-01T08:30:00+00:00" and first["price"] == "1.10"
    assert dropped[0]["record"]["ts"] == "2024-01-01T12:00:04" and dropped[0]["record"]["price"] == "1.10"
    for rec in kept + [dropped[0]["record"]]:
        assert datetime.datetime.fromisoformat(rec["ts"]) and decimal.Decimal(rec["price"]) == decimal.Decimal("1.10")
        assert not any("datetime." in str(v) or "Decimal(" in str(v) for v in rec.values())


def test_a_duration_column_is_written_as_an_iso_8601_duration(tmp_path, capsys):
    """A Parquet duration column came back as ``"datetime.timedelta(seconds=90)"`` after the fix above."""
    durations = [datetime.timedelta(seconds=90), datetime.timedelta(days=1, hours=2, milliseconds=500),
                 -datetime.timedelta(seconds=3)]
    table = pa.table({"id": pa.array(range(3), pa.int64()),
                      "text": [f"record {i} tells a story about the harbour and its boats" for i in range(3)],
                      "took": pa.array(durations, pa.duration("ms"))})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out"
    code = main(["scan", str(src), "--out", str(out), "--stages", "exact", "--device", "cpu", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    kept = [json.loads(line) for line in (out / "kept.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["took"] for r in kept] == ["PT1M30S", "P1DT2H0.5S", "-PT3S"]
    pd = pytest.importorskip("pandas")
    assert [pd.Timedelta(r["took"]).to_pytimedelta() for r in kept] == durations
