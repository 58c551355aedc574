"""Training input pipeline throughput: PNG decoding in the loader workers against the frame cache
(decoded once, memory-mapped uint8 frames, float conversion and flips on the device). Same dataset,
same DataLoader settings as `relight train`, each batch moved to the device; no model.

    PYTHONPATH=. python bench/loader.py --data VIDIT_DIR --device cuda --workers 8 --batch 16 [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.train.training import TrainConfig, build_datasets, to_device  # noqa: E402


def images_per_s(cfg: TrainConfig, device: torch.device, batches: int) -> tuple[float, float]:
    """(images/s through the loader and onto the device, seconds to build the datasets)."""
    t0 = time.perf_counter()
    ds, _, _ = build_datasets(cfg)
    built = time.perf_counter() - t0
    loader = DataLoader(
        ds,
        batch_size=cfg.batch,
        shuffle=True,
        num_workers=cfg.num_workers,
        drop_last=True,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if cfg.num_workers else None,
        generator=torch.Generator().manual_seed(0),
    )
    n, t_start = 0, None
    for i, batch in enumerate(loader):
        b = to_device(batch, device, True)
        if i == 4:  # after the workers' start-up
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_start, n = time.perf_counter(), 0
        elif t_start is not None:
            n += b["source"].shape[0]
        if i == batches + 4:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t_start), built


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--crop", type=int)
    ap.add_argument("--hflip", action="store_true")
    ap.add_argument("--cache-dir")
    ap.add_argument("--json")
    a = ap.parse_args()
    device = torch.device(a.device)
    cache_dir = a.cache_dir or tempfile.mkdtemp(prefix="frame-cache-")
    rows = {}
    for kind in ("png", "frame-cache", "frame-cache (built)"):
        cfg = TrainConfig(
            data=a.data,
            batch=a.batch,
            num_workers=a.workers,
            crop=a.crop,
            hflip=a.hflip,
            frame_cache=kind != "png",
            cache_dir=cache_dir,
            val_fraction=0.0,
        )
        ips, built = images_per_s(cfg, device, a.batches)
        rows[kind] = {"images_per_s": round(ips, 1), "setup_s": round(built, 2)}
        print(f"{kind:20s} {ips:9.1f} images/s   (datasets ready in {built:.1f} s)", flush=True)
    # the first frame-cache row includes the one-time decode in setup_s; the second opens it
    summary = {
        "device": str(torch.cuda.get_device_name() if device.type == "cuda" else "cpu"),
        "workers": a.workers,
        "batch": a.batch,
        "crop": a.crop,
        "rows": rows,
        "speedup": round(rows["frame-cache (built)"]["images_per_s"] / rows["png"]["images_per_s"], 2),
    }
    print(f"frame cache / png: {summary['speedup']}x")
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
