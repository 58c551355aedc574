"""Where the compiled fast path's time floor is at batch 1: each part of the reshaped network
compiled and captured alone (time, kernels, FLOPs, the rate it reaches), and the whole path at
batch 1, 2 and 4 (time per image once the GPU has enough pixels to fill its SMs).

    PYTHONPATH=. python bench/latency_floor.py [--size 1024] [--preset s3net] [--batches 1,2,4] [--json F]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fast_steps import bench_record, graph_time, module_inputs, timed  # noqa: E402
from bench.infer import realistic_weights  # noqa: E402
from bench.kernel_choices import profile_kernels  # noqa: E402
from core.engine.accel import CompiledS3Net, GraphedS3Net  # noqa: E402
from core.model import create_model  # noqa: E402

PARTS = (
    "encoder.layer1",
    "encoder.layer2",
    "encoder.layer3",
    "mid_conv",
    "attention1",
    "attention2",
    "enhancer",
    "tail",
)


def part_rows(model, x) -> list[dict]:
    """Each part of `model` compiled alone on the input it gets in a whole forward pass."""
    names = dict(model.named_modules())
    inputs = module_inputs(model, x, ("encoder", *PARTS))
    rows = []
    for n in ("encoder", *PARTS):
        torch._dynamo.reset()
        part = torch.compile(names[n], dynamic=False)
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            names[n](inputs[n])
        flops = counter.get_total_flops()
        ms = graph_time(part, inputs[n])
        prof = profile_kernels(part, inputs[n])
        rows.append(
            {
                "part": n,
                "in": list(inputs[n].shape),
                "ms": ms,
                "kernels": prof["kernels"],
                "gflop": flops / 1e9,
                "tflops": flops / ms / 1e9,
                "us_per_kernel": ms * 1000 / max(prof["kernels"], 1),
            }
        )
        r = rows[-1]
        print(
            f"{n:16s} {r['ms']:6.3f} ms  {r['kernels']:4d} kernels  {r['gflop']:7.1f} GFLOP  "
            f"{r['tflops']:6.1f} TFLOP/s  {r['us_per_kernel']:5.1f} µs/kernel",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--batches", default="1,2,4")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    out, save = bench_record(a)

    model = realistic_weights(create_model(a.preset)).eval().to(dev)
    comp = CompiledS3Net(GraphedS3Net(model, dev))
    x = torch.rand((1, 8, a.size, a.size), device=dev, dtype=torch.float16).contiguous(
        memory_format=torch.channels_last
    )
    out["parts"] = part_rows(comp.model, x)
    save()
    rows = out.setdefault("batches", [])
    for n in (int(b) for b in a.batches.split(",")):
        torch._dynamo.reset()
        comp = CompiledS3Net(GraphedS3Net(model, dev))
        xb = x.expand(n, -1, -1, -1).contiguous(memory_format=torch.channels_last)
        t0 = time.perf_counter()
        comp.prepare(tuple(xb.shape), wait=True)
        ms = min(timed(comp, xb) for _ in range(3))
        rows.append({"batch": n, "ms": ms, "ms_per_image": ms / n, "compile_s": time.perf_counter() - t0})
        print(f"batch {n}: {ms:.2f} ms, {ms / n:.2f} ms per image", flush=True)
        save()
        del comp
        torch.cuda.empty_cache()
    save()


if __name__ == "__main__":
    main()
