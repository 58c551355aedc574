"""Inference latency, peak memory and accuracy against eager fp32, side by side in one process.

python bench/infer.py --preset s3net --size 1024           # GPU
python bench/infer.py --preset s3net --size 512 --iters 3  # CPU
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.model import create_model  # noqa: E402


def _psnr(a, b):
    mse = float(((a.float().clamp(0, 1) - b.float().clamp(0, 1)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1 / mse)


def realistic_weights(model):
    """Weights with non-trivial BatchNorm statistics, so folded/fp16 paths are really exercised."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.75)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.05)
    return model


def time_fn(fn, device, warmup, iters):
    # Steady-state peak: memory a path keeps after warm-up (a CUDA graph's pool, folded weights)
    # plus the peak of the timed runs. cuDNN's one-off autotuning workspaces are left out.
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
    for _ in range(warmup):
        out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        retained = torch.cuda.memory_allocated() - base
        torch.cuda.reset_peak_memory_stats()
        at_reset = torch.cuda.memory_allocated()
    times = []
    for _ in range(iters):
        if device.type == "cuda":
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            out = fn()
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e) / 1000)
        else:
            t = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t)
    peak = (
        ((torch.cuda.max_memory_allocated() - at_reset + retained) / 2**30) if device.type == "cuda" else float("nan")
    )
    return out, statistics.median(times), min(times), peak


def _graphed_fp32(model, x):
    """The unchanged fp32 model captured in a CUDA graph (launch overhead removed, same arithmetic)."""
    static = x.clone()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            model.forward_packed(static)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = model.forward_packed(static)

    def fn():
        g.replay()
        return out

    return fn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--checkpoint", help="use these weights instead of random ones with realistic BN statistics")
    ap.add_argument("--json")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    if args.checkpoint:
        from core.storage.checkpoint import load_checkpoint

        model, info = load_checkpoint(args.checkpoint)
        args.preset = f"{info.preset} ({Path(args.checkpoint).name})"
        model = model.to(dev)
    else:
        model = realistic_weights(create_model(args.preset)).eval().to(dev)
    x = torch.rand(1, 8, args.size, args.size, device=dev)
    rows = []

    def run(label, fn):
        out, med, best, peak = time_fn(fn, dev, args.warmup, args.iters)
        rows.append(
            {"path": label, "median_ms": med * 1000, "min_ms": best * 1000, "peak_gib": peak, "out": out.float()}
        )
        print(f"  {label}: {med * 1000:.1f} ms", file=sys.stderr)

    with torch.inference_mode():
        run("eager fp32 (baseline)", lambda: model.forward_packed(x))
        for name, dt in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            if dev.type == "cpu" and name == "fp16":
                continue

            def f(dt=dt):
                with torch.autocast(dev.type, dtype=dt):
                    return model.forward_packed(x)

            run(f"eager {name} autocast", f)
        if dev.type == "cpu":
            mcl = model.to(memory_format=torch.channels_last)
            xcl = x.contiguous(memory_format=torch.channels_last)
            run("eager fp32 channels_last", lambda: mcl.forward_packed(xcl))

            def g():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return mcl.forward_packed(xcl)

            run("bf16 autocast channels_last", g)
        else:
            from core.engine.accel import GraphedS3Net

            run("fp32 CUDA graph", _graphed_fp32(model, x))
            fast = GraphedS3Net(model, dev, torch.float16)
            run("folded BN, fp16, channels_last, CUDA graph", lambda: fast(x))
            from core.engine.accel import CompiledS3Net

            comp = CompiledS3Net(fast)
            comp.prepare(tuple(x.shape), wait=True)
            if comp.error:
                print(f"  compile failed: {comp.error}", file=sys.stderr)
            else:
                print(f"  compiled in {comp.compile_seconds[tuple(x.shape)]:.1f} s", file=sys.stderr)
                run("+ torch.compile (inductor) in a CUDA graph (--fast)", lambda: comp(x))
    base = rows[0]
    print(
        f"\n{args.preset} {args.size}x{args.size} batch 1 on {torch.cuda.get_device_name() if dev.type == 'cuda' else 'CPU'}"
        f", torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n"
    )
    print("| path | median ms | min ms | speed-up vs eager fp32 | PSNR vs fp32 (dB) | peak GiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mem = "-" if math.isnan(r["peak_gib"]) else f"{r['peak_gib']:.2f}"
        p = "-" if r is base else f"{_psnr(r['out'], base['out']):.1f}"
        print(
            f"| {r['path']} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | {base['median_ms'] / r['median_ms']:.2f}x | {p} | {mem} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps([{k: v for k, v in r.items() if k != "out"} for r in rows], indent=2))


if __name__ == "__main__":
    main()
