import os
import warnings
from typing import Any, Callable, Dict, Iterator, List, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# -- shared data and models ------------------------------------------------------------------------------------
# Tests take them as fixtures (``def test_x(list_dataset, tiny_bert)``); module-level helpers of a test file
# import the classes (``from conftest import ListDataset``).


class ListDataset(torch.utils.data.Dataset):
    """A map-style dataset over a list of records (``ds[i]`` is ``rows[i]``)."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> Any:
        return self.rows[i]


class ListStream(torch.utils.data.IterableDataset):
    """An iterable dataset over a list of records; with ``per_worker=True`` each DataLoader worker yields its own
    share (``rows[worker::workers]``), else every iterator yields all of them."""

    def __init__(self, rows: Sequence[Any], *, per_worker: bool = False) -> None:
        self.rows = rows
        self.per_worker = per_worker

    def __iter__(self) -> Iterator[Any]:
        info = torch.utils.data.get_worker_info() if self.per_worker else None
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        return iter(self.rows[w::n])


def padded_sentences(n: int = 48, length: int = 12, vocab: int = 60) -> List[Dict[str, Any]]:
    """``n`` tokenised sentences of 4 to ``length`` ids (CLS 1 ... SEP 2, words 5 to ``vocab - 1``), padded with 0 to
    ``length``, with an attention mask and the label ``i % 2``; the same rows every call (seed 0)."""
    g = torch.Generator().manual_seed(0)
    rows = []
    for i in range(n):
        ln = int(torch.randint(4, length + 1, (1,), generator=g))
        ids = [1] + torch.randint(5, vocab, (ln - 2,), generator=g).tolist() + [2]
        rows.append({"input_ids": ids + [0] * (length - ln), "attention_mask": [1] * ln + [0] * (length - ln),
                     "labels": i % 2})
    return rows


def make_tiny_bert(*, vocab_size: int, max_positions: int, num_labels: int = 2, layers: int = 1, **config: Any):
    """A BERT sequence classifier of hidden size 16 (2 heads, intermediate 32), its weights drawn from seed 0;
    ``config`` adds BertConfig settings (e.g. ``hidden_dropout_prob=0.0``)."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=max_positions, num_labels=num_labels, **config)
    return BertForSequenceClassification(cfg)


@pytest.fixture
def list_dataset() -> Callable[..., ListDataset]:
    """:class:`ListDataset`: ``list_dataset(rows)``."""
    return ListDataset


@pytest.fixture
def list_stream() -> Callable[..., ListStream]:
    """:class:`ListStream`: ``list_stream(rows)`` or ``list_stream(rows, per_worker=True)``."""
    return ListStream


@pytest.fixture
def tiny_bert() -> Callable[..., Any]:
    """:func:`make_tiny_bert`: ``tiny_bert(vocab_size=50, max_positions=16)``."""
    return make_tiny_bert


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (small models train faster and more repeatably on a shared CPU)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def free_port() -> int:
    """A free local TCP port (for a gloo process group in multi-process tests)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scan_process(src: Any, out: Any, *, stderr: Any = None) -> Any:
    """A ``torchdataguard scan src --out out --stages exact`` subprocess of this checkout, in chunks of 500 (for the
    tests that stop a scan from outside: SIGKILL, SIGTERM); ``stderr`` as ``subprocess.Popen`` takes it (default:
    discarded)."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "torchdataguard.cli", "scan", str(src), "--out", str(out), "--device",
                             "cpu", "--no-progress", "--stages", "exact", "--chunk-size", "500"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if stderr is None else stderr, env=env)


def staging_folders(out: Any) -> List[str]:
    """The scan's staging folders (``.tdg-scan-*``) left in ``out``."""
    return [n for n in os.listdir(out) if n.startswith(".tdg-scan-")]


def run_ranks(worker: Any, world: int, out_dir: Any, *args: Any) -> List[Any]:
    """Run ``worker(rank, world, port, str(out_dir), *args)`` in ``world`` forked processes (a gloo group on a
    free port) and return what each rank wrote to ``out_dir/rank{r}.json``. Fork: the children start at once
    with torch and torchdataguard already imported (spawn costs about 15 s on 2 cores)."""
    import json

    import torch.multiprocessing as mp

    mp.start_processes(worker, args=(world, free_port(), str(out_dir), *args), nprocs=world, join=True,
                       start_method="fork")
    out = []
    for r in range(world):
        with open(os.path.join(str(out_dir), f"rank{r}.json"), encoding="utf-8") as fh:
            out.append(json.load(fh))
    return out


def token_rows(n: int = 200, T: int = 16, seed: int = 0) -> List[Dict[str, Any]]:
    """``n`` causal-LM rows of ``T`` random token ids in [5, 60) (labels = input ids), seeded."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(n):
        ids = torch.randint(5, 60, (T,), generator=g).tolist()
        rows.append({"input_ids": ids, "attention_mask": [1] * T, "labels": ids})
    return rows
