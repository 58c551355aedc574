#!/usr/bin/env bash
# docs/demo_cli.png: source | guide | relit by the bundled model (default settings) | exact answer.
set -euo pipefail
cd "$(dirname "$0")/.."
D=resources/demo
OUT=$(mktemp -d)
.venv/bin/relight infer --source $D/source.png --source-depth $D/source.npy --guide $D/guide.png \
    --guide-depth $D/guide.npy --output "$OUT/relit.png" --bit-depth 8
.venv/bin/python - "$OUT/relit.png" <<'PY'
import sys
import numpy as np
from core.storage.io import read_image, write_image
from core.train.metrics import detail_ratio, psnr
d = "resources/demo/"
src, gui, tgt = (read_image(d + n) for n in ("source.png", "guide.png", "target.png"))
out = read_image(sys.argv[1])
gap = np.ones((src.shape[0], 8, 3), np.float32)
write_image("docs/demo_cli.png", np.concatenate([src, gap, gui, gap, out, gap, tgt], 1))
print(f"relit {psnr(out, tgt):.1f} dB, detail ratio {detail_ratio(out, tgt):.2f}; source {psnr(src, tgt):.1f} dB")
PY
