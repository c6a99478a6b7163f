"""The ``torchdataguard scan`` process loads NumPy without OpenBLAS's thread pool (it never multiplies float
matrices), and leaves the environment as it found it."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")

PROBE = """
import os, sys
from torchdataguard import cli
cli._load_numpy_without_blas_threads()
print(len(os.listdir('/proc/self/task')), os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules)
"""


def _run(env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                                                              "OMP_NUM_THREADS")}
    env.update(env_extra, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_numpy_loaded_without_blas_threads_and_environment_restored():
    threads, var, loaded = _run({})
    assert loaded == "True"
    assert threads == "1"  # no OpenBLAS worker thread
    assert var == "None"  # the variable is gone again: processes the scan starts do not inherit it


def test_a_thread_count_the_user_set_is_left_alone():
    threads, var, loaded = _run({"OPENBLAS_NUM_THREADS": "3"})
    assert var == "3"
    assert loaded == "False"  # NumPy is loaded later, as usual, with the user's setting


def test_the_scan_command_loads_numpy_through_it(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "a b c d e f"}\n{"id": 2, "text": "a b c d e f"}\n')
    code = ("import os, sys; from torchdataguard import cli; import torchdataguard.cli as c; seen = [];"
            "orig = c._load_numpy_without_blas_threads;"
            "c._load_numpy_without_blas_threads = lambda: (seen.append(1), orig())[1];"
            f"sys.argv = ['torchdataguard', 'scan', {str(inp)!r}, '--out', {str(tmp_path / 'out')!r}, '--no-progress'];"
            "code = c._main(None, fast_exit=False); print(seen, code, 'OPENBLAS_NUM_THREADS' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS",
                                                              "OMP_NUM_THREADS")}
    env["PYTHONPATH"] = ROOT
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-3:] == ["[1]", "0", "False"]


def test_the_host_name_of_a_staging_folder_is_socket_s():
    import socket

    from torchdataguard.scan.outputs import _host, _me

    assert _host() == socket.gethostname()
    assert _me()["host"] == socket.gethostname()


def test_a_two_record_scan_imports_neither_numpy_random_nor_socket_nor_safetensors(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "a b c d e f"}\n{"id": 2, "text": "a b c d e f"}\n')
    code = ("import sys; from torchdataguard.cli import main;"
            f"main(['scan', {str(inp)!r}, '--out', {str(tmp_path / 'out')!r}, '--stages', 'exact,near', '--no-progress']);"
            "print(sorted(m for m in ('numpy.random', 'socket', 'safetensors', 'secrets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
                         text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_the_report_names_the_platform_as_platform_does(tmp_path):
    import json
    import platform

    from torchdataguard.scan.local import scan

    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": 1, "text": "a b c d e f"}\n')
    scan(str(inp), str(tmp_path / "out"), stages=["exact"], progress=False, device="cpu")
    rep = json.loads((tmp_path / "out" / "report.json").read_text())
    assert rep["machine"]["platform"] == platform.platform()
