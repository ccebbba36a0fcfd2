#!/usr/bin/env bash
# From a fresh clone to a denoised picture in one command: a virtual environment, PyTorch, the C++ extension
# built for what this machine has, then `mdrn-fast denoise`. A second run reuses everything and starts in seconds.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: ./quickstart.sh [PHOTO ...] [-o OUT] [--venv DIR] [--cuda] [-- DENOISE-FLAGS...]

Sets up mdrn_fast in a virtual environment (created or reused) and denoises PHOTO (image files or folders;
without one, the bundled sample docs/sample-noisy.png) with the shipped weights, the noise level estimated.

  -o, --out OUT   where the denoised pictures go (default: denoised/); what an earlier run wrote there is
                  replaced, unless OUT is a photo's own folder
  --venv DIR      the virtual environment to create or reuse (default: .venv)
  --cuda          build the CUDA kernels even where no GPU is visible (default: only where one is; a CUDA
                  build takes about 4-8 minutes on 2 cores, the CPU-only build about 2)
  -- FLAGS        passed on to `mdrn-fast denoise` (see `mdrn-fast denoise --help`), e.g. -- --sigma 25
  -h, --help      this text

First run on a 2-core machine: about 5 minutes (PyTorch, then the extension); later runs: seconds.
EOF
}

die() { echo "quickstart: $*" >&2; exit 2; }

ROOT="$(cd "$(dirname "$0")" && pwd)"
inputs=() out="denoised" venv="$ROOT/.venv" cuda=0 extra=()
while [[ $# -gt 0 ]]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    -o|--out) [[ $# -ge 2 && -n $2 ]] || die "$1 needs a folder"; out=$2; shift 2 ;;
    --venv) [[ $# -ge 2 && -n $2 ]] || die "--venv needs a folder"; venv=$2; shift 2 ;;
    --cuda) cuda=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -e $1 ]] || die "no such file or folder: $1"; inputs+=("$1"); shift ;;
  esac
done
[[ ${#inputs[@]} -gt 0 ]] || inputs=("$ROOT/docs/sample-noisy.png")

py="$venv/bin/python"
if [[ ! -x $py ]]; then
  base=${PYTHON:-python3}
  command -v "$base" >/dev/null || die "no $base on PATH: install Python 3.10 or newer"
  "$base" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || die "$base is older than 3.10"
  echo "== creating the virtual environment $venv"
  "$base" -m venv "$venv"
fi

gpu=0
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 && gpu=1

if ! "$py" -c 'import torch' 2>/dev/null; then
  # the range the package declares (pyproject.toml), so that pip never picks a torch the extension cannot build on
  range=$("$py" -c 'import re, sys; print(re.search(r"\"torch([<>=!~][^\"]*)\"", open(sys.argv[1]).read()).group(1))' \
    "$ROOT/pyproject.toml")
  "$py" -m pip install -q --upgrade pip setuptools wheel ninja
  if [[ $gpu == 0 ]] && "$py" -m pip install -q "torch$range" --index-url https://download.pytorch.org/whl/cpu \
      2>/dev/null; then
    echo "== torch: the CPU build (no GPU visible)"
  else
    [[ $gpu == 1 ]] && echo "== torch: the default build (a GPU is visible)" \
      || echo "== torch: the default build (the CPU-only index is not reachable from here)"
    "$py" -m pip install -q "torch$range"
  fi
fi

# rebuild only when the sources changed since the last build here (or the extension does not load)
stamp="$venv/.mdrn-fast-build"
want=$(cd "$ROOT" && cat setup.py pyproject.toml csrc/*.cpp csrc/*.h csrc/*/*.cpp csrc/*/*.h csrc/*/*.cu csrc/*/*.cuh \
  2>/dev/null | cksum | cut -d' ' -f1)
loads() {  # the package is installed in the venv and its extension loads with this torch
  [[ -x $venv/bin/mdrn-fast ]] && (cd "$venv" && "$py" -c \
    'import sys; from mdrn_fast import extension; sys.exit(extension.unavailable_reason() is not None)') 2>/dev/null
}
if [[ ! -f $stamp ]] && loads; then
  echo "$want" >"$stamp"  # built before this script ran (e.g. by .ci/run): adopt it
fi
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]] || ! loads; then
  if [[ $gpu == 1 || $cuda == 1 ]]; then
    echo "== building mdrn_fast with its CUDA kernels (about 4-8 minutes on 2 cores)"
    unset MDRN_FAST_NO_CUDA
  else
    echo "== building mdrn_fast, CPU kernels only (no GPU visible; --cuda builds the CUDA kernels too)"
    export MDRN_FAST_NO_CUDA=1
  fi
  "$py" -m pip install -q --upgrade pip setuptools wheel ninja
  (cd "$ROOT" && "$py" -m pip install -q --no-build-isolation -e .)
  echo "$want" >"$stamp"
fi

# results of an earlier run in the output folder are replaced, but never an input (nor a file beside one)
replace=(--overwrite)
mkdir -p "$out"
for f in "${inputs[@]}"; do
  d=$f; [[ -d $d ]] || d=$(dirname "$f")
  [[ "$(cd "$d" && pwd -P)" == "$(cd "$out" && pwd -P)" ]] && replace=()
done
extra=("${replace[@]}" "${extra[@]}")
echo "== mdrn-fast denoise ${inputs[*]} -o $out"
"$venv/bin/mdrn-fast" denoise "${inputs[@]}" -o "$out" "${extra[@]}" | tee "$venv/.mdrn-fast-last"
written=$(sed -n 's/.* -> \([^ ]*\).*/\1/p' "$venv/.mdrn-fast-last" | tail -n 1)
[[ -n $written ]] && echo "== done: the denoised picture is $written (all results in $out/)"
