"""Speed of the normals engine ("add a light"): a 1024x1024 photo and depth map, with and without
cast shadows, on the CPU and (when present) CUDA; and the live preview's updates per second at the
app's display size. Self-contained: the test scene is generated here.

    PYTHONPATH=. python3 bench/normals.py [--device cpu|cuda|all] [--size 1024] [--json out.json]

Timed per row (median of --iters runs after --warmup):
  engine     the light on tensors already on the device: geometry (normals from depth) + add_light
  end-to-end NormalsRelighter.relight: numpy image in, numpy image out (transfers included)
  light only a new light on a geometry already made (what a moving light costs)
  preview    NormalsPreview.update at display size (720 px), the light moving 3 degrees a step
The load average is recorded: on a shared machine other processes slow the CPU rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.normals import NormalsPreview, NormalsRelighter  # noqa: E402
from core.inputs.input import Input  # noqa: E402
from core.render.addlight import Optics, add_light, geometry  # noqa: E402
from core.render.light import Light  # noqa: E402
from core.storage.io import DepthMap  # noqa: E402


def scene(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured photo-like image and a depth map with a floor, a dome and a box (shadows to cast)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size].astype(np.float32) / size
    image = np.stack([0.45 + 0.25 * np.sin(9 * xx + c) * np.cos(7 * yy - c) for c in (0.0, 1.0, 2.0)], -1)
    image = np.clip(image + 0.05 * rng.standard_normal(image.shape), 0, 1).astype(np.float32)
    depth = 1 / (1 / 0.5 + yy * (1 / 0.2 - 1 / 0.5))  # a floor receding upwards
    r = np.hypot(xx - 0.35, yy - 0.55) / 0.18
    depth = depth - 0.06 * np.sqrt(np.clip(1 - r * r, 0, None))
    box = (np.abs(xx - 0.72) < 0.1) & (np.abs(yy - 0.5) < 0.15)
    depth = np.where(box, depth - 0.05, depth)
    return image, depth.astype(np.float32)


def timed(fn, iters: int, warmup: int, device: torch.device) -> list[float]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bench_device(name: str, size: int, iters: int, warmup: int, preview_steps: int) -> dict:
    engine = NormalsRelighter(name)
    dev = engine.device
    image, depth = scene(size)
    light = Light(135, 4500, elevation=35, softness=0.4)
    rows = {}
    for shadows in (False, True):
        optics = Optics(shadows=shadows)
        engine.optics = optics
        img_t = torch.from_numpy(image.transpose(2, 0, 1).copy())[None].to(dev)
        dep_t = torch.from_numpy(depth).to(dev)

        @torch.inference_mode()
        def run_engine():
            add_light(img_t, geometry(dep_t, optics), light, optics)

        with torch.inference_mode():
            geo = geometry(dep_t, optics)

        @torch.inference_mode()
        def run_light():
            add_light(img_t, geo, light, optics)

        tag = "shadows" if shadows else "no shadows"
        for what, fn in (
            ("engine", run_engine),
            ("light only", run_light),
            ("end-to-end", lambda: engine.relight(image, depth, light)),
        ):
            ms = timed(fn, iters, warmup, dev)
            rows[f"{what}, {tag}"] = {
                "median_ms": round(statistics.median(ms), 2),
                "min_ms": round(min(ms), 2),
                "runs": len(ms),
            }
            print(
                f"{name} {size}x{size} {what:10s} {tag:10s}: median {statistics.median(ms):8.2f} ms "
                f"(min {min(ms):.2f}, {len(ms)} runs)",
                flush=True,
            )
    # the live preview: the app's display size, the light moving
    engine.optics = Optics()

    preview = NormalsPreview(engine, Input(image, DepthMap(depth, None, "as generated", "bench scene"), "bench scene"))
    k = [0]

    def step():
        k[0] += 1
        preview.update(Light(3.0 * k[0], 3500 + 10 * k[0] % 3000, elevation=30, softness=0.3))

    ms = timed(step, preview_steps, 3, dev)
    rows["preview update"] = {
        "median_ms": round(statistics.median(ms), 2),
        "updates_per_s": round(1000 / statistics.mean(ms), 1),
        "display": f"{preview.dw}x{preview.dh}",
        "light worked out at": preview.describe(),
    }
    print(
        f"{name} preview at {preview.dw}x{preview.dh} ({preview.describe()}): {1000 / statistics.mean(ms):.1f} updates/s "
        f"(median {statistics.median(ms):.2f} ms)",
        flush=True,
    )
    where = (
        torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{cpu_name()}, {torch.get_num_threads()} threads"
    )
    return {"device": str(dev), "where": where, "size": size, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="all", help="cpu, cuda or all (cpu, and cuda when present)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=None, help="timed runs (default: 10 on CPU, 50 on CUDA)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    ap.add_argument("--preview-steps", type=int, default=60)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            sys.exit("bench/normals.py: CUDA was asked for but is not available")
        devices.remove("cuda")
    result = {
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg(),
        "results": [],
    }
    for d in devices:
        gpu = d.startswith("cuda")
        result["results"].append(
            bench_device(
                d,
                args.size,
                args.iters or (50 if gpu else 10),
                args.warmup if args.warmup is not None else (10 if gpu else 2),
                args.preview_steps * (5 if gpu else 1),
            )
        )
    result["load_average_after"] = os.getloadavg()
    print(f"load average before {result['load_average_before']}, after {result['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
