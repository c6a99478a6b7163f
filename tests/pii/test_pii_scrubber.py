"""PIIScrubber: actions, keyed pseudonyms, key secrecy, the guard, the CLI, workers and pickling; the quarantine
withholds records dropped before scrubbing; CLI errors never print option values."""
import json
import os
import pickle
import random

import pytest
from torch.utils.data import DataLoader

import torchdataguard as tdg
from torchdataguard.cli import main as cli_main
from torchdataguard.core.stage import Drop, Example
from torchdataguard.errors import ConfigError, StateError
from torchdataguard.pii import KEY_ENV, PIIScrubber, SecretKey
from torchdataguard.pii.synthetic import fake_card, fake_email, fake_iban, fake_secret, fake_ssn

KEY = "test-key-0123456789abcdef-not-a-real-secret"
OTHER_KEY = "another-test-key-fedcba9876543210"
TEXT = ("Contact jane.doe@example.org or +1 (415) 555-0100; card 4111 1111 1111 1111 (bad: 4111 1111 1111 1112), "
        "IBAN GB82 WEST 1234 5698 7654 32, SSN 536-22-1234, host 10.20.30.40, token ghp_"
        "abcdefghijklmnopqrstuvwxyz0123456789.\ndpkg (1.2.3.4) unstable; urgency=low")
VALUES = ["jane.doe@example.org", "+1 (415) 555-0100", "4111 1111 1111 1111", "GB82 WEST 1234 5698 7654 32",
          "536-22-1234", "10.20.30.40", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"]


def ex(text, i=0, **extra):
    rec = {"text": text, **extra}
    return Example(i, rec, text, "text")


def test_redact_default_every_type_and_nothing_else_moves():
    out = PIIScrubber().process(ex(TEXT))
    assert out.text == ("Contact <EMAIL> or <PHONE>; card <CREDIT_CARD> (bad: 4111 1111 1111 1112), IBAN <IBAN>, "
                        "SSN <US_SSN>, host <IPV4>, token <SECRET>.\ndpkg (1.2.3.4) unstable; urgency=low")
    assert out.record == {"text": out.text}
    assert out.counts == {"pii/email": 1, "pii/phone": 1, "pii/credit_card": 1, "pii/iban": 1, "pii/us_ssn": 1,
                          "pii/ipv4": 1, "pii/secret": 1}


def test_characters_around_replacements_are_kept_exactly():
    s = PIIScrubber()
    text = "\t<a@b.io>\u00a0x@y.org,\n(10.0.0.1)…"
    dets = s.detect(text)
    out = s.scrub(text)
    # rebuild the expected text from the detections: every character outside them is untouched
    expected, pos = [], 0
    for d in dets:
        expected += [text[pos:d.start], f"<{d.entity.upper()}>"]
        pos = d.end
    expected.append(text[pos:])
    assert out == "".join(expected) == "\t<<EMAIL>>\u00a0<EMAIL>,\n(<IPV4>)…"


@pytest.mark.parametrize("text", ["schreib müller@firma.de bitte", "josé.garcía@empresa.es", "info@bücher.de."])
def test_email_addresses_in_any_script_are_found(text):
    out = tdg.PIIScrubber().process(Example(0, text, text))
    assert "<EMAIL>" in out.text and "@" not in out.text


def test_no_detection_returns_the_same_example():
    e = ex("nothing to see here, version 1.2.3.4")
    assert PIIScrubber().process(e) is e


def test_pseudonyms_stable_across_instances_and_spellings():
    a = PIIScrubber(actions="pseudonymize", key=KEY)
    b = PIIScrubber(actions="pseudonymize", key=KEY)
    other = PIIScrubber(actions="pseudonymize", key=OTHER_KEY)
    t1 = a.scrub("mail Jane.Doe@Example.org, call +1 (415) 555-0100, card 4111-1111-1111-1111")
    t2 = b.scrub("mail jane.doe@example.org, call 415-555-0100, card 4111111111111111")
    assert t1 == t2
    assert t1.startswith("mail <EMAIL_") and "<PHONE_" in t1 and "<CREDIT_CARD_" in t1
    assert other.scrub("mail jane.doe@example.org") != a.scrub("mail jane.doe@example.org")
    # different values get different tokens; the token length follows pseudonym_length
    assert a.scrub("x@example.com") != a.scrub("y@example.com")
    short = PIIScrubber(actions="pseudonymize", key=KEY, pseudonym_length=8)
    assert len(short.scrub("x@example.com")) == len("<EMAIL_>") + 8


def test_pseudonymize_needs_a_key_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ConfigError, match=KEY_ENV):
        PIIScrubber(actions={"email": "pseudonymize"})
    monkeypatch.setenv(KEY_ENV, KEY)
    from_env = PIIScrubber(actions={"email": "pseudonymize"})
    explicit = PIIScrubber(actions={"email": "pseudonymize"}, key=KEY)
    assert from_env.scrub("a@example.com") == explicit.scrub("a@example.com")


def test_short_or_wrong_keys_are_refused_without_echoing_them():
    with pytest.raises(ConfigError) as err:
        PIIScrubber(actions="pseudonymize", key="hunter2")
    assert "hunter2" not in str(err.value) and "16 bytes" in str(err.value)
    with pytest.raises(ConfigError) as err:
        PIIScrubber(actions="pseudonymize", key=12345678901234567890)
    assert "12345678901234567890" not in str(err.value)


def test_key_never_in_repr_config_state_report_or_errors(tmp_path):
    s = PIIScrubber(actions={"default": "pseudonymize", "secret": "drop"}, key=KEY)
    g = tdg.Guard([s], device="cpu", progress=False, quarantine=tmp_path / "dropped.jsonl")
    kept = g.wrap([TEXT.replace("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", ""), TEXT, "plain text"])
    g.save_report(tmp_path)
    g.save(tmp_path / "state")
    blobs = [repr(s), str(s.config()), json.dumps(s.state_dict()), repr(g), json.dumps(g.report()),
             (tmp_path / "report.json").read_text(), str(s._key), repr(s._key)]
    blobs += [p.read_text(errors="replace") for p in (tmp_path / "state").iterdir() if p.suffix == ".json"]
    for b in blobs:
        assert KEY not in b
        assert KEY.encode().hex() not in b
    report = json.dumps(g.report())
    for v in VALUES:  # reports count detections, never their values
        assert v not in report
    assert g.report()["counts"]["pii/email"] == 1
    assert g.report()["dropped_by_reason"] == {"pii/secret": 1}
    assert s.config()["key_id"] == SecretKey(KEY).key_id != SecretKey(OTHER_KEY).key_id
    assert len(kept) == 2 and all(v not in kept[0] for v in VALUES)


def test_actions_drop_keep_and_per_type_mapping():
    s = PIIScrubber(actions={"default": "keep", "email": "redact", "us_ssn": "drop"})
    assert s.process(ex("SSN 536-22-1234")) == Drop("pii/us_ssn")
    out = s.process(ex("a@example.com from 10.0.0.1"))
    assert out.text == "<EMAIL> from 10.0.0.1"
    assert out.counts == {"pii/email": 1, "pii/ipv4": 1}  # kept detections are counted too
    only = PIIScrubber(entities=["email"])
    assert only.scrub("a@example.com from 10.0.0.1") == "<EMAIL> from 10.0.0.1"
    assert PIIScrubber(actions="drop").scrub("a@example.com") == "<EMAIL>"  # scrub() has no record to drop


def test_bad_settings_are_listed():
    with pytest.raises(ConfigError) as err:
        PIIScrubber(actions={"emails": "redact", "phone": "burn"}, pseudonym_length=4)
    msg = str(err.value)
    assert "'emails'" in msg and "'burn'" in msg and "pseudonym_length=4" in msg and "3 problem" in msg
    with pytest.raises(ConfigError, match="ner=True"):
        PIIScrubber(actions={"person": "redact"})
    with pytest.raises(ConfigError, match="single string"):
        PIIScrubber(entities="email")


def test_extra_fields_are_scrubbed_and_counted():
    s = PIIScrubber(fields=("subject", "n"))
    e = ex("write to a@example.com", subject="from b@example.com", n=3)
    out = s.process(e)
    assert out.record == {"text": "write to <EMAIL>", "subject": "from <EMAIL>", "n": 3}
    assert out.counts == {"pii/email": 2}
    assert e.record["subject"] == "from b@example.com"  # the input is not mutated


def test_non_text_input_is_dropped_with_a_reason():
    assert PIIScrubber().process(Example(0, {"x": 1})) == Drop("invalid/no_text")
    g = tdg.Guard([PIIScrubber()], device="cpu", progress=False)
    assert g.wrap([{"text": 5}, {"text": "ok a@example.com"}]) == [{"text": "ok <EMAIL>"}]
    assert g.report()["dropped_by_reason"] == {"invalid/not_string": 1}
    with pytest.raises(ConfigError):
        PIIScrubber().scrub(b"bytes")


def test_pickle_round_trip_after_use_gives_identical_output():
    s = PIIScrubber(actions="pseudonymize", key=KEY)
    before = s.scrub(TEXT)  # builds the per-process HMAC template, which must not be pickled
    clone = pickle.loads(pickle.dumps(s))
    assert clone._mac is None
    assert clone.scrub(TEXT) == before
    assert clone.config() == s.config()


def test_state_dict_round_trip_and_key_mismatch_refused():
    s = PIIScrubber(actions="pseudonymize", key=KEY)
    state = json.loads(json.dumps(s.state_dict()))
    PIIScrubber(actions="pseudonymize", key=KEY).load_state_dict(state)
    with pytest.raises(StateError) as err:
        PIIScrubber(actions="pseudonymize", key=OTHER_KEY).load_state_dict(state)
    assert "key_id" in str(err.value) and KEY not in str(err.value) and OTHER_KEY not in str(err.value)
    PIIScrubber().load_state_dict({})


# -- through the guard and the data wrappers -----------------------------------------------------------------------
def _records(n=40, seed=0):
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            rows.append({"text": f"mail {fake_email(rng)} please", "i": i})
        elif kind == 1:
            rows.append({"text": f"card {fake_card(rng, 'visa')} ok", "i": i})
        elif kind == 2:
            rows.append({"text": f"iban {fake_iban(rng, 'FR')} ok", "i": i})
        elif kind == 3:
            rows.append({"text": f"ssn {fake_ssn(rng)} and {fake_secret(rng, 'aws')}", "i": i})
        else:
            rows.append({"text": f"clean row number {i}", "i": i})
    return rows


def _expected(rows, scrubber):
    return [{"text": scrubber.scrub(r["text"]), "i": r["i"]} for r in rows]


def test_guard_wrap_list_map_style_and_counts(list_dataset):
    rows = _records()
    s = PIIScrubber(actions="pseudonymize", key=KEY)
    want = _expected(rows, s)
    g = tdg.Guard([s], device="cpu", progress=False)
    assert g.wrap(rows) == want
    rep = g.report()
    assert rep["counts"] == {"pii/credit_card": 8, "pii/email": 8, "pii/iban": 8, "pii/secret": 8, "pii/us_ssn": 8}
    g2 = tdg.Guard([PIIScrubber(actions="pseudonymize", key=KEY)], device="cpu", progress=False)
    ds = g2.wrap(list_dataset(rows))
    assert [ds[i] for i in range(len(ds))] == want
    assert rows[0]["text"].startswith("mail ") and "@" in rows[0]["text"]  # the source is untouched


def test_guard_wrap_iterable_with_dataloader_workers(list_stream):
    rows = _records(30, seed=1)
    s = PIIScrubber(actions="pseudonymize", key=KEY)
    want = sorted(_expected(rows, s), key=lambda r: r["i"])
    g = tdg.Guard([s], device="cpu", progress=False, chunk_size=4)
    loader = DataLoader(g.wrap(list_stream(rows, per_worker=True)), batch_size=None, num_workers=2)
    got = sorted(loader, key=lambda r: int(r["i"]))
    assert got == want
    g.close()


def test_guard_wrap_hf_dataset():
    datasets = pytest.importorskip("datasets")
    rows = _records(20, seed=2)
    ds = datasets.Dataset.from_list(rows)
    s = PIIScrubber(actions={"default": "redact", "secret": "drop"})
    g = tdg.Guard([s], device="cpu", progress=False)
    out = g.wrap(ds)
    assert isinstance(out, datasets.Dataset)
    want = [r for r in _expected(rows, s) if "<SECRET>" not in r["text"]]
    assert out.to_list() == want
    assert g.report()["dropped_by_reason"] == {"pii/secret": 4}


def test_cli_scan_with_pii_stage(tmp_path, monkeypatch):
    rows = _records(15, seed=3)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv(KEY_ENV, KEY)
    rc = cli_main(["scan", str(src), "--out", str(tmp_path / "out"), "--stages", "pii", "--no-progress",
                   "--device", "cpu", "--set", 'pii.actions={"default": "redact", "email": "pseudonymize"}'])
    assert rc == 0
    kept = [json.loads(x) for x in (tmp_path / "out" / "kept.jsonl").read_text().splitlines()]
    s = PIIScrubber(actions={"default": "redact", "email": "pseudonymize"}, key=KEY)
    assert kept == _expected(rows, s)
    report_text = (tmp_path / "out" / "report.json").read_text()
    report = json.loads(report_text)
    assert report["counts"]["pii/email"] == 3
    assert KEY not in report_text
    for r in rows:
        for token in r["text"].split():
            if "@" in token:
                assert token not in report_text


def test_cli_refuses_pseudonymize_without_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(KEY_ENV, raising=False)
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a@example.com"}\n')
    rc = cli_main(["scan", str(src), "--out", str(tmp_path / "out"), "--stages", "pii", "--no-progress",
                   "--device", "cpu", "--set", 'pii.actions="pseudonymize"'])
    assert rc == 2
    assert KEY_ENV in capsys.readouterr().err


def test_quarantine_withholds_records_dropped_before_the_pii_stage(tmp_path):
    q = tmp_path / "q.jsonl"
    g = tdg.Guard([tdg.ExactDedup(), tdg.PIIScrubber()], device="cpu", progress=False, quarantine=q)
    g.filter([{"text": "write to jane.doe@example.org"}, {"text": "write to jane.doe@example.org"}])
    g.close()
    row = json.loads(q.read_text())
    assert row["reason"] == "duplicate/exact" and row["record"] is None and "jane" not in q.read_text()
    q2 = tmp_path / "q2.jsonl"
    g2 = tdg.Guard([tdg.PIIScrubber(), tdg.ExactDedup()], device="cpu", progress=False, quarantine=q2)
    g2.filter([{"text": "write to jane.doe@example.org"}, {"text": "write to jane.doe@example.org"}])
    g2.close()
    row2 = json.loads(q2.read_text())
    assert row2["record"]["text"] == "write to <EMAIL>"  # dropped after scrubbing: safe to write


def test_cli_errors_never_print_option_values(tmp_path, capsys):
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps({"text": "hello"}) + "\n")
    code = cli_main(["scan", str(p), "--out", str(tmp_path / "o"), "--stages", "pii", "--device", "cpu",
                 "--set", "pii.key=supersecretkey-1234567890", "--set", "pii.entity=email"])
    assert code == 2
    assert "supersecretkey" not in capsys.readouterr().err
