"""Live preview throughput: drag the light once around the compass (1 degree a step, the
temperature moving too) and count updates per second. Each update is a guide lookup (rendered for
a new azimuth), the network at the preview size and the result carried to display size.

    PYTHONPATH=. python bench/live_preview.py [--device cpu|cuda] [--preview 160] [--fast]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.base.resources import demo_pair  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.engine.live import DISPLAY_SIDE, LivePreview  # noqa: E402
from core.inputs.input import InputFiles, load_input  # noqa: E402
from core.render.light import Light  # noqa: E402
from core.storage.checkpoint import BUNDLED_MODEL  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--preview", type=int, default=160, help="preview side (network input), multiple of 32")
    ap.add_argument("--display", type=int, default=DISPLAY_SIDE)
    ap.add_argument("--fast", action="store_true", help="CUDA: folded BatchNorm + fp16 + CUDA graph")
    ap.add_argument("--steps", type=int, default=360)
    ap.add_argument("--checkpoint", help="weights to preview with (default: the bundled model)")
    args = ap.parse_args()
    r = Relighter.from_checkpoint(args.checkpoint or BUNDLED_MODEL, device=args.device, accelerate=args.fast)
    demo = demo_pair()
    src = load_input(InputFiles(demo.source, demo.source_depth))
    lp = LivePreview(r, src, preview_pixels=args.preview**2, display_side=args.display)
    lp.update(Light(0, 6500))  # warm-up: geometry, kernels
    sync = torch.cuda.synchronize if r.device.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    for i in range(args.steps):
        lp.update(Light(i * 360 / args.steps, 2500 + 4000 * i / args.steps))
    sync()
    dt = time.perf_counter() - t0
    where = torch.cuda.get_device_name() if r.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"{args.steps / dt:.1f} updates/s ({dt / args.steps * 1000:.1f} ms each): {r.model_name} "
        f"({r.precision_label}) on {where}, network at {lp.pw}x{lp.ph}, result at {lp.dw}x{lp.dh}"
    )


if __name__ == "__main__":
    main()
