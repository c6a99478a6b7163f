"""benchmarks/gpu_wheels.sh, run with a stand-in python whose ``pip download`` is scripted (nothing is downloaded):
it works in a git worktree (whose .git is a file) and stops when the download fails, rather than reporting a .whl/
short of wheels as written (review of the seventeenth session: both happened)."""
import os
import shutil
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_wheels.sh")
pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None, reason="needs git, bash")


def _python(tmp_path, download_ok):
    """A python that runs the real one, except ``-m pip download``: writes a wheel, or fails as pip would."""
    fake = tmp_path / "python"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'if [ "$1 $2 $3" = "-m pip download" ]; then\n'
        + ('  while [ "$1" != "-d" ]; do shift; done; touch "$2/datasets-0-py3-none-any.whl"; exit 0\n' if download_ok
           else '  echo "ERROR: No matching distribution found for datasets" >&2; exit 1\n')
        + "fi\n"
        f'exec "{sys.executable}" "$@"\n')
    fake.chmod(0o755)
    return str(fake)


def _repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "benchmarks" / "gpu_wheels.sh")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-C", str(repo)]
    subprocess.run(git[:5] + ["init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    subprocess.run(git + ["worktree", "add", "-q", str(tmp_path / "wt")], check=True)
    return repo, tmp_path / "wt"


def _run(where, python):
    env = {k: v for k, v in os.environ.items() if k not in ("VENV", "PYTHON")}
    return subprocess.run(["bash", str(where / "benchmarks" / "gpu_wheels.sh")], env={**env, "PYTHON": python},
                          capture_output=True, text=True, timeout=120)


def test_it_writes_the_wheels_from_a_worktree_too(tmp_path):
    repo, wt = _repo(tmp_path)
    got = _run(wt, _python(tmp_path, True))
    assert got.returncode == 0, got.stderr
    assert os.listdir(wt / ".whl") == ["datasets-0-py3-none-any.whl"]
    assert "/.whl/" in (repo / ".git" / "info" / "exclude").read_text().splitlines()


@pytest.mark.parametrize("where", ["checkout", "worktree"])
def test_a_failed_download_stops_it(tmp_path, where):
    repo, wt = _repo(tmp_path)
    got = _run(repo if where == "checkout" else wt, _python(tmp_path, False))
    assert got.returncode != 0 and "wrote .whl/" not in got.stdout
    assert "No matching distribution found" in got.stderr and "downloading the wheels failed" in got.stderr


SUITE = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_suite.sh")


@pytest.mark.parametrize("present", [True, False])
def test_the_suite_installs_the_carried_wheels_only_where_they_are_missing(tmp_path, present):
    """The suite run for real on a machine that has the packages (``DEVICE=cpu bash benchmarks/gpu_suite.sh`` here,
    .whl/ written) installed the carried wheels over them and stopped: pip refuses Python 3.12's multiprocess on
    another Python ("installing the carried wheels (.whl/) failed", exit 2). Its steps run a stand-in python."""
    root = tmp_path / "repo"
    (root / "benchmarks").mkdir(parents=True)
    (root / ".whl").mkdir()
    (root / ".whl" / "multiprocess-0.70.19-py312-none-any.whl").write_bytes(b"")
    shutil.copy(SUITE, root / "benchmarks" / "gpu_suite.sh")
    log = tmp_path / "calls"
    fake = tmp_path / "python"
    fake.write_text("#!/usr/bin/env bash\n"
                    f'echo "$*" >> "{log}"\n'
                    'case "$*" in\n'
                    '  "-m pip install"*) exit 1 ;;  # as pip does with a wheel for another Python\n'
                    f'  "-c import datasets"*) exit {0 if present else 1} ;;\n'
                    '  "-c import torch; print"*) echo 0 ;;\n'
                    "esac\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("VENV", "PYTHONPATH")}
    got = subprocess.run(["bash", str(root / "benchmarks" / "gpu_suite.sh")], capture_output=True, text=True,
                         env={**env, "PYTHON": str(fake), "DEVICE": "cpu", "OUT": str(tmp_path / "out")}, timeout=120)
    installs = [c for c in log.read_text().splitlines() if c.startswith("-m pip install")]
    if present:
        assert got.returncode == 0 and not installs, got.stderr
    else:  # the lent machine's image: installed first (here the stand-in pip fails, and the suite stops)
        assert len(installs) == 1 and got.returncode == 2 and "installing the carried wheels" in got.stderr
