#!/usr/bin/env bash
# One call on a lent GPU machine: info, build, the test suite on the GPU, a short benchmark; everything lands
# in $OUT as it goes (a stage that fails or runs out of time costs only its own results).
#
#   bash bench/gpu_check.sh                # on the GPU machine ($OUT set by the caller, else bench/results/gpu-check)
#   bash bench/gpu_check.sh --rehearse     # here, without a GPU: every stage, CPU flavour, small sizes
#
# Environment: STAGES (default "info build test bench"), AUTOTUNE=1 (every Triton autotune config; default one,
# so that compiling stays within the budget), JOBS (pytest workers), TEST_TIMEOUT / BENCH_TIMEOUT (seconds),
# TESTS (pytest arguments, default the whole suite), TEST_THREADS (CPU threads per pytest worker, default 2), BENCH_ARGS (more bench/speed.py arguments), BENCH_OUT
# (where bench/speed.py writes its tables, default $OUT), KEEP_SUMMARY=1 (add to stages.txt, not replace it).
set -uo pipefail
cd "$(dirname "$0")/.."
REHEARSE=0
[[ "${1:-}" == "--rehearse" ]] && REHEARSE=1
OUT="${OUT:-bench/results/gpu-check}"
mkdir -p "$OUT"
STAGES="${STAGES:-info build test bench}"
CORES=$(nproc)
export MDRN_FAST_TRITON_AUTOTUNE="${AUTOTUNE:-0}"
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/stages.txt"  # one status line per stage, written as each ends
[[ "${KEEP_SUMMARY:-0}" == 1 ]] || : >"$SUMMARY"

# stage NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND (a program or a function below) under a time limit,
# output to LOG (and its tail to the terminal), and adds its status and duration to stages.txt. Never stops
# the script. At most 8 files land in $OUT (what a device call brings back).
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  local start=$SECONDS
  echo "== $name (limit ${limit}s) -> $log"
  timeout -k 15 "$limit" bash -c '"$@"' stage "$@" >"$log" 2>&1
  local rc=$?
  local took=$((SECONDS - start))
  local status=ok
  [[ $rc -ne 0 ]] && status="FAILED rc=$rc"
  [[ $rc -eq 124 || $rc -eq 137 ]] && status="TIMED OUT after ${limit}s"
  tail -n 25 "$log"
  echo "== $name: $status in ${took}s" | tee -a "$SUMMARY"
  return 0
}

info() {
  date -u
  uname -a
  command -v nvidia-smi >/dev/null && nvidia-smi
  python3 --version
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu',
    torch.cuda.get_device_name() if torch.cuda.is_available() else None, 'triton', triton.__version__)"
  echo "cores $CORES; autotune ${MDRN_FAST_TRITON_AUTOTUNE}; rehearse $REHEARSE"
}

build() {
  # without ninja, torch compiles one file at a time: carry one in device_data/bin (cp .venv/bin/ninja there)
  if ! command -v ninja >/dev/null && [[ -x device_data/bin/ninja ]]; then export PATH="$PWD/device_data/bin:$PATH"; fi
  command -v ninja || echo "no ninja on PATH: the build compiles one file at a time"
  if [[ $REHEARSE -eq 1 ]]; then
    python3 -m pip install --no-build-isolation --no-deps -e . -v
  else  # the device's arch only, every core
    MDRN_FAST_CUDA_ARCHS="${MDRN_FAST_CUDA_ARCHS:-9.0}" MAX_JOBS="$CORES" \
      python3 -m pip install --no-build-isolation --no-deps -e . -v
  fi
  python3 -m mdrn_fast info
}

export REHEARSE CORES
export -f info build

for s in $STAGES; do
  case $s in
    info) stage info 60 "$OUT/info.txt" info ;;
    build) stage build 300 "$OUT/build.log" build ;;
    test)
      # -rA: one line per test, passed ones included; no -x: every failure is worth knowing
      # shellcheck disable=SC2086
      stage test "${TEST_TIMEOUT:-300}" "$OUT/gpu-tests.log" env OMP_NUM_THREADS="${TEST_THREADS:-2}" \
        python3 -m pytest -n "${JOBS:-$((CORES > 12 ? 12 : CORES))}" -rA -q -p no:cacheprovider ${TESTS:-tests} ;;
    bench)
      if [[ $REHEARSE -eq 1 ]]; then dev=(--device cpu); else dev=(); fi
      # shellcheck disable=SC2086
      stage bench "${BENCH_TIMEOUT:-150}" "$OUT/bench.log" \
        python3 bench/speed.py --quick "${dev[@]}" --providers torch,torch-cl,compile,triton,cuda,cpu \
        --out "${BENCH_OUT:-$OUT}" ${BENCH_ARGS:-} ;;
    *) echo "unknown stage $s" | tee -a "$SUMMARY" ;;
  esac
done
echo "== summary"
cat "$SUMMARY"
