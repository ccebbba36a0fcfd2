#!/usr/bin/env bash
# The one prepared call of a device session: bench/gpu_check.sh's stages in the order of what they answer (info,
# build, the whole test suite on the GPU, the benchmark and its profile on a quiet GPU), then gray mdrn-base
# training (bench/gpu_train_gray.sh, backend torch) with the time that is left, if that is enough to be worth
# it. The plan, with each stage's budget, is printed first. At most 8 files land in $OUT (what a device call
# returns): stages.txt, info.txt, build.log, gpu-tests.log, bench.log, bench.tar (tables, profile), train.log,
# train.tar (weights, evaluations).
#
#   bash bench/gpu_session.sh               # on the GPU machine, with device_data/ carried (see bench/README.md)
#   bash bench/gpu_session.sh --rehearse    # here, on the CPU, tiny sizes: every stage once
#
# Environment: as bench/gpu_check.sh (SESSION_S, the stage budgets, TESTS, BENCH_ARGS, ...), and for training
# those of bench/gpu_train_gray.sh (INIT_25, LR, ...).
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-runs/gpu-session}"
mkdir -p "$OUT"
export MDRN_FAST_DATA="${MDRN_FAST_DATA:-$PWD/device_data/data}"
STAGES="${STAGES:-info build test bench train}" bash bench/gpu_check.sh "$@"
ls -la "$OUT"
