"""A scan keeps the cyclic collector paused for its whole pass, the records' reading and writing included
(core/gcpause.py: between its chunks a scan runs no user code), resumes it after, and leaves a disabled one
alone; the outputs do not depend on it."""
from __future__ import annotations

import gc
import json

import torchdataguard.scan.local as local
from torchdataguard.scan.local import scan


def _input(tmp_path, n=300):
    p = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "text": f"record number {i % 250} of the input"}) for i in range(n)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


def _watched_reader(monkeypatch):
    """Stand a reader in that notes whether the collector was enabled as each record was read."""
    seen = []
    real = local.readers.read_records

    def reading(*a, **kw):
        for rec in real(*a, **kw):
            seen.append(gc.isenabled())
            yield rec

    monkeypatch.setattr(local.readers, "read_records", reading)
    return seen


def test_the_scan_reads_and_writes_with_the_collector_paused_and_resumes_it(tmp_path, monkeypatch):
    seen = _watched_reader(monkeypatch)
    assert gc.isenabled()
    rep = scan(_input(tmp_path), str(tmp_path / "out"), stages=["exact"], id_field="id", device="cpu",
               progress=False, chunk_size=64)  # several chunks: records read between them too
    assert rep["dropped_by_reason"] == {"duplicate/exact": 50} and len(seen) == 300
    assert not any(seen) and gc.isenabled()
    kept = (tmp_path / "out" / "kept.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(k)["id"] for k in kept] == list(range(250))


def test_a_collector_the_caller_disabled_stays_disabled(tmp_path, monkeypatch):
    seen = _watched_reader(monkeypatch)
    gc.disable()
    try:
        scan(_input(tmp_path, 20), str(tmp_path / "out"), stages=["exact"], device="cpu", progress=False)
        assert not gc.isenabled() and len(seen) == 20 and not any(seen)
    finally:
        gc.enable()
