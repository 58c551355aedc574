"""One training step, variant by variant, side by side in one process: images/s and the loss curve.

Every variant starts from the same weights and sees the same batches (a pool of rendered synthetic
scenes kept on the GPU, so the loader is out of the measurement; `relight train --frame-cache` keeps
the real loader ahead of the GPU). Levers, added one at a time: fused AdamW, bf16 autocast,
channels_last, `torch.compile` of forward + loss, CUDA-graph capture of that compiled step
(`mode="reduce-overhead"`), and a manual capture of the whole step ("graph"). The loss curve of
each variant is compared with the plain fp32 one over the same steps
(mean absolute difference and the first/last window means).

    PYTHONPATH=. python bench/train_step.py [--preset s3net] [--size 256] [--batch 16] [--steps 300]
        [--variants base,fused,bf16,cl,compile,graph] [--profile N] [--json F]
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

# Each variant: (fused AdamW, bf16 autocast, channels_last, compile mode or None); "graph" is a
# manual CUDA-graph capture of the whole step (forward, loss, backward, optimizer) with static inputs.
VARIANTS = {
    "base": (False, False, False, None),
    "fused": (True, False, False, None),
    "bf16": (True, True, False, None),
    "cl": (True, True, True, None),
    "compile": (True, True, True, "default"),
    "graphs": (True, True, True, "reduce-overhead"),
    "fp32-compile": (True, False, True, "default"),
    "graph-fp32": (True, False, False, "graph"),
    "graph": (True, True, False, "graph"),
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


def run_variant(name, model0, pool, steps, batch, lr, device, profile: int = 0) -> dict:
    fused, bf16, cl, mode = VARIANTS[name]
    graph = mode == "graph"
    torch.manual_seed(0)
    model = copy.deepcopy(model0).to(device).train()
    fmt = torch.channels_last if cl else torch.contiguous_format
    model = model.to(memory_format=fmt)
    loss_fn = RelightLoss(LossWeights(perceptual=0.0)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.5, 0.999), fused=fused, capturable=graph)

    def forward_loss(src, gui, sd, gd, tgt):
        # autocast's weight cache would hold tensors from outside a captured graph
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=not graph):
            pred = model(src, gui, sd, gd)
        return loss_fn(pred, tgt)[0]

    keys = ("source", "guide", "source_depth", "guide_depth", "target")
    n = pool["source"].shape[0]
    order = np.random.default_rng(1).integers(0, n, size=(steps, batch))

    def batch_at(i):
        idx = torch.as_tensor(order[i], device=device)
        return [
            pool[k].index_select(0, idx).contiguous(memory_format=fmt if k in keys[:2] else torch.contiguous_format)
            for k in keys
        ]

    if graph:
        step_fn = capture_step(model, opt, forward_loss, batch_at(0))
    else:
        compiled = torch.compile(forward_loss, mode=mode) if mode else forward_loss

        def step_fn(*args):
            opt.zero_grad(set_to_none=True)
            loss = compiled(*args)
            loss.backward()
            opt.step()
            return loss.detach()

    losses, times = [], []
    t_start = time.perf_counter()
    for i in range(steps):
        args = batch_at(i)
        t0 = time.perf_counter()
        losses.append(step_fn(*args))
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    warm = times[min(20, steps // 4) :]
    row = {
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
    if profile:
        row["profile"] = profile_steps(step_fn, [batch_at(i % steps) for i in range(profile)], device)
    return row


def capture_step(model, opt, forward_loss, example):
    """The whole training step as one CUDA graph: static input tensors the batches are copied into,
    a capturable fused AdamW. Three warm-up steps on a side stream (as the capture needs) are undone
    so that the loss curve starts from the same weights as the other variants."""
    static = [t.clone() for t in example]
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            forward_loss(*static).backward()
            opt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = forward_loss(*static)
        static_loss.backward()
        opt.step()
    with torch.no_grad():  # back to the start: the warm-up's weights, statistics and moments undone
        for k, v in model.state_dict().items():
            v.copy_(saved[k])
        for state in opt.state.values():
            for v in state.values():
                if torch.is_tensor(v):
                    v.zero_()

    def step(*args):
        for dst, src in zip(static, args, strict=True):
            dst.copy_(src)
        graph.replay()
        return static_loss.detach().clone()

    return step


def profile_steps(step_fn, batches, device) -> list[dict]:
    """The kernels and operators that take the GPU time over a few steps, largest first."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for args in batches:
            step_fn(*args)
        if device.type == "cuda":
            torch.cuda.synchronize()
    rows = []
    for e in prof.key_averages():
        dev_us = getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0)
        rows.append(
            {
                "name": e.key[:90],
                "calls": e.count,
                "self_device_ms": dev_us / 1000,
                "self_cpu_ms": e.self_cpu_time_total / 1000,
            }
        )
    rows.sort(key=lambda r: -r["self_device_ms"])
    total = sum(r["self_device_ms"] for r in rows)
    print(f"profile: {len(batches)} steps, device time {total:.1f} ms", flush=True)
    for r in rows[:25]:
        print(f"  {r['self_device_ms']:8.1f} ms {r['calls']:6d}x  {r['name']}", flush=True)
    return rows[:40]


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
    ap.add_argument("--profile", type=int, default=0, help="profile this many steps of each variant")
    ap.add_argument("--json")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # as `relight train` runs
    torch.manual_seed(0)
    model0 = create_model(args.preset)
    pool = sample_pool(args.pool, args.size, device)
    rows = []
    for name in args.variants.split(","):
        row = run_variant(name, model0, pool, args.steps, args.batch, args.lr, device, args.profile)
        if rows:
            row["vs_base"] = compare_curves(rows[0]["losses"], row["losses"])
            row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
        rows.append(row)
        short = {k: v for k, v in row.items() if k not in ("losses", "profile")}
        print(json.dumps(short), flush=True)
        if args.json:  # after every variant: a run cut short keeps what it measured
            gpu = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
            meta = {"preset": args.preset, "size": args.size, "batch": args.batch, "steps": args.steps, "device": gpu}
            Path(args.json).write_text(json.dumps({"setup": meta, "variants": rows}, indent=1))


if __name__ == "__main__":
    main()
