#!/usr/bin/env bash
# Gray mdrn-base on a lent GPU within a time budget: sigma 25 from scratch, then 15 and 50 fine-tuned from it,
# then BSD68 and Set12 for all three with the evaluation protocol (docs/DESIGN.md section 6).
# Step counts come from measured throughput: bench/train_probe.py first (which also picks the faster memory
# format, and whether the step replays from a CUDA graph), then the sigma-25 run's own rate for the fine-tunes. Needs no built extension (backend torch).
#
#   bash bench/gpu_train_gray.sh              # on the GPU machine; data from $MDRN_FAST_DATA or device_data/data
#   bash bench/gpu_train_gray.sh --rehearse   # here, on the CPU: mdrn-tiny, tiny patches, a few steps
#
# Environment: WORK (run folder, default runs/gpu-gray), DEADLINE (seconds from this script's start by which
# training ends, default 380; the evaluation comes after it), SHARE_25 (share of the training time for sigma 25, default 0.6), PATCH, BATCH, LR, LR_TUNE, INIT_25
# (a weight file the sigma-25 run starts from, e.g. the shipped one to train further; default: from scratch),
# MAX_STEPS (a cap on each run's steps; 30 in rehearsal).
set -uo pipefail
cd "$(dirname "$0")/.."
REHEARSE=0
[[ "${1:-}" == "--rehearse" ]] && REHEARSE=1
WORK="${WORK:-runs/gpu-gray}"
export MDRN_FAST_DATA="${MDRN_FAST_DATA:-$PWD/device_data/data}"
export PYTHONPATH="$PWD:$PWD/bench/pythonpath${PYTHONPATH:+:$PYTHONPATH}"  # the package runs from the tree, built or not
export TQDM_MININTERVAL=10 PYTHONUNBUFFERED=1
DEADLINE=${DEADLINE:-380}
SHARE_25=${SHARE_25:-0.6}
PATCH=${PATCH:-96} BATCH=${BATCH:-64} LR=${LR:-1e-3} LR_TUNE=${LR_TUNE:-5e-4}
PRESET=mdrn-base DEVICE=cuda PROBE=(--warmup 10 --steps 30) SETS="BSD68 Set12"
if [[ $REHEARSE -eq 1 ]]; then
  PRESET=mdrn-tiny DEVICE=cpu PATCH=16 BATCH=2 DEADLINE=${DEADLINE_REHEARSE:-60} PROBE=(--warmup 1 --steps 2)
  MAX_STEPS=${MAX_STEPS:-30}  # a 2-step probe on a shared CPU overstates the rate tenfold: every step still runs
  SETS="Set12"
fi
mkdir -p "$WORK"
if [[ $REHEARSE -eq 1 && ! -d $MDRN_FAST_DATA/train/Train400 ]]; then
  # no data here: small synthetic stand-ins for the two sets, so that every step still runs
  export MDRN_FAST_DATA="$WORK/data"
  python3 - "$MDRN_FAST_DATA" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

rng = np.random.default_rng(0)
for folder, count, size in (("train/Train400", 8, 48), ("test/Set12", 12, 40)):
    path = Path(sys.argv[1]) / folder
    path.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        img = 128 + 60 * np.sin((8 + i) * xx) * np.cos((5 + i) * yy) + rng.normal(0, 10, (size, size))
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path / f"{i:02d}.png")
PY
  echo "rehearsal: no Train400 here, synthetic stand-ins in $MDRN_FAST_DATA"
fi
echo "gray training: $PRESET, patch $PATCH, batch $BATCH, on $DEVICE, training ends by ${DEADLINE}s; data $MDRN_FAST_DATA"

# steps RATE SECONDS: how many steps fit in SECONDS at RATE steps/s, less 15% (start-up, checkpoints)
steps() {
  python3 -c "import sys; n = max(1, int(float(sys.argv[1]) * float(sys.argv[2]) * 0.85)); m = sys.argv[3]
print(min(n, int(m)) if m else n)" "$1" "$2" "${MAX_STEPS:-}"
}

python3 bench/train_probe.py --device $DEVICE --preset $PRESET --patch "$PATCH" --batch "$BATCH" "${PROBE[@]}" \
  --graph off,on | tee "$WORK/probe.jsonl"  # graph on fails on the CPU (a row of its own): off wins there
read -r FORMAT GRAPH RATE < <(python3 -c "
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
best = min((r for r in rows if 'ms_per_step' in r), key=lambda r: r['ms_per_step'])
print(best['memory_format'], 'on' if best['graph'] else 'off', 1000 / best['ms_per_step'])" "$WORK/probe.jsonl") \
  || { echo "probe failed"; exit 1; }
CL=()
[[ $FORMAT == channels_last ]] && CL=(--channels-last)
echo "probe: $FORMAT with graph $GRAPH is fastest, $RATE steps/s at $SECONDS s"

common=(--preset $PRESET --patch "$PATCH" --batch "$BATCH" --backend torch --device $DEVICE --loader device "${CL[@]}" --graph "$GRAPH" --recompute off
        --train-set Train400 --val-set Set12 --val-images 12 --val-every 1000000000 --ckpt-every 1000
        --log-every 200 --overwrite)
budget=$(python3 -c "print(($DEADLINE - $SECONDS - 10) * $SHARE_25)")  # 10 s: the runs' own start-up
S25=$(steps "$RATE" "$budget")
echo "sigma 25: $S25 steps in about ${budget}s"
t0=$SECONDS
INIT=()
[[ -n ${INIT_25:-} ]] && INIT=(--init "$INIT_25")
python3 -m mdrn_fast train "${common[@]}" --sigma 25 --steps "$S25" --lr "$LR" "${INIT[@]}" --out "$WORK/sigma25" \
  || { echo "sigma 25 training failed"; exit 1; }
took=$((SECONDS - t0))
# the fine-tunes, one after the other (two processes would share the GPU by time-slicing: a rate hard to
# predict), each sized from the rate the sigma-25 run had, its start-up included
rate=$(python3 -c "print($S25 / max(1, $took))")
todo=2
for s in 15 50; do
  left=$(((DEADLINE - SECONDS - 10) / todo))
  todo=$((todo - 1))
  if [[ $left -lt 15 ]]; then echo "no time left for sigma $s (${left}s)"; continue; fi
  TUNE=$(steps "$rate" "$left")
  echo "sigma $s: $TUNE steps from the sigma-25 weights, in about ${left}s"
  timeout -k 10 $((left + 60)) python3 -m mdrn_fast train "${common[@]}" --sigma $s --steps "$TUNE" --lr "$LR_TUNE" \
    --init "$WORK/sigma25/model.safetensors" --out "$WORK/sigma$s" || echo "sigma $s training failed"
done
echo "training done at $SECONDS s"

# evaluation: every weight file on every set, at once (each is short; the GPU has room)
for s in 15 25 50; do
  [[ -f $WORK/sigma$s/model.safetensors ]] || continue
  for set in $SETS; do
    python3 -m mdrn_fast eval --weights "$WORK/sigma$s/model.safetensors" --set "$set" --sigma $s --gray \
      --backend torch --device $DEVICE --json "$WORK/eval-$set-$s.json" --overwrite >"$WORK/eval-$set-$s.log" 2>&1 &
  done
done
wait
python3 - "$WORK" <<'EOF' | tee "$WORK/quality.md"
import json, sys
from pathlib import Path

work = Path(sys.argv[1])
print("| set | sigma | PSNR | SSIM |\n|---|---|---|---|")
for f in sorted(work.glob("eval-*.json")):
    _, name, sigma = f.stem.split("-")
    mean = json.loads(f.read_text())["mean"]
    print(f"| {name} | {sigma} | {mean['psnr']:.2f} | {mean['ssim']:.4f} |")
EOF
echo "gray training and evaluation done at $SECONDS s"
