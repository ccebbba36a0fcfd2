#!/usr/bin/env bash
# Time and peak memory of `mdrn-fast denoise` (default flags) on 1, 12 and 24 megapixel gray and color photos:
# synthetic scenes with sigma-15 noise, written to a scratch folder; one process per photo, /usr/bin/time -v.
#   bash bench/photos.sh [SCRATCH]  ->  a markdown table on stdout
set -euo pipefail
dir="${1:-$(mktemp -d)}"
mkdir -p "$dir"
python3 - "$dir" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
for name, (h, w) in {"1mp": (816, 1224), "12mp": (2832, 4240), "24mp": (4000, 6000)}.items():
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / w
    base = 120 + 60 * np.sin(40 * xx) * np.cos(30 * yy)
    img = np.stack([base, base * 0.9 + 10, base * 0.8 + 20], 2) + rng.normal(0, 15, (h, w, 3)).astype(np.float32)
    Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(f"{sys.argv[1]}/{name}-color.png")
    Image.fromarray(img[:, :, 1].clip(0, 255).astype(np.uint8)).save(f"{sys.argv[1]}/{name}-gray.png")
PY
echo "| photo | kind | wall time | peak memory (max RSS) |"
echo "|---|---|---|---|"
for size in 1mp 12mp 24mp; do
  for kind in gray color; do
    /usr/bin/time -v mdrn-fast denoise "$dir/$size-$kind.png" -o "$dir/out" --overwrite >/dev/null 2>"$dir/time.txt"
    t=$(grep 'Elapsed' "$dir/time.txt" | awk '{print $NF}')
    kb=$(grep 'Maximum resident' "$dir/time.txt" | awk '{print $NF}')
    echo "| ${size^^} | $kind | $t | $(python3 -c "print(f'{$kb / 2**20:.2f} GB')") |"
  done
done
