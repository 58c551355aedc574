"""The zero-padded full-resolution head (core.accel.pad_head_channels) against the plain folded
network, on the CUDA-graph and compiled fast paths, side by side in one process; PSNR of each
against eager fp32.

    PYTHONPATH=. python bench/head_padding.py [--size 1024] [--preset s3net] [--json F]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infer import realistic_weights  # noqa: E402
from core.accel import CompiledS3Net, GraphedS3Net  # noqa: E402
from core.metrics import psnr  # noqa: E402
from core.model import create_model  # noqa: E402


def timed(fn, x, n=50) -> float:
    for _ in range(10):
        fn(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    model = realistic_weights(create_model(a.preset)).eval().to(dev)
    x = torch.rand((1, 8, a.size, a.size), device=dev, generator=torch.Generator(dev).manual_seed(0))
    with torch.inference_mode():
        eager_ms = timed(model.forward_packed, x, 20)
        ref = model.forward_packed(x).float().clamp(0, 1)
    rows = {"eager fp32": {"ms": eager_ms, "psnr_db": None}}
    xh = x.half().contiguous(memory_format=torch.channels_last)
    for pad in (False, True):
        g = GraphedS3Net(model, dev, pad_head=pad)
        c = CompiledS3Net(g)
        t0 = time.perf_counter()
        c.prepare(tuple(xh.shape), wait=True)
        compile_s = time.perf_counter() - t0
        tag = "padded head" if pad else "plain"
        for name, fn in ((f"CUDA graph, {tag}", g), (f"compiled + CUDA graph, {tag}", c)):
            ms = timed(fn, xh)
            out = fn(xh).float().clamp(0, 1)
            db = psnr(out[0].permute(1, 2, 0).cpu().numpy(), ref[0].permute(1, 2, 0).cpu().numpy())
            rows[name] = {"ms": ms, "psnr_db": db, **({"compile_s": compile_s} if "compiled" in name else {})}
    print(f"{a.preset} {a.size}², {torch.cuda.get_device_name()}\n")
    print("| path | ms | vs eager fp32 | PSNR vs eager fp32 |\n| --- | --- | --- | --- |")
    for k, r in rows.items():
        db = "" if r["psnr_db"] is None else f"{r['psnr_db']:.1f} dB"
        print(f"| {k} | {r['ms']:.2f} | {eager_ms / r['ms']:.2f}× | {db} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
