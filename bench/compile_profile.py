"""Where the compiled fast path spends its time: the inductor-compiled folded fp16 S3Net run under the
PyTorch profiler (outside the CUDA graph, so each kernel is seen), kernel time grouped by kind and by
the network's parts. Also times the graph-replayed compiled path for reference.

    PYTHONPATH=. python bench/compile_profile.py [--size 1024] [--preset s3net] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fast_steps import timed  # noqa: E402
from bench.infer import realistic_weights  # noqa: E402
from core.engine.accel import CompiledS3Net, GraphedS3Net  # noqa: E402
from core.model import create_model  # noqa: E402


def kind_of(name: str) -> str:
    n = name.lower()
    if any(
        k in n for k in ("conv", "implicit", "xmma", "cudnn", "sm90_", "sm80_", "gemm", "cutlass", "nchwtonhwc", "nhwc")
    ):
        return "convolution / GEMM (cuDNN, cuBLAS)"
    if n.startswith("triton_") or "triton" in n:
        if "red" in n or "per_" in n:
            return "Triton reductions (inductor)"
        return "Triton pointwise (inductor: adds, concats, activations, splits)"
    if "copy" in n or "memcpy" in n or "memset" in n:
        return "copies"
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    model = realistic_weights(create_model(a.preset)).eval()
    comp = CompiledS3Net(GraphedS3Net(model, dev))
    shape = (1, 8, a.size, a.size)
    t0 = time.perf_counter()
    comp.prepare(shape, wait=True)
    print(f"compiled in {time.perf_counter() - t0:.1f} s", flush=True)
    x = torch.rand(shape, device=dev, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    replay_ms = timed(comp, x)  # graph replay time (what --fast runs)
    print(f"compiled + CUDA graph: {replay_ms:.2f} ms", flush=True)
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(3):
            comp.compiled(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                comp.compiled(x)
            torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.device_time for e in kernels) / 10 / 1000  # ms per forward
    by_kind: dict[str, float] = defaultdict(float)
    by_name: dict[str, float] = defaultdict(float)
    count = 0
    for e in kernels:
        by_kind[kind_of(e.name)] += e.device_time / 10 / 1000
        by_name[e.name[:90]] += e.device_time / 10 / 1000
        count += 1
    print(f"\nkernel time per forward: {total:.2f} ms in {count // 10} kernels (graph replay {replay_ms:.2f} ms)\n")
    print("| kernels | ms | share |\n| --- | --- | --- |")
    for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {k} | {v:.2f} | {v / total:.0%} |")
    print("\n| top kernels | ms | share |\n| --- | --- | --- |")
    top = sorted(by_name.items(), key=lambda kv: -kv[1])[:15]
    for k, v in top:
        print(f"| `{k}` | {v:.3f} | {v / total:.1%} |")
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {
                    "replay_ms": replay_ms,
                    "kernel_ms": total,
                    "kernels": count // 10,
                    "by_kind": by_kind,
                    "top": top,
                    "device": torch.cuda.get_device_name(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
