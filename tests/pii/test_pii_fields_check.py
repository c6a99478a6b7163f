"""PIIScrubber(fields=...) naming a field that none of the first records holds is refused with the field, the
fields the records hold and the fix. Before, the stage scrubbed nothing in it without a word: a typo in fields=
(or another casing) left every address of that column in the training data."""
import datasets
import pytest
from torch.utils.data import Dataset, IterableDataset

import torchdataguard as tdg
from torchdataguard.cli import main
from torchdataguard.errors import ConfigError

ROWS = [{"text": f"hello {i}", "Subject": f"write to user{i}@example.org", "n": i} for i in range(30)]


def guard(*fields, **kw):
    return tdg.Guard([tdg.PIIScrubber(fields=fields), tdg.ExactDedup()], device="cpu", progress=False, **kw)


class Rows(Dataset):
    def __len__(self):
        return len(ROWS)

    def __getitem__(self, i):
        return ROWS[i]


class Stream(IterableDataset):
    def __iter__(self):
        return iter(ROWS)


@pytest.mark.parametrize("data", [lambda: list(ROWS), Rows, Stream, lambda: datasets.Dataset.from_list(ROWS)])
def test_a_field_no_record_holds_is_refused_with_the_fix(data):
    with pytest.raises(ConfigError, match=r"stage 'pii' reads the field 'subject' \(fields=\), which none of the 30 "
                                          r"records holds.*the fields \['Subject', 'n', 'text'\].*Did you mean "
                                          r"'Subject' \(not 'subject'\)\? .*fields=\('Subject',\)"):
        out = guard("subject").wrap(data())
        list(out)


def test_the_right_field_is_scrubbed_and_a_field_some_records_lack_is_fine():
    assert guard("Subject").wrap(ROWS)[0]["Subject"] == "write to <EMAIL>"
    rows = [{"text": f"t{i}"} for i in range(150)]
    rows[120]["note"] = "call bob@example.org"  # past the first 100 records, in a later chunk: found there
    kept = guard("note", chunk_size=150).wrap(rows)
    assert kept[120]["note"] == "call <EMAIL>"
    assert len(guard("note", chunk_size=150).wrap([{"text": f"t{i}", **({"note": "x"} if i == 3 else {})}
                                                  for i in range(150)])) == 150


def test_checked_on_the_first_records_and_again_after_reset():
    g = guard("subject", chunk_size=10)
    rows = [{"text": f"t{i}"} for i in range(200)] + [{"text": "late", "subject": "a@b.org"}]
    with pytest.raises(ConfigError, match="none of the first 100 records"):
        list(g.process(rows))
    g.reset()
    with pytest.raises(ConfigError, match="none of the 5 records"):
        g.wrap([{"text": f"x{i}"} for i in range(5)])


def test_scan_exits_2_with_the_message(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(f'{{"text": "hello {i}", "email": "u{i}@example.org"}}\n' for i in range(5)))
    code = main(["scan", str(src), "--out", str(tmp_path / "o"), "--stages", "pii", "--set", 'pii.fields=["e_mail"]',
                 "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "reads the field 'e_mail'" in err and "Did you mean 'email'" in err
