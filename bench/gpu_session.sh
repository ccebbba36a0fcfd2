#!/usr/bin/env bash
# The one prepared call of a device session: while the extension builds and the test suite runs on the GPU
# (bench/gpu_check.sh), gray mdrn-base trains there (bench/gpu_train_gray.sh, backend torch, which needs no
# build); then the benchmark runs on a quiet GPU. At most 8 files land in $OUT (what a device call returns):
# stages.txt, info.txt, build.log, gpu-tests.log, train.log, train.tar (weights, evaluations), bench.log,
# bench.tar (tables).
#
#   bash bench/gpu_session.sh               # on the GPU machine, with device_data/ carried (see bench/README.md)
#   bash bench/gpu_session.sh --rehearse    # here, on the CPU, small sizes
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-runs/gpu-session}"
mkdir -p "$OUT"
export MDRN_FAST_DATA="${MDRN_FAST_DATA:-$PWD/device_data/data}"
start=$SECONDS
rm -rf runs/gpu-gray runs/gpu-bench
(
  WORK=runs/gpu-gray bash bench/gpu_train_gray.sh "$@" >"$OUT/train.log" 2>&1
  tar -cf "$OUT/train.tar" --exclude=checkpoint.pt -C runs gpu-gray
) &
train=$!
STAGES="info build test" bash bench/gpu_check.sh "$@"
echo "== waiting for training (at $((SECONDS - start))s)"
wait $train
tail -n 12 "$OUT/train.log"
echo "== training: done at $((SECONDS - start))s" | tee -a "$OUT/stages.txt"
mkdir -p runs/gpu-bench
STAGES=bench KEEP_SUMMARY=1 BENCH_OUT=runs/gpu-bench bash bench/gpu_check.sh "$@"
tar -cf "$OUT/bench.tar" -C runs gpu-bench
echo "== session done at $((SECONDS - start))s"
ls -la "$OUT"
