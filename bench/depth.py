"""Depth Anything V2 Small through core.depth.estimation: the first release's path ("old": OpenCV resize
and normalisation, float64 conversion on the CPU, the plain transformers network) and the current one
("new": every step as torch ops on the device, the network rewritten for inference, a CUDA graph per
repeated shape on CUDA) side by side in one process, at 518 px and 1022 px (1024 rounded to the patch
size), fp32 and fp16 on CUDA, fp32 on the CPU.

Per case: the whole ``estimate`` call (a new image each time: the result cache is cleared) and the
network alone (its input prepared beforehand), median and minimum of --reps calls after warm-up, old
and new interleaved call by call so that a busy machine slows both alike. Accuracy: each new result
against the old fp32 one of the same image, as the median relative difference of the depth maps and
its 99th percentile ("within 1 %" needs both under 1 %). With random weights (no real model here) the
depth maps mean nothing and the comparison is only indicative: run again with the real model
(--model DIR, or installed: it is found as the app finds it) for the figures that count.

    PYTHONPATH=. python3 bench/depth.py --device cuda --json OUT/depth.json          # real model if installed
    PYTHONPATH=. python3 bench/depth.py --device cuda --random-weights --json OUT/depth.json
    PYTHONPATH=. taskset -c 0,1 python3 bench/depth.py --device cpu --random-weights --reps 5

--compile adds a third path (the rewritten network through torch.compile, inside the same CUDA graph) as
an experiment; --no-graphs runs the new path eagerly.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.depth.estimation import DepthAnything, find_depth_model  # noqa: E402


def scene(side: int, seed: int) -> np.ndarray:
    """A smooth synthetic photo (gradients, a few soft discs, mild noise): float32 RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    img = np.stack([0.3 + 0.5 * yy, 0.4 + 0.3 * xx, 0.6 - 0.4 * yy], -1)
    for _ in range(6):
        cy, cx, r = rng.random(3) * [1, 1, 0.3] + [0, 0, 0.05]
        disc = np.clip(1 - np.hypot(yy - cy, xx - cx) / r, 0, 1)[..., None]
        img = img * (1 - disc) + disc * rng.random(3)
    img += rng.normal(0, 0.02, img.shape)
    return np.clip(img, 0, 1).astype(np.float32)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stats(times: list[float], cpu: list[float] | None = None) -> dict:
    ms = np.array(times) * 1000
    out = {"median_ms": round(float(np.median(ms)), 3), "min_ms": round(float(ms.min()), 3), "n": len(ms)}
    if cpu:  # the process's CPU time per call (all threads): less sensitive than wall time to a busy machine
        out["cpu_median_ms"] = round(float(np.median(cpu)) * 1000, 3)
    return out


def time_calls(ests: dict[str, DepthAnything], images: list[np.ndarray], warmup: int) -> dict[str, dict]:
    """Whole estimate() calls, the estimators interleaved call by call; a new image each call."""
    dev = next(iter(ests.values())).device
    for est in ests.values():
        for i in range(warmup):  # the same shape twice at least: the fast path captures its CUDA graph
            est.clear_cache()
            est.estimate(images[i % len(images)])
    times: dict[str, list[float]] = {k: [] for k in ests}
    cpu: dict[str, list[float]] = {k: [] for k in ests}
    for img in images:
        for name, est in ests.items():
            est.clear_cache()
            sync(dev)
            c0, t0 = time.process_time(), time.perf_counter()
            est.estimate(img)
            sync(dev)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {k: stats(v, cpu[k] if dev.type == "cpu" else None) for k, v in times.items()}


def time_network(ests: dict[str, DepthAnything], side: int, reps: int, warmup: int) -> dict[str, dict]:
    """The network alone (eager), its input already on the device in the estimator's precision."""
    dev = next(iter(ests.values())).device
    x = {k: torch.randn(1, 3, side, side, device=dev, dtype=e.dtype) for k, e in ests.items()}
    times: dict[str, list[float]] = {k: [] for k in ests}
    with torch.inference_mode():
        for k, est in ests.items():
            for _ in range(warmup):
                est.model(pixel_values=x[k])
        for _ in range(reps):
            for k, est in ests.items():
                sync(dev)
                t0 = time.perf_counter()
                est.model(pixel_values=x[k])
                sync(dev)
                times[k].append(time.perf_counter() - t0)
    return {k: stats(v) for k, v in times.items()}


def compare(depth: np.ndarray, ref: np.ndarray) -> dict:
    rel = np.abs(depth.astype(np.float64) - ref) / np.abs(ref)
    med, p99 = float(np.median(rel)), float(np.percentile(rel, 99))
    return {"median_rel": med, "p99_rel": p99, "max_rel": float(rel.max()), "within_1pct": med < 0.01 and p99 < 0.01}


def random_model_folder() -> Path:
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = Path(tempfile.mkdtemp(prefix="depth-random-"))
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(DepthAnythingConfig())  # the defaults are the Small model
    # trained DINOv2 blocks have layer scales well below the initial 1.0; give the random model such
    # scales so that folding them into the linear layers is exercised
    with torch.no_grad():
        for layer in model.backbone.encoder.layer:
            layer.layer_scale1.lambda1.uniform_(0.05, 1.0)
            layer.layer_scale2.lambda1.uniform_(0.05, 1.0)
    model.save_pretrained(folder, safe_serialization=True)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--sizes", type=int, nargs="+", default=[518, 1022], help="image side = the network's input side")
    ap.add_argument("--reps", type=int, default=None, help="timed calls per case (default: 30 on CUDA, 5 on the CPU)")
    ap.add_argument(
        "--warmup", type=int, default=None, help="warm-up calls per case (default: 5 on CUDA, 1 on the CPU)"
    )
    ap.add_argument("--model", default=None, help="a Depth Anything folder (default: the installed one, if any)")
    ap.add_argument("--random-weights", action="store_true", help="the real architecture with random weights")
    ap.add_argument("--no-graphs", action="store_true", help="new path without CUDA graphs")
    ap.add_argument(
        "--compile",
        action="store_true",
        help="also a 'new+compile' path: the rewritten network through torch.compile (inductor), in the same "
        "CUDA graph; an experiment (one compile per size and precision; not used by the app)",
    )
    ap.add_argument("--json", default=None, help="write every figure to this JSON file")
    args = ap.parse_args()
    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    reps = args.reps or (30 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)

    folder = None if args.random_weights else (Path(args.model) if args.model else find_depth_model())
    weights = "real" if folder is not None else "random"
    if folder is None:
        folder = random_model_folder()
    machine = torch.cuda.get_device_name(dev) if cuda else f"{platform.processor() or platform.machine()} CPU"
    import transformers

    info = {
        "device": str(dev),
        "machine": machine,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "weights": weights,
        "model": str(folder) if weights == "real" else "Depth Anything V2 Small architecture, random weights",
        "reps": reps,
        "warmup": warmup,
        "graphs": cuda and not args.no_graphs,
    }
    print(
        f"# depth bench: {machine}, {info['threads']} threads, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {weights} weights; {reps} calls per case"
    )
    if weights == "random":
        print("# random weights: the accuracy columns are only indicative (run with the real model for those)")
    rows = []
    print(
        "| side | precision | path | whole call median ms (min) | network alone median ms (min) | "
        "vs old fp32: median rel | p99 rel | within 1 % |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for side in args.sizes:
        images = [scene(side, seed) for seed in range(max(reps, warmup, 2))]
        reference = None  # old fp32 depth of images[0]
        for prec in ("fp32", "fp16") if cuda else ("fp32",):
            ests = {
                "old": DepthAnything(folder, dev, prec, fast=False),
                "new": DepthAnything(folder, dev, prec, graphs=False if args.no_graphs else "auto"),
            }
            if args.compile:
                est = DepthAnything(folder, dev, prec, graphs=False if args.no_graphs else "auto")
                est.model = torch.compile(est.model, dynamic=False)
                ests["new+compile"] = est
            for est in ests.values():
                est.pre["size"] = side
            whole = time_calls(ests, images[:reps], warmup)
            net = time_network(ests, side, reps, warmup)
            for name, est in ests.items():
                est.clear_cache()
                depth = est.estimate(images[0]).data
                assert depth.shape == (side, side), depth.shape
                if reference is None:  # the first is old fp32
                    reference = depth.astype(np.float64)
                acc = compare(depth, reference)
                row = {
                    "side": side,
                    "precision": prec,
                    "path": name,
                    "whole_call": whole[name],
                    "network": net[name],
                    "vs_old_fp32": acc,
                    "cuda_graph": bool(getattr(est, "_graphs", None)),
                }
                rows.append(row)
                cpu_ms = f", CPU time {whole[name]['cpu_median_ms']:.0f}" if "cpu_median_ms" in whole[name] else ""
                print(
                    f"| {side} | {prec} | {name}{' (CUDA graph)' if row['cuda_graph'] else ''} | "
                    f"{whole[name]['median_ms']:.1f} ({whole[name]['min_ms']:.1f}{cpu_ms}) | "
                    f"{net[name]['median_ms']:.1f} ({net[name]['min_ms']:.1f}) | "
                    f"{acc['median_rel']:.2e} | {acc['p99_rel']:.2e} | {'yes' if acc['within_1pct'] else 'NO'} |",
                    flush=True,
                )
            del ests
            if cuda:
                torch.cuda.empty_cache()
        for prec in ("fp32", "fp16") if cuda else ("fp32",):
            mine = [r for r in rows if r["side"] == side and r["precision"] == prec]
            old = next(r for r in mine if r["path"] == "old")
            for new in (r for r in mine if r["path"] != "old"):
                speed = old["whole_call"]["median_ms"] / new["whole_call"]["median_ms"]
                print(f"# {side} px {prec}: {new['path']} whole call {speed:.2f}x faster than old (median)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
        print(f"# wrote {args.json}")


if __name__ == "__main__":
    main()
