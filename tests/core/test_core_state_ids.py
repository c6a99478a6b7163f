"""Saved state and the ids of fix-ids: hashed ids are a setting, content fingerprints, reused ids and the
quarantine position are checked before anything loads, stream splits survive a resume; DistributedGuard too."""
from __future__ import annotations

import json
import os

import pytest
import torch
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.core.guard_state import guard_settings
from torchdataguard.distributed import DistributedGuard

KEY = "0123456789abcdef-secret"


def rows(n, start=0):
    return [{"id": f"user{i}@example.org", "text": f"row {i % 9} of a corpus with exact copies and filler words"}
            for i in range(start, n)]


def reused_rows():
    """Ten records, then five reusing ids 0-4 with other content (counted under ids/reused)."""
    return rows(10) + [{"id": f"user{i}@example.org", "text": f"other content {i} under a reused id"} for i in range(5)]


def guard(**kw):
    kw.setdefault("device", "cpu")
    kw.setdefault("progress", False)
    kw.setdefault("id_field", "id")
    return tdg.Guard([tdg.ExactDedup()], **kw)


def filled(**kw):
    g = guard(**kw)
    g.filter(reused_rows())
    assert g.report()["counts"]["ids/reused"] == 5
    return g


def positional_guard(**kw):
    return tdg.Guard([tdg.ExactDedup()], device="cpu", progress=False, chunk_size=8, **kw)


def epoch(ds, workers=0):
    return [r for b in DataLoader(ds, batch_size=4, num_workers=workers, collate_fn=list) for r in b]


def assert_refused_and_unchanged(g, state, match):
    before = g.report()
    with pytest.raises(tdg.StateError, match=match):
        g.load_state_dict(state)
    assert g.report() == before  # nothing was loaded, nothing was reset


# -- hash_ids is a setting that changes decisions ---------------------------------------------------------
def test_hash_ids_and_its_key_are_settings_that_must_match(tmp_path):
    g = filled(hash_ids=KEY)
    assert guard_settings(g)["hash_ids"] == "keyed" and len(guard_settings(g)["key_id"]) == 8
    g.save(tmp_path)
    assert KEY not in (tmp_path / "guard_state.json").read_text()  # never the key
    for other in (dict(hash_ids=False), dict(hash_ids=True), dict(hash_ids=KEY[::-1])):
        fresh = guard(**other, max_chars=1000)
        with pytest.raises(tdg.StateError, match="other settings") as err:
            fresh.load(tmp_path)
        msg = str(err.value)
        assert "hash_ids=" in msg or "key_id=" in msg, msg
        assert "max_chars=" in msg  # listed with every other setting that differs, in one error
    same = guard(hash_ids=KEY)
    same.load(tmp_path)
    assert same.filter(reused_rows()) == g.filter(reused_rows()) and same.report()["replayed"] == 15


def test_a_state_saved_before_ids_could_be_hashed_loads_as_unhashed(tmp_path):
    g = filled()
    state = g.state_dict()
    for k in ("hash_ids", "key_id"):
        del state["settings"][k]
    del state["ids"]
    fresh = guard()
    fresh.load_state_dict(state)
    assert fresh.report()["seen"] == g.report()["seen"]
    with pytest.raises(tdg.StateError, match="hash_ids="):
        guard(hash_ids=True).load_state_dict(state)


# -- the ledger's fingerprints and reused ids ------------------------------------------------------------
def test_fingerprints_that_do_not_fit_the_decisions_are_refused():
    g = positional_guard()
    g.filter([f"text number {i}" for i in range(40)])
    state = g.state_dict()
    tensors = state["ledger"]["tensors"]
    # one fingerprint short: loading used to reset every fingerprint to "unknown", so that the next record met
    # under any of these ids was given the saved decision whatever its content
    tensors["memo_dense_fp"] = tensors["memo_dense_fp"][:-1]
    assert_refused_and_unchanged(positional_guard(), state, "memo_dense_fp")
    fp = torch.as_tensor(g.state_dict()["ledger"]["tensors"]["memo_dense_fp"])  # loads take tensors or arrays
    for bad in (torch.zeros_like(fp).to(torch.int32), -fp.abs() - 1, (-fp.abs() - 1).numpy(), fp.numpy()[:-1]):
        state = g.state_dict()
        state["ledger"]["tensors"]["memo_dense_fp"] = bad
        assert_refused_and_unchanged(positional_guard(), state, "memo_dense_fp")
    state = g.state_dict()
    fp = state["ledger"]["tensors"]["memo_dense_fp"]
    fp[len(fp) - 1] = 12345  # a fingerprint where no example was decided
    assert_refused_and_unchanged(positional_guard(), state, "no decision")


def test_record_fingerprints_are_pinned():
    """Saved decisions find their records again only while the fingerprint of a record stays the same value:
    a change of hash or serialisation must come with a new FINGERPRINT tag (and these values updated)."""
    from torchdataguard.core.ids import FINGERPRINT, record_fingerprint

    assert FINGERPRINT == "xxh3-63"
    assert record_fingerprint("hello") == 2587518040540338373
    assert record_fingerprint({"id": 1, "text": "hello"}) == 8016016985816201180  # a flat dict
    assert record_fingerprint({1: "a"}) == 4124647097448603728  # not JSON-keyed: the typed walk
    assert record_fingerprint(("hello",)) == 26597600526354803
    assert record_fingerprint({"id": 1, "text": None}) == record_fingerprint({"text": None, "id": 1})  # JSON
    # a str, its JSON and its walk are three serialisations, each with its own seed
    assert len({record_fingerprint("x"), record_fingerprint({"x": None}), record_fingerprint(["x"])}) == 3


def test_flat_dict_fingerprints_tell_every_record_apart():
    """The flat-dict serialisation is length-prefixed: records that would run together as plain text differ."""
    from torchdataguard.core.ids import record_fingerprint

    records = [{"a": "bc"}, {"ab": "c"}, {"a": "b", "c": ""}, {"a": "b:c"}, {"a:b": "c"}, {"a": 1}, {"a": "1"},
               {"a": True}, {"a": 1.0}, {"a": -1}, {"a": "1;"}, {"a": 12}, {"a1": 2}, {"a": 1, "b": 2},
               {"a": "1", "b": 2}, {"a": "s1:x"}, {"as1": ":x"}, {}, {"": ""}, {"a": "\u00e9"}, {"a": "e\u0301"},
               {"a": "\ud800"}, {1: "a"}, {"1": "a"}, {"a": None}]
    fps = [record_fingerprint(r) for r in records]
    assert len(set(fps)) == len(records)
    assert record_fingerprint({"b": "x", "a": 2}) == record_fingerprint({"a": 2, "b": "x"})


def _legacy_state(state):
    """``state`` as the version before XXH3 fingerprints saved it: BLAKE2b fingerprints, no tag."""
    from torchdataguard.core.ids import blake2b_record_fingerprint, record_fingerprint

    fp = state["ledger"]["tensors"]["memo_dense_fp"]
    to_old = {}
    for t in TEXTS:
        to_old[record_fingerprint(t)] = blake2b_record_fingerprint(t)
    state["ledger"]["tensors"]["memo_dense_fp"] = torch.tensor([to_old.get(int(v), 0) for v in fp.tolist()],
                                                               dtype=torch.int64)
    del state["ledger"]["meta"]["memo_fingerprint"]
    return state


TEXTS = [f"text number {i}" for i in range(40)]


def test_a_state_with_blake2b_fingerprints_resumes_with_blake2b():
    """A state saved before XXH3 (BLAKE2b fingerprints, no tag) is resumed with BLAKE2b: its decisions are
    replayed to the same content, other content under a saved id is its own example, and it saves its tag."""
    g = positional_guard()
    g.filter(TEXTS[:30])
    old = _legacy_state(g.state_dict())
    g2 = positional_guard()
    g2.load_state_dict(old)
    assert g2.ledger.memo.scheme == "blake2b-63"
    out = list(g2.process(TEXTS[:30] + ["other content"] + TEXTS[31:], ids=range(40)))
    rep = g2.report()
    assert rep["replayed"] == 30 and rep["seen"] == 40  # with XXH3 the 30 would not be found: 30 reused ids
    assert rep["counts"].get("ids/reused", 0) == 0
    assert sum(1 for _, _, replayed in out if replayed) == 30
    assert g2.state_dict()["ledger"]["meta"]["memo_fingerprint"] == "blake2b-63"


def test_a_stream_wrapped_before_a_blake2b_state_is_loaded_fingerprints_with_blake2b():
    from conftest import ListStream

    g = positional_guard()
    g.filter(TEXTS[:30])
    old = _legacy_state(g.state_dict())
    g2 = positional_guard()
    stream = g2.wrap(ListStream(TEXTS[:30]))  # wrapped first, as a Trainer resuming from a checkpoint does
    g2.load_state_dict(old)
    assert len(list(stream)) == 30
    assert g2.report()["replayed"] == 30 and g2.report()["seen"] == 30


@pytest.mark.parametrize("tag", ["sha3-99", ["x"], {"a": 1}, None, 7])
def test_an_unknown_fingerprint_tag_is_refused(tag):
    g = positional_guard()
    g.filter(TEXTS)
    state = g.state_dict()
    state["ledger"]["meta"]["memo_fingerprint"] = tag
    assert_refused_and_unchanged(positional_guard(), state, "later version")


def test_a_blake2b_state_that_saw_nothing_stays_blake2b():
    """A rank of a DistributedGuard that saw no record saved an empty fingerprint tensor: it must resume with
    the same hash as the ranks that saw records, or records moving between ranks are not found as replays
    (review finding: it switched to XXH3 and exact dedup dropped replays as duplicates of themselves)."""
    g = positional_guard()
    state = g.state_dict()
    del state["ledger"]["meta"]["memo_fingerprint"]
    g2 = positional_guard()
    g2.load_state_dict(state)
    assert g2.ledger.memo.scheme == "blake2b-63"
    del state["ledger"]["tensors"]["memo_dense_fp"]  # from before fingerprints: nothing to match, this version's
    g3 = positional_guard()
    g3.load_state_dict(state)
    assert g3.ledger.memo.scheme == "xxh3-63"


def test_states_saved_before_fingerprints_still_load():
    """Without any fingerprint (states older than fingerprints) the hash does not matter: still loaded."""
    g = positional_guard()
    g.filter([f"text number {i}" for i in range(40)])
    state = g.state_dict()
    del state["ledger"]["tensors"]["memo_dense_fp"]
    del state["ledger"]["meta"]["memo_fingerprint"]
    g2 = positional_guard()
    g2.load_state_dict(state)
    assert g2.report()["seen"] == 40


@pytest.mark.parametrize("edit", ["orphan", "own_fingerprint", "twice", "count", "code", "sparse_fp"])
def test_examples_under_reused_ids_are_checked(edit):
    g = filled()
    state = g.state_dict()
    meta = state["ledger"]["meta"]
    assert len(meta["memo_other"]) == 5 and meta["counts"]["ids/reused"] == 5
    first = {row[0]: row[2] for row in meta["memo_sparse"]}
    if edit == "orphan":  # an id no example was first met under
        meta["memo_other"][0][0] = "nobody@example.org"
    elif edit == "own_fingerprint":  # the first example's own content listed as "other"
        meta["memo_other"][0][1] = first[meta["memo_other"][0][0]]
    elif edit == "twice":
        meta["memo_other"][1] = list(meta["memo_other"][0])
    elif edit == "count":
        meta["counts"]["ids/reused"] = 4
    elif edit == "code":
        meta["memo_other"][0][2] = 5
    else:
        meta["memo_sparse"][0][2] = -1
    fresh = guard()
    fresh.filter(rows(103, 100))
    assert_refused_and_unchanged(fresh, state, "memo_other|memo_sparse|ids/reused|decisions")


def test_a_reused_id_edited_in_the_file_is_refused_by_the_checksum(tmp_path):
    filled().save(tmp_path)
    path = tmp_path / "guard_state.json"
    rec = json.loads(path.read_text())
    rec["state"]["ledger"]["meta"]["memo_other"][0][2] = 3 - rec["state"]["ledger"]["meta"]["memo_other"][0][2]
    path.write_text(json.dumps(rec))
    with pytest.raises(tdg.StateError, match="checksum"):
        guard().load(tmp_path)


# -- the quarantine file --------------------------------------------------------------------------------
def test_a_quarantine_file_that_does_not_match_is_refused_before_anything_changes(tmp_path):
    g = filled(quarantine=tmp_path / "a.jsonl")
    g.save(tmp_path / "state")
    g.close()
    h = guard(quarantine=tmp_path / "b.jsonl")
    h.filter(rows(130, 100))
    before = h.report()
    with pytest.raises(tdg.StateError, match="quarantine"):
        h.load(tmp_path / "state")
    assert h.report() == before  # used to be reset to an empty guard
    h.close()
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == before["dropped"]  # its own file untouched


def test_a_quarantine_position_past_the_drops_is_refused():
    g = filled(quarantine=None)
    state = g.state_dict()
    state["ledger"]["meta"]["quarantine"] = {"lines": state["ledger"]["meta"]["dropped"] + 1, "bytes": 10 ** 6}
    assert_refused_and_unchanged(guard(), state, "quarantine")


def _in_child_killed_at(point, fn):
    """Run ``fn`` in a forked child that is SIGKILLed before its ``point``-th file-system step of a save."""
    import signal

    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            calls = {"n": 0}

            def wrap(f):
                def inner(*a, **k):
                    if calls["n"] == point:
                        os.kill(os.getpid(), signal.SIGKILL)
                    calls["n"] += 1
                    return f(*a, **k)
                return inner

            for name in ("replace", "fsync", "remove"):
                setattr(os, name, wrap(getattr(os, name)))
            fn()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_the_quarantine_continues_from_whichever_save_a_kill_left(tmp_path):
    for point in range(0, 12, 2):
        d, q = tmp_path / f"p{point}", tmp_path / f"q{point}.jsonl"
        g = guard(quarantine=q)
        g.filter(rows(60))
        g.save(d)

        def more():
            g.filter(rows(120, 60))
            g.save(d)  # killed before one of its file-system steps: the old state or the new one stays
            g.filter(rows(150, 120))  # lost with the process
            g.ledger.quarantine.flush()

        _in_child_killed_at(point, more)
        h = guard(quarantine=q)
        h.load(d)
        assert h.report()["seen"] in (60, 120)
        h.filter(rows(200, 60))
        h.close()
        lines = [json.loads(x) for x in q.read_text().splitlines()]
        assert len(lines) == h.report()["dropped"] == 200 - 9
        assert len({r["id"] for r in lines}) == len(lines)  # every drop once
        g.close()


# -- stream splits ---------------------------------------------------------------------------------------
def test_stream_splits_survive_a_resume_and_bad_ones_are_refused(tmp_path, list_stream):
    g = positional_guard()
    ds = g.wrap(list_stream([f"record {i}" for i in range(20)]))
    epoch(ds, 2)
    assert g.state_dict()["ids"] == {"splits": {"": 2}}
    g.save(tmp_path)
    g.close()
    h = positional_guard()
    h.load(tmp_path)
    with pytest.raises(tdg.ConfigError, match="num_workers=2"):
        epoch(h.wrap(list_stream([f"record {i}" for i in range(20)])), 0)
    h.close()
    for bad in ({"splits": {"": 0}}, {"splits": {"": "2"}}, {"splits": [2]}, [1]):
        state = g.state_dict()
        state["ids"] = bad
        fresh = positional_guard()
        fresh.filter(["a", "b"])
        assert_refused_and_unchanged(fresh, state, "splits|ids")


# -- DistributedGuard ------------------------------------------------------------------------------------
def test_distributed_parts_check_hash_ids_fingerprints_and_the_quarantine(tmp_path):
    dg = DistributedGuard(guard(hash_ids=True, quarantine=tmp_path / "q.jsonl"))  # a world of one
    list(dg.process(reused_rows()))
    dg.save(tmp_path / "ckpt")
    state = dg.state_dict()
    dg.guard.close()
    assert state["guard"]["settings"]["hash_ids"] == "plain"
    with pytest.raises(tdg.StateError, match="hash_ids="):
        DistributedGuard(guard(quarantine=tmp_path / "q.jsonl")).load(tmp_path / "ckpt")
    with pytest.raises(tdg.StateError, match="quarantine"):
        DistributedGuard(guard(hash_ids=True, quarantine=tmp_path / "other.jsonl")).load(tmp_path / "ckpt")
    bad = dg.state_dict()
    bad["guard"]["ledger"]["meta"]["memo_other"][0][0] = "h:" + "0" * 32
    fresh = DistributedGuard(guard(hash_ids=True))
    with pytest.raises(tdg.StateError, match="memo_other"):
        fresh.load_state_dict(bad)
    assert fresh.guard.report()["seen"] == 0
    resumed = DistributedGuard(guard(hash_ids=True, quarantine=tmp_path / "q.jsonl"))
    resumed.load(tmp_path / "ckpt")
    list(resumed.process(reused_rows() + rows(40, 10)))
    resumed.guard.close()
    rep = resumed.guard.report()
    lines = (tmp_path / "q.jsonl").read_text().splitlines()
    assert rep["replayed"] == 15 and len(lines) == rep["dropped"]
    assert "@example.org" not in "".join(lines)  # hashed ids in the quarantine file too


def test_persistent_workers_started_before_a_blake2b_state_is_loaded_are_refused():
    """Workers pickled before guard.load() of an older (BLAKE2b) state fingerprint with XXH3; their chunks are
    refused with a StateError that says what to do, instead of deciding replays as new examples (review)."""
    from conftest import ListStream
    from torchdataguard.core.ids import blake2b_record_fingerprint, record_fingerprint

    recs = [{"id": f"r{i}", "text": f"record number {i} with some words"} for i in range(24)]
    g = guard()
    g.filter(recs)
    state = g.state_dict()
    to_old = {record_fingerprint(r): blake2b_record_fingerprint(r) for r in recs}
    memo = state["ledger"]["meta"]
    memo["memo_sparse"] = [[k, v, to_old[f]] for k, v, f in memo["memo_sparse"]]
    del memo["memo_fingerprint"]
    g2 = guard()
    dl = DataLoader(g2.wrap(ListStream(recs, per_worker=True)), batch_size=4, num_workers=2,
                    persistent_workers=True, collate_fn=list)
    assert len([r for b in dl for r in b]) == 24
    g2.load_state_dict(state)
    with pytest.raises(Exception, match="workers started before the guard's state was loaded"):
        [r for b in dl for r in b]


def test_fingerprint_shortcuts_equal_the_general_serialisation():
    """record_fingerprint answers plain str and flat dict records without the serialisation dispatch; every record
    still gets the hash of the serialisation _serialised chooses for it (str subclasses, OrderedDicts, dicts with
    str-subclass keys or values, bools and huge ints, nested and non-str-keyed dicts, lone surrogates)."""
    import collections

    import xxhash

    from torchdataguard.core.ids import _MASK63, _SEEDS, _serialised, record_fingerprint

    class S(str):
        pass

    records = ["", "hello", "caf\u00e9 \U0001f600", "\ud800 lone", S("sub"), {"id": 1, "text": "a"}, {"text": S("b")},
               {S("k"): "v"}, {"id": True, "text": "a"}, {"id": 10 ** 30, "text": "a"}, {"id": 1.0, "text": "a"},
               collections.OrderedDict(id=1, text="a"), {"a": {"b": 1}}, {1: "a", "b": 2}, {"t": None}, {}, b"raw", 7,
               None, ["a", 1], ("a",)]
    for rec in records:
        kind, data = _serialised(rec)
        assert record_fingerprint(rec) == ((xxhash.xxh3_64_intdigest(data, _SEEDS[kind]) & _MASK63) or 1), repr(rec)


def test_explicit_unhashable_ids_are_refused_by_position_and_type_not_value():
    import torchdataguard as tdg
    from torchdataguard.errors import GuardInputError

    g = tdg.Guard([tdg.ExactDedup()], progress=False)
    with pytest.raises(GuardInputError, match=r"ids\[1\] is a list") as err:
        list(g.process(["a", "b"], ids=[1, ["secret@example.org"]]))
    assert "secret" not in str(err.value)
    assert [d is None for _, d, _ in g.process(["a", "a"], ids=[(1, 2), (3, 4)])] == [True, False]


def test_two_field_records_take_the_same_flat_bytes_as_any_other_flat_record():
    """The two-field fast path of ``_flat`` gives the bytes of the general rule (key order, length prefixes),
    and leaves what the rule refuses (bool, float, None values; non-str keys) to it."""
    import random

    from torchdataguard.core.ids import _flat

    def reference(rec):
        try:
            keys = sorted(rec)
        except TypeError:
            return None
        out = ""
        for k in keys:
            v = rec[k]
            if type(k) is not str or type(v) not in (str, int):
                return None
            out += f"{len(k)}:{k}s{len(v)}:{v}" if type(v) is str else f"{len(k)}:{k}i{v};"
        return out.encode("utf-8", "surrogatepass")

    rng = random.Random(0)
    keys = ["id", "text", "a", "zz", "é", "t\ud800", 3]
    values = [lambda: rng.randint(-10**20, 10**20), lambda: "x" * rng.randint(0, 3), lambda: "\ud800b",
              lambda: True, lambda: None, lambda: 1.5]
    for _ in range(5000):
        a, b = rng.sample(keys, 2)
        rec = {a: rng.choice(values)(), b: rng.choice(values)()}
        assert _flat(rec) == reference(rec), rec
    assert _flat({"text": "hi", "id": 7}) == _flat({"id": 7, "text": "hi"}) == b"2:idi7;4:texts2:hi"
