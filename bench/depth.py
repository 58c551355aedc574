"""Depth Anything V2 Small (the real architecture, random weights) through core.depth_estimation:
latency at 518 px and at 1024x1024 input resolution, fp32 (and fp16 on CUDA).

    PYTHONPATH=. python bench/depth.py --device cuda      # or --device cpu
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.depth_estimation import DepthAnything  # noqa: E402


def timed(est: DepthAnything, img: np.ndarray, reps: int) -> float:
    est._cache.clear()
    est.estimate(img)  # warm-up (kernels, autotuning)
    times = []
    for i in range(reps):
        est._cache.clear()
        if est.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        est.estimate(img)
        if est.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    folder = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig())  # the defaults are the Small model
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(folder, safe_serialization=True)
    print(
        f"Depth Anything V2 Small architecture: {n / 1e6:.1f} M parameters; torch {torch.__version__}; "
        f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} threads'})"
    )
    rng = np.random.default_rng(0)
    print("| input to the network | precision | median ms |")
    print("| --- | --- | --- |")
    for prec in ("fp32", "fp16") if args.device == "cuda" else ("fp32",):
        for side, label in ((518, "518x518"), (1022, "1022x1022 (1024 rounded to 14)")):
            est = DepthAnything(folder, args.device, prec)
            est.pre["size"] = side
            img = rng.random((side, side, 3), dtype=np.float32)
            print(f"| {label} | {prec} | {timed(est, img, args.reps):.1f} |")


if __name__ == "__main__":
    main()
