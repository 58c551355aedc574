#!/usr/bin/env bash
# The README's photo figure: scikit-image's sample photos relit by the bundled model under the light
# compass (E and W at 5000 K, N at 3500 K), default settings, each photo with a plain depth plane.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
.venv/bin/python - "$DIR" <<'PY'
import sys
import numpy as np
import skimage.data as data
from core.storage.io import write_image
for name in ("astronaut", "chelsea", "coffee"):
    write_image(f"{sys.argv[1]}/{name}.png", getattr(data, name)().astype(np.float32) / 255, 8)
PY
.venv/bin/python -m core eval --photos "$DIR" --sheet docs/photos.png --device cpu
