#!/usr/bin/env bash
# One call on a GPU machine: build the extension, run the GPU tests, run the benchmark, copy results to $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
nvidia-smi | tee "$OUT/nvidia-smi.txt"
MDRN_FAST_CUDA_ARCHS="${MDRN_FAST_CUDA_ARCHS:-9.0}" pip install --no-build-isolation --no-deps -e . 2>&1 | tail -3
python -m mdrn_fast info | tee "$OUT/info.txt"
python -m pytest -q -ra -x tests/test_ops_parity.py tests/test_model_backends.py tests/test_cpp.py \
  tests/test_epilogue.py tests/test_robustness.py 2>&1 | tee "$OUT/gpu-tests.log" | tail -15
python bench/speed.py --out "$OUT" ${BENCH_ARGS:-} 2>"$OUT/bench-progress.log" | tail -60
