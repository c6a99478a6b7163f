#!/usr/bin/env bash
# Every GPU benchmark and the GPU-marked tests, in under 8 minutes, on a bare machine with the repository and a
# virtual environment (python with torchdataguard's dependencies on PATH, or VENV=/path/to/venv).
#
#   bash benchmarks/gpu_suite.sh              # on a CUDA machine: writes benchmarks/results/*_cuda.json
#   bash benchmarks/gpu_suite.sh --dry-run    # every step on the CPU in its quick mode, results in a temp folder
#   DEVICE=cpu OUT=/tmp/r bash benchmarks/gpu_suite.sh
# On the lent machine, whose image lacks some dependencies: run benchmarks/gpu_wheels.sh here first, carry .whl/,
# and the suite installs those wheels before its steps (docs/speed.md, "Running the GPU suite").
#
# Steps (each under its own time limit, so that one that hangs cannot take the suite past its budget; the
# suite goes on after a failed step and exits non-zero at the end):
#   tests     pytest -m gpu (CUDA-only tests: dedup and decontamination on the device equal the CPU, augmentation)
#   dedup     near-dedup on token ids on the device (benchmarks/dedup_gpu.py; goal 1M 256-token docs/s)
#   text      exact + near dedup of real text with the indexes on the device, decisions checked against the CPU
#   augment   augmentation overhead against a training step (benchmarks/augment_overhead.py)
#   dp        DP-SGD overhead against non-private training (benchmarks/dp_overhead.py, no utility part)
#   guard     guard overhead while fine-tuning, 2 DataLoader workers, guarded and plain blocks of steps taking
#             turns in one process (benchmarks/guard_overhead_blocks.py; guard_overhead.py runs each side in a
#             fresh process, whose noise between processes exceeded the effect on the CPU)
#   ddp       global dedup with one process per GPU over NCCL (benchmarks/distributed_scaling.py)
# A summary with each step's status and seconds goes to $OUT/gpu_suite_<device>.json.
set -u
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
DRY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    -h|--help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "unknown argument: $arg (use --dry-run)" >&2; exit 2 ;;
  esac
done
if [ -n "${VENV:-}" ]; then . "$VENV/bin/activate"; fi
PY="${PYTHON:-$(command -v python >/dev/null 2>&1 && echo python || echo python3)}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1
# wheels carried to a GPU machine whose image lacks them (benchmarks/gpu_wheels.sh writes .whl/): installed first,
# where they are missing (not over a Python that has them: .whl/ holds Python 3.12's multiprocess, refused elsewhere)
if [ "$DRY" = 0 ] && ls "$ROOT"/.whl/*.whl >/dev/null 2>&1 \
    && ! "$PY" -c "import datasets, opacus, datasketch, ftfy" >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/tdg-site \
    "$ROOT"/.whl/*.whl || { echo "installing the carried wheels (.whl/) failed" >&2; exit 2; }
  export PYTHONPATH="$ROOT:/tmp/tdg-site${PYTHONPATH#"$ROOT"}"
fi
if [ "$DRY" = 1 ]; then
  DEVICE="${DEVICE:-cpu}"
  OUT="${OUT:-$(mktemp -d -t tdg-gpu-suite-XXXX)}"
else
  DEVICE="${DEVICE:-cuda}"
  OUT="${OUT:-$HERE/results}"
fi
mkdir -p "$OUT"
TAG="$DEVICE"
if [ "$DEVICE" = cuda ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "DEVICE=cuda but torch sees no CUDA device; run with --dry-run (or DEVICE=cpu) to check the steps" >&2
  exit 2
fi
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
QUICK=$([ "$DEVICE" = cpu ] && echo 1 || echo 0)
echo "gpu suite: device $DEVICE ($NGPU GPUs), results in $OUT$([ "$QUICK" = 1 ] && echo ', quick sizes')"

STATUS=()
FAILED=0
SUITE_START=$(date +%s)
step() {  # step NAME SECONDS command...
  local name="$1" limit="$2"; shift 2
  local t0=$(date +%s)
  echo; echo "== $name (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  local dt=$(( $(date +%s) - t0 ))
  [ "$rc" = 0 ] || FAILED=1
  [ "$rc" = 124 ] && echo "-- $name: stopped after ${limit}s"
  echo "-- $name: exit $rc in ${dt}s"
  STATUS+=("{\"step\": \"$name\", \"exit\": $rc, \"seconds\": $dt}")
}

if [ "$QUICK" = 1 ]; then
  step tests 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu "$ROOT/tests"
  step dedup 60 "$PY" "$HERE/dedup_gpu.py" --device "$DEVICE" --docs 8192 --batch 2048 --out "$OUT/dedup_gpu_$TAG.json"
  step text 90 "$PY" "$HERE/dedup_gpu.py" --text --device "$DEVICE" --docs 4000 --out "$OUT/dedup_text_$TAG.json"
  step augment 120 "$PY" "$HERE/augment_overhead.py" --device "$DEVICE" --repeat 2 --text-batch 8 --image-batch 8 \
    --image-size 32 --out "$OUT/augment_overhead_$TAG.json"
  step dp 240 "$PY" "$HERE/dp_overhead.py" --device "$DEVICE" --steps 2 --batch 4 --seq 16 --skip-utility \
    --modes nonprivate,tdg_auto --out "$OUT/dp_overhead_$TAG.json"
  step guard 300 "$PY" "$HERE/guard_overhead_blocks.py" --device "$DEVICE" --quick --out "$OUT/guard_overhead_blocks_$TAG.json"
  step ddp 240 "$PY" "$HERE/distributed_scaling.py" --device cpu --worlds 2 --planted 300 --repeat 1 \
    --out "$OUT/distributed_scaling_$TAG.json"
else
  step tests 75 "$PY" -m pytest -q -p no:cacheprovider -m gpu "$ROOT/tests"
  step dedup 60 "$PY" "$HERE/dedup_gpu.py" --device cuda --docs 2000000 --batch 65536 --out "$OUT/dedup_gpu_cuda.json"
  step text 60 "$PY" "$HERE/dedup_gpu.py" --text --device cuda --docs 60000 --out "$OUT/dedup_text_cuda.json"
  step augment 60 "$PY" "$HERE/augment_overhead.py" --device cuda --repeat 5 --out "$OUT/augment_overhead_cuda.json"
  step dp 80 "$PY" "$HERE/dp_overhead.py" --device cuda --steps 10 --skip-utility \
    --modes nonprivate,tdg_auto,opacus_hooks --out "$OUT/dp_overhead_cuda.json"
  step guard 60 "$PY" "$HERE/guard_overhead_blocks.py" --device cuda --block 10 --rounds 4 --warm 3 \
    --out "$OUT/guard_overhead_blocks_cuda.json"
  step ddp 60 "$PY" "$HERE/distributed_scaling.py" --device cuda --planted 6000 --repeat 1 \
    --out "$OUT/distributed_scaling_cuda.json"
fi

TOTAL=$(( $(date +%s) - SUITE_START ))
{
  echo "{\"device\": \"$DEVICE\", \"gpus\": $NGPU, \"quick\": $([ "$QUICK" = 1 ] && echo true || echo false),"
  echo " \"total_seconds\": $TOTAL, \"steps\": ["
  for i in "${!STATUS[@]}"; do
    [ "$i" -gt 0 ] && echo ","
    printf '  %s' "${STATUS[$i]}"
  done
  echo "]}"
} > "$OUT/gpu_suite_$TAG.json"
echo; echo "gpu suite: ${TOTAL}s in all, summary in $OUT/gpu_suite_$TAG.json$([ "$FAILED" = 1 ] && echo ' (a step failed)')"
exit $FAILED
