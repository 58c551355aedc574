"""Start-up of the compiled CUDA path, as the app and `relight infer --fast` see it: the first relight
is served at once by the CUDA graph while torch.compile runs in the background; later relights use
the compiled graph. Run twice with the same TORCHINDUCTOR_CACHE_DIR to see a warm cache.

    PYTHONPATH=. python bench/compile_start.py [--size 1024] [--preset s3net]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infer import realistic_weights  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.model import create_model  # noqa: E402
from core.train.metrics import psnr  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    args = ap.parse_args()
    model = realistic_weights(create_model(args.preset)).eval()
    rng = np.random.default_rng(0)
    s = args.size
    src, gui = rng.random((s, s, 3), dtype=np.float32), rng.random((s, s, 3), dtype=np.float32)
    sd, gd = rng.random((s, s), dtype=np.float32), rng.random((s, s), dtype=np.float32)
    ref = Relighter(model, device="cuda").relight(src, gui, sd, gd, mode="full").image
    t0 = time.perf_counter()
    r = Relighter(model, device="cuda", accelerate=True)
    first = r.relight(src, gui, sd, gd, mode="full")
    t_first = time.perf_counter() - t0
    shape = next(iter(r.graphed.pending | set(r.graphed.ready)))
    while shape in r.graphed.pending:
        time.sleep(0.05)
    t_ready = time.perf_counter() - t0
    res = r.relight(src, gui, sd, gd, mode="full")
    print(
        f"first result after {t_first:.2f} s ({first.precision}); compiled path ready after {t_ready:.1f} s "
        f"(compile/load {r.graphed.compile_seconds.get(shape, float('nan')):.1f} s); then: {res.precision}; "
        f"PSNR vs eager fp32 {psnr(res.image, ref):.1f} dB; error: {r.graphed.error}"
    )


if __name__ == "__main__":
    main()
