"""One training step, variant by variant, side by side in one process: images/s and the loss curve.

Every variant starts from the same weights and sees the same batches (a pool of rendered synthetic
scenes kept on the GPU, so the loader is out of the measurement; `relight train --frame-cache` keeps
the real loader ahead of the GPU). Levers, added one at a time: fused AdamW, bf16 autocast,
channels_last, `torch.compile` of forward + loss, and CUDA-graph capture of that compiled step
(`mode="reduce-overhead"`). The loss curve of each variant is compared with the plain fp32 one
over the same steps (mean absolute difference and the first/last window means).

    PYTHONPATH=. python bench/train_step.py [--preset s3net] [--size 256] [--batch 16] [--steps 300]
        [--variants base,fused,bf16,cl,compile,graphs] [--json F]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model import create_model  # noqa: E402
from core.train.losses import LossWeights, RelightLoss  # noqa: E402

# Each variant: (fused AdamW, bf16 autocast, channels_last, compile mode or None)
VARIANTS = {
    "base": (False, False, False, None),
    "fused": (True, False, False, None),
    "bf16": (True, True, False, None),
    "cl": (True, True, True, None),
    "compile": (True, True, True, "default"),
    "graphs": (True, True, True, "reduce-overhead"),
    "fp32-compile": (True, False, True, "default"),
}


def sample_pool(n: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """`n` any-to-any triplets from rendered synthetic scenes, as tensors on the device."""
    from core.train.synthetic import synthesize
    from core.train.training import TrainConfig, build_datasets

    root = Path(tempfile.mkdtemp(prefix="relight-trainstep-"))
    synthesize(str(root), max(8, n // 16), size, seed=0, pairs=0, workers=8)
    train, _val, _ = build_datasets(TrainConfig(data=str(root), out=str(root / "run"), hflip=False))
    rng = np.random.default_rng(0)
    samples = [train[int(i)] for i in rng.choice(len(train), size=n, replace=n > len(train))]
    keys = ("source", "guide", "source_depth", "guide_depth", "target")
    return {k: torch.stack([s[k] for s in samples]).to(device) for k in keys}


def run_variant(name, model0, pool, steps, batch, lr, device) -> dict:
    fused, bf16, cl, mode = VARIANTS[name]
    torch.manual_seed(0)
    model = copy.deepcopy(model0).to(device).train()
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    loss_fn = RelightLoss(LossWeights(perceptual=0.0)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.5, 0.999), fused=fused)

    def forward_loss(src, gui, sd, gd, tgt):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            pred = model(src, gui, sd, gd)
        return loss_fn(pred, tgt)[0]

    step_fn = torch.compile(forward_loss, mode=mode) if mode else forward_loss
    n = pool["source"].shape[0]
    order = np.random.default_rng(1).integers(0, n, size=(steps, batch))
    losses, times = [], []
    t_start = time.perf_counter()
    for i in range(steps):
        idx = torch.as_tensor(order[i], device=device)
        args = [pool[k].index_select(0, idx).contiguous(memory_format=fmt) for k in ("source", "guide")]
        args += [pool[k].index_select(0, idx) for k in ("source_depth", "guide_depth", "target")]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = step_fn(*args)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    warm = times[min(20, steps // 4) :]
    return {
        "variant": name,
        "fused_adamw": fused,
        "bf16": bf16,
        "channels_last": cl,
        "compile": mode,
        "images_per_s": batch / statistics.median(warm),
        "ms_per_step": 1000 * statistics.median(warm),
        "first_steps_s": sum(times[: min(20, steps // 4)]),
        "wall_s": time.perf_counter() - t_start,
        "losses": [float(x) for x in torch.stack(losses).cpu()],
    }


def compare_curves(base: list[float], other: list[float], window: int = 25) -> dict:
    a, b = np.array(base), np.array(other)
    return {
        "mean_abs_diff": float(np.abs(a - b).mean()),
        "base_first_last": [float(a[:window].mean()), float(a[-window:].mean())],
        "first_last": [float(b[:window].mean()), float(b[-window:].mean())],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--pool", type=int, default=256)
    ap.add_argument("--variants", default="base,fused,bf16,cl,compile,graphs")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    model0 = create_model(args.preset)
    pool = sample_pool(args.pool, args.size, device)
    rows = []
    for name in args.variants.split(","):
        row = run_variant(name, model0, pool, args.steps, args.batch, args.lr, device)
        if rows:
            row["vs_base"] = compare_curves(rows[0]["losses"], row["losses"])
            row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
        rows.append(row)
        short = {k: v for k, v in row.items() if k != "losses"}
        print(json.dumps(short), flush=True)
        if args.json:  # after every variant: a run cut short keeps what it measured
            gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
            meta = {"preset": args.preset, "size": args.size, "batch": args.batch, "steps": args.steps, "device": gpu}
            Path(args.json).write_text(json.dumps({"setup": meta, "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
