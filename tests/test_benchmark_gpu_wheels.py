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
