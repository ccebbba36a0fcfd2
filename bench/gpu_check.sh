#!/usr/bin/env bash
# One call on a lent GPU machine, its stages in the order of what they answer: info, build, the test suite on
# the GPU, the benchmark with its profile (model rows first), and training with whatever time is left
# (bench/gpu_session.sh adds that stage). Everything lands in $OUT as it goes: a stage that fails or runs out of
# time costs only its own results, and every stage runs whatever happened before it (the source tree imports
# without a build; only the cuda and cpu rows and tests need the extension).
#
#   bash bench/gpu_check.sh                # on the GPU machine ($OUT set by the caller, else bench/results/gpu-check)
#   bash bench/gpu_check.sh --rehearse     # here, without a GPU: every stage, CPU flavour, tiny sizes
#
# Environment: STAGES (default "info build test bench"); SESSION_S (seconds the whole call may take, default 400
# on the device: a 9-minute call less the machine's start; stage limits shrink to what is left); INFO_S, BUILD_S,
# TEST_S (or TEST_TIMEOUT), BENCH_S (or BENCH_TIMEOUT), PROBE_S (the stage probe, not in the default
# STAGES: bench/train_probe.py, a JSON line per row in $OUT/train-probe.log), TRAIN_S (default: all that is left): each stage's limit;
# TRAIN_MIN_S (training runs only if this much is left, default 240), EVAL_S (kept for the evaluation after training, default 90); AUTOTUNE=1
# (every Triton autotune config in the tests; default one, so that compiling stays within the budget),
# BENCH_AUTOTUNE (the benchmark's, default 1: the library's default, its cost in the first-call column); JOBS
# (pytest workers), TESTS (pytest arguments, default the whole suite; in rehearsal a small subset), TEST_THREADS
# (CPU threads per pytest worker, default 2), BENCH_ARGS (more bench/speed.py arguments), BENCH_OUT (where
# bench/speed.py writes, default runs/gpu-bench, bundled as $OUT/bench.tar), KEEP_SUMMARY=1 (add to stages.txt,
# not replace it). At most 8 files land in $OUT (what a device call brings back): stages.txt, info.txt, build.log,
# gpu-tests.log, bench.log, bench.tar, and with training train.log, train.tar.
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
# the tree imports as installed whether or not the build succeeds (bench/pythonpath: mdrn_fast.kernels)
export PYTHONPATH="$PWD:$PWD/bench/pythonpath${PYTHONPATH:+:$PYTHONPATH}"
SUMMARY="$OUT/stages.txt"  # one status line per stage, written as each ends
[[ "${KEEP_SUMMARY:-0}" == 1 ]] || : >"$SUMMARY"
BENCH_OUT="${BENCH_OUT:-runs/gpu-bench}"
if [[ $REHEARSE -eq 1 ]]; then
  SESSION_S=${SESSION_S:-3000}
  INFO_S=${INFO_S:-120} BUILD_S=${BUILD_S:-1200} TEST_S=${TEST_S:-${TEST_TIMEOUT:-600}}
  BENCH_S=${BENCH_S:-${BENCH_TIMEOUT:-600}} PROBE_S=${PROBE_S:-300} TRAIN_S=${TRAIN_S:-150} TRAIN_MIN_S=${TRAIN_MIN_S:-60} EVAL_S=${EVAL_S:-40}
  # a representative few: the benchmark's own tests, the extension just built, the model on every backend
  TESTS="${TESTS:-tests/test_bench.py tests/test_cpp.py tests/test_model_backends.py}"
else
  SESSION_S=${SESSION_S:-400}
  INFO_S=${INFO_S:-20} BUILD_S=${BUILD_S:-100} TEST_S=${TEST_S:-${TEST_TIMEOUT:-170}}
  BENCH_S=${BENCH_S:-${BENCH_TIMEOUT:-240}} PROBE_S=${PROBE_S:-120} TRAIN_S=${TRAIN_S:-$SESSION_S} TRAIN_MIN_S=${TRAIN_MIN_S:-240} EVAL_S=${EVAL_S:-90}
fi

left() { echo $((SESSION_S - SECONDS)); }
# limit BUDGET: the stage's limit, the budget or what is left of the session, whichever is less
limit() { local l; l=$(left); echo $(($1 < l ? $1 : l)); }

plan() {
  echo "== plan: ${SESSION_S}s for the call, stages in the order of what they answer (limits shrink to what is left)"
  local train_s=$TRAIN_S
  [[ $TRAIN_S -ge $SESSION_S ]] && train_s=rest || train_s="${TRAIN_S}s"
  for s in $STAGES; do
    case $s in
      info) printf '  %-6s %5s  %s\n' info "${INFO_S}s" "the machine, driver, torch/triton versions, the clocks as found" ;;
      build) printf '  %-6s %5s  %s\n' build "${BUILD_S}s" "the extension for sm_90 with $CORES jobs (53 s on the H100, 16 jobs): cuda/cpu rows and tests" ;;
      test) printf '  %-6s %5s  %s\n' test "${TEST_S}s" "${TESTS:-the whole suite} on the GPU with -n ${JOBS:-$((CORES > 12 ? 12 : CORES))} (the suite: 121 s on the H100): are the kernels right" ;;
      bench) printf '  %-6s %5s  %s\n' bench "${BENCH_S}s" "where GPU time goes: mdrn-base inference per provider with top kernels, the train step, one 3x3 layer vs cuDNN, then ops" ;;
      probe) printf '  %-6s %5s  %s\n' probe "${PROBE_S}s" "train_probe, mdrn-base 16x1x256x256 bf16: eager (recompute, graph off/on), triton and cuda channels-last with recompute, graph off/on" ;;
      train) printf '  %-6s %5s  %s\n' train "$train_s" "gray mdrn-base if at least ${TRAIN_MIN_S}s are left (${EVAL_S}s of it for the evaluation), else skipped" ;;
    esac
  done
}

# stage NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND (a program or a function below) under a time limit,
# output to LOG (and its tail to the terminal), and adds its status and duration to stages.txt. Never stops
# the script.
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  if [[ $limit -le 0 ]]; then
    echo "== $name: skipped, no time left of the session's ${SESSION_S}s" | tee -a "$SUMMARY"
    return 0
  fi
  local start=$SECONDS
  echo "== $name (limit ${limit}s, at ${start}s) -> $log"
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
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi
    nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,power.limit,temperature.gpu --format=csv
  fi
  python3 --version
  local rc=0  # the stage fails if python cannot import what every later stage needs
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu',
    torch.cuda.get_device_name() if torch.cuda.is_available() else None, 'triton', triton.__version__)" || rc=1
  python3 -c "import mdrn_fast, mdrn_fast.kernels; print('mdrn_fast from', mdrn_fast.__file__)" || rc=1
  echo "cores $CORES; test autotune ${MDRN_FAST_TRITON_AUTOTUNE}; bench autotune ${BENCH_AUTOTUNE:-1}; rehearse $REHEARSE"
  return $rc
}

build() {
  # without ninja, torch compiles one file at a time: carry one in device_data/bin (cp .venv/bin/ninja there)
  if ! command -v ninja >/dev/null && [[ -x device_data/bin/ninja ]]; then export PATH="$PWD/device_data/bin:$PATH"; fi
  command -v ninja || echo "no ninja on PATH: the build compiles one file at a time"
  export MDRN_FAST_CUDA_ARCHS="${MDRN_FAST_CUDA_ARCHS:-9.0}" MAX_JOBS="${MAX_JOBS:-$CORES}"  # H100/H200 only
  if [[ $REHEARSE -eq 1 ]]; then  # in place: no environment here is touched (the tree is on PYTHONPATH)
    python3 setup.py build_ext --inplace
  else
    python3 -m pip install --no-build-isolation --no-deps -e . -v
  fi
  python3 -m mdrn_fast info
}

bench() {
  local limit=$1
  rm -rf "$BENCH_OUT"
  mkdir -p "$BENCH_OUT"
  local dev=(--quick)
  [[ $REHEARSE -eq 1 ]] && dev=(--device cpu --tiny)
  # the run's own budget ends 20 s before the stage's limit, so that it writes its tables itself
  # shellcheck disable=SC2086
  MDRN_FAST_TRITON_AUTOTUNE="${BENCH_AUTOTUNE:-1}" python3 bench/speed.py "${dev[@]}" --budget-s $((limit - 20)) \
    --out "$BENCH_OUT" ${BENCH_ARGS:-}
}

# the training step as training runs it (bf16 autocast on a GPU): eager NCHW, then each fused backend
# channels-last with recompute, graph off and on; a line per row as it ends, so that a timeout keeps them
probe() {
  local size=(--preset mdrn-base --patch 256 --batch 16 --warmup 5 --steps 10)
  [[ $REHEARSE -eq 1 ]] && size=(--device cpu --preset mdrn-tiny --patch 16 --batch 2 --warmup 1 --steps 2)
  python3 bench/train_probe.py "${size[@]}" --backends torch --formats contiguous_format --recompute off,on \
    --graph off,on
  python3 bench/train_probe.py "${size[@]}" --backends triton,cuda --formats channels_last --recompute on \
    --graph off,on
}

train() {
  local limit=$1 rehearse=()
  [[ $REHEARSE -eq 1 ]] && rehearse=(--rehearse)
  rm -rf runs/gpu-gray
  WORK=runs/gpu-gray DEADLINE=$((limit - EVAL_S)) DEADLINE_REHEARSE=$((limit - EVAL_S)) \
    bash bench/gpu_train_gray.sh "${rehearse[@]}"
}

export REHEARSE CORES BENCH_OUT EVAL_S
export -f info build bench probe train

plan
for s in $STAGES; do
  case $s in
    info) stage info "$(limit "$INFO_S")" "$OUT/info.txt" info ;;
    build) stage build "$(limit "$BUILD_S")" "$OUT/build.log" build ;;
    test)
      # -rA: one line per test, passed ones included; no -x: every failure is worth knowing
      # shellcheck disable=SC2086
      stage test "$(limit "$TEST_S")" "$OUT/gpu-tests.log" env OMP_NUM_THREADS="${TEST_THREADS:-2}" \
        python3 -m pytest -n "${JOBS:-$((CORES > 12 ? 12 : CORES))}" -rA -q -p no:cacheprovider ${TESTS:-tests} ;;
    bench)
      l=$(limit "$BENCH_S")
      stage bench "$l" "$OUT/bench.log" bench "$l"
      tar -cf "$OUT/bench.tar" -C "$(dirname "$BENCH_OUT")" "$(basename "$BENCH_OUT")" ;;
    probe) stage probe "$(limit "$PROBE_S")" "$OUT/train-probe.log" probe ;;
    train)
      l=$(limit "$TRAIN_S")
      l=$((l < $(left) - 5 ? l : $(left) - 5))
      if [[ $l -lt $TRAIN_MIN_S ]]; then
        echo "== train: skipped, ${l}s left, under the ${TRAIN_MIN_S}s it needs" | tee -a "$SUMMARY"
        continue
      fi
      stage train "$l" "$OUT/train.log" train "$l"
      [[ -d runs/gpu-gray ]] && tar -cf "$OUT/train.tar" --exclude=checkpoint.pt -C runs gpu-gray ;;
    *) echo "unknown stage $s" | tee -a "$SUMMARY" ;;
  esac
done
# what the reply's tail should hold: the benchmark's design floors and summary, then each stage's status
md=$(ls "$BENCH_OUT"/*.md 2>/dev/null | grep -v profile | head -n 1)
if [[ -n $md ]]; then
  echo "== benchmark summary ($md)"
  sed -n '/^## /,$p' "$md" | head -n 90
fi
echo "== summary (at ${SECONDS}s)"
cat "$SUMMARY"
