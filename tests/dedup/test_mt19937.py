"""dedup/mt19937.py: the Mersenne Twister words behind the dedup constants, without numpy.random, are the ones
NumPy's legacy RandomState and torch's CPU generator give."""
import os
import subprocess
import sys

import numpy as np
import pytest

from torchdataguard.dedup.mt19937 import mt_words

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("seed", [0, 1, 5489, 8047, 12345, 2**32 - 1, 2**40 + 3, -7])
@pytest.mark.parametrize("n", [0, 1, 2, 226, 227, 228, 623, 624, 625, 1246, 1247, 1248, 5000, 131072])
def test_words_are_numpys_legacy_randomstate(seed, n):
    want = np.random.RandomState(seed & 0xFFFFFFFF).randint(0, 1 << 32, size=n, dtype=np.uint32)
    got = mt_words(seed, n)
    assert got.dtype == np.uint32 and got.tolist() == want.tolist()


def test_words_are_torchs_cpu_generator():
    torch = pytest.importorskip("torch")
    for seed in (1, 8047, 12345, -7):
        for span in (128, 65536, 1000003):  # a 32-bit word per value, reduced modulo the range
            g = torch.Generator().manual_seed(seed)
            want = torch.randint(0, span, (3000,), generator=g, dtype=torch.int64).tolist()
            assert (mt_words(seed, 3000).astype(np.int64) % span).tolist() == want


def test_dedup_does_not_import_numpy_random():
    code = ("import sys; from torchdataguard.dedup.near import NearDedup; from torchdataguard.dedup.exact import ExactDedup;"
            "from torchdataguard.dedup.minhash import probe_table, mt_randint; probe_table(128, 1); mt_randint(12345, 1, 2**62, 40);"
            "NearDedup(); print('numpy.random' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split()[-1] == "False"
