"""The Ray scan makes the checks of the local scan (skipped when Ray, an optional extra, is missing): NearDedup
settings under which nothing is compared and a field named in pii.fields that no record holds end the scan as
config errors (exit 2), and other fields still holding personal data are named (report pii_other_fields, stderr).
Before, the Ray scan let every record pass uncompared, scrubbed nothing in the missing field, and said nothing of
the other fields."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from torchdataguard.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from test_io_scan_pii_fields import write_people  # noqa: E402

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                reason="ray is an optional extra (pip install 'torchdataguard[ray]')")


def ray_scan(capsys, *argv):
    code = main([*map(str, argv), "--engine", "ray", "--index-actors", "2", "--chunk-size", "4", "--no-progress"])
    return code, capsys.readouterr().err


def test_ray_scan_makes_the_local_scans_checks(tmp_path, capsys):
    src = tmp_path / "people.csv"
    write_people(src, n=12)
    code, err = ray_scan(capsys, "scan", src, "--stages", "pii,exact", "--out", tmp_path / "o")
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert code == 0 and rep["pii_other_fields"] == {"checked_records": 12, "fields": {"email": 12}, "withheld_names": 0}
    assert "'email' (12 records)" in err and """--set 'pii.fields=["email"]'""" in err
    code, err = ray_scan(capsys, "scan", src, "--stages", "pii,exact", "--out", tmp_path / "f",
                         "--set", 'pii.fields=["e_mail"]')
    assert code == 2 and "reads the field 'e_mail'" in err and "Did you mean 'email'" in err
    assert json.loads((tmp_path / "f" / "report.json").read_text())["status"] == "config_error"
    code, err = ray_scan(capsys, "scan", src, "--stages", "near", "--out", tmp_path / "n",
                         "--set", 'near.shingles="tokens"')
    assert code == 2 and "NearDedup(shingles='tokens')" in err and "the fields ['email', 'id', 'name', 'note', 'text']" in err
