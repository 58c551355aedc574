"""Steps toward a faster compiled path, side by side in one process.

1. Where the folded fp16 network spends its convolution time: every part and every convolution
   captured in its own CUDA graph with its real input and timed alone (the same cuDNN kernels the
   compiled path calls, without launch gaps).
2. Variants of the compiled fast path (inductor + CUDA graph), each measured against eager fp32
   with PSNR of the raw network output against eager fp32.

    PYTHONPATH=. python bench/fast_steps.py [--size 1024] [--preset s3net] [--variants a,b,...] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.infer import realistic_weights  # noqa: E402
from core.engine.accel import (
    RESHAPE_STEPS,
    CompiledS3Net,
    GraphedS3Net,
    fold_batchnorm,
    pad_head_channels,
    reshaped_copy,
)  # noqa: E402
from core.model import create_model  # noqa: E402
from core.train.metrics import psnr  # noqa: E402

PARTS = (
    "encoder.conv1",
    "encoder.layer1",
    "encoder.layer2",
    "encoder.layer3",
    "mid_conv",
    "attention1",
    "attention2",
    "enhancer",
    "tail",
)


def timed(fn, x, n=50) -> float:
    """ms per call of fn(x) (steady state, host clock around synchronised batches)."""
    for _ in range(10):
        fn(x)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn(x)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1000


def graph_time(fn, x, n=50) -> float:
    """ms per replay of `fn(x)` captured alone in a CUDA graph."""
    with torch.inference_mode():
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                fn(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn(x)
        for _ in range(5):
            g.replay()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n):
            g.replay()
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1000


def module_inputs(model, x, names) -> dict[str, torch.Tensor]:
    """The input each named module of `model` gets in one eager forward pass on `x`."""
    modules = dict(model.named_modules())
    inputs: dict[str, torch.Tensor] = {}
    hooks = [
        modules[n].register_forward_pre_hook(lambda mod, args, n=n: inputs.setdefault(n, args[0].detach().clone()))
        for n in names
    ]
    with torch.inference_mode():
        model.forward_packed(x)
    for h in hooks:
        h.remove()
    return inputs


def breakdown(model, x) -> dict:
    """Inputs of every part and convolution from one eager run, then each timed alone."""
    names = dict(model.named_modules())
    watched = [n for n in PARTS] + [n for n, m in names.items() if isinstance(m, nn.Conv2d)]
    inputs = module_inputs(model, x, watched)
    parts = {n: graph_time(names[n], inputs[n]) for n in PARTS}
    convs = []
    for n, m in names.items():
        if isinstance(m, nn.Conv2d):
            t = inputs[n]
            convs.append(
                {
                    "name": n,
                    "ms": graph_time(m, t),
                    "in": list(t.shape),
                    "cin": m.in_channels,
                    "cout": m.out_channels,
                    "k": m.kernel_size[0],
                    "stride": m.stride[0],
                }
            )
    return {
        "parts_ms": parts,
        "parts_total_ms": sum(parts.values()),
        "whole_graph_ms": graph_time(model.forward_packed, x),
        "convs": convs,
    }


def bench_record(a) -> tuple[dict, Callable[[], None]]:
    """The results record of a bench run (machine, versions, size, preset) and a function that writes
    it to --json (after each row, so a run cut short keeps what it measured)."""
    out: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "size": a.size, "preset": a.preset}

    def save() -> None:
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=2))

    return out, save


def eager_reference(model, x) -> tuple[float, torch.Tensor]:
    """Eager fp32 ms per forward of `model` on `x`, and its output in [0, 1]."""
    with torch.inference_mode():
        eager_ms = timed(model.forward_packed, x, 20)
        ref = (model.forward_packed(x).float() + 1) / 2
    return eager_ms, ref


def measure_compiled(name: str, model, xh, ref, eager_ms: float, **compiled) -> tuple[dict, CompiledS3Net | None]:
    """The compiled path (CompiledS3Net with `compiled` settings) built for xh's shape, timed and
    compared with the eager fp32 output `ref`: its row, and the path (None when it failed)."""
    torch._dynamo.reset()
    c = CompiledS3Net(GraphedS3Net(model, xh.device), **compiled)
    t0 = time.perf_counter()
    c.prepare(tuple(xh.shape), wait=True)  # a failure is kept in c.error: the variant is reported, not fatal
    compile_s = time.perf_counter() - t0
    if c.error or not c.ready:
        print(f"{name}: failed after {compile_s:.0f} s: {c.error}", flush=True)
        return {"error": c.error, "compile_s": compile_s}, None
    ms = min(timed(c, xh) for _ in range(3))
    got = (c(xh).float() + 1) / 2
    db = psnr(got[0].permute(1, 2, 0).cpu().numpy(), ref[0].permute(1, 2, 0).cpu().numpy())
    print(
        f"{name}: {ms:.2f} ms ({eager_ms / ms:.2f}× eager fp32), {db:.1f} dB, compiled in {compile_s:.0f} s", flush=True
    )
    return {"ms": ms, "vs_eager_fp32": eager_ms / ms, "psnr_db": db, "compile_s": compile_s}, c


def print_variants(rows: dict) -> None:
    print("\n| compiled path | ms | vs eager fp32 | PSNR vs eager fp32 | compile s |\n| --- | --- | --- | --- | --- |")
    for k, r in rows.items():
        if "ms" in r:
            print(f"| {k} | {r['ms']:.2f} | {r['vs_eager_fp32']:.2f}× | {r['psnr_db']:.1f} dB | {r['compile_s']:.0f} |")
        else:
            print(f"| {k} | failed: {r['error']} | | | {r['compile_s']:.0f} |")


VARIANTS = {
    # name: (reshaping steps of the compiled copy, head channel multiple); one step added per row
    "folded": ((), 8),
    "+ padded head": (("pad_head",), 8),
    "+ padded splits": (("pad_head", "pad_splits"), 8),
    "+ space-to-depth output layer": (("pad_head", "pad_splits", "space_to_depth_tail"), 8),
    "+ space-to-depth enhancer": (("pad_head", "pad_splits", "space_to_depth_tail", "space_to_depth_enhancer"), 8),
    "space-to-depth head, no padded head": (("pad_splits", "space_to_depth_tail", "space_to_depth_enhancer"), 8),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))), help="indices into VARIANTS")
    ap.add_argument("--no-breakdown", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    out, save = bench_record(a)
    model = realistic_weights(create_model(a.preset)).eval().to(dev)
    x = torch.rand((1, 8, a.size, a.size), device=dev, generator=torch.Generator(dev).manual_seed(0))
    eager_ms, ref = eager_reference(model, x)
    out["eager_fp32_ms"] = eager_ms
    print(f"{a.preset} {a.size}², {out['device']}, torch {torch.__version__}: eager fp32 {eager_ms:.2f} ms", flush=True)
    xh = x.half().contiguous(memory_format=torch.channels_last)

    if not a.no_breakdown:
        torch.backends.cudnn.benchmark = True
        fast = pad_head_channels(fold_batchnorm(model)).half().to(memory_format=torch.channels_last)
        for label, m in (("all reshaping steps", reshaped_copy(fast, RESHAPE_STEPS)),):
            b = breakdown(m, xh)
            out.setdefault("breakdown", {})[label] = b
            print(
                f"\n{label}: whole network in one CUDA graph {b['whole_graph_ms']:.2f} ms; parts alone "
                f"{b['parts_total_ms']:.2f} ms",
                flush=True,
            )
            for n, ms in b["parts_ms"].items():
                print(f"  {n:16s} {ms:6.3f} ms")
            print("  top convolutions:")
            for c in sorted(b["convs"], key=lambda c: -c["ms"])[:20]:
                print(
                    f"    {c['ms']:6.3f} ms  {c['name']:36s} {c['cin']}->{c['cout']} k{c['k']} s{c['stride']} in {c['in']}"
                )
            save()
        del fast
        torch.backends.cudnn.benchmark = False  # as the engine runs

    rows = out.setdefault("variants", {})
    names = list(VARIANTS)
    for name in (names[int(i)] for i in a.variants.split(",")):
        steps, multiple = VARIANTS[name]
        rows[name], c = measure_compiled(name, model, xh, ref, eager_ms, steps=steps, head_multiple=multiple)
        save()
        del c
        torch.cuda.empty_cache()
    print_variants(rows)
    save()


if __name__ == "__main__":
    main()
