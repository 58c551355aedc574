"""Kernel choices for the compiled fast path, side by side in one process.

1. layer3's convolutions alone (the largest share of the compiled path): cuDNN fp16 convolution, the
   same 1×1 convolution as an fp16 GEMM and as an fp8 GEMM (Hopper), each in its own CUDA graph, with
   the TFLOP/s they reach.
2. The compiled path (reshaped copy, inductor, CUDA graph) compiled with different inductor settings:
   the defaults, cuDNN's own benchmark, inductor's autotuned Triton GEMM and convolution templates, and
   the encoder's convolutions as explicit GEMMs (core.engine.accel.GemmConv); each timed against
   eager fp32 with PSNR of the raw output, and the kernel time by kind under the profiler.

    PYTHONPATH=. python bench/kernel_choices.py [--size 1024] [--preset s3net] [--variants a,b] [--json F]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.compile_profile import kind_of  # noqa: E402
from bench.fast_steps import (  # noqa: E402
    bench_record,
    eager_reference,
    graph_time,
    measure_compiled,
    print_variants,
)
from bench.infer import realistic_weights  # noqa: E402
from core.engine.accel import COMPILED_RESHAPE, GemmConv  # noqa: E402
from core.model import create_model  # noqa: E402

NOW = COMPILED_RESHAPE
GEMM_TUNING = {
    "max_autotune_gemm": True,
    "max_autotune_gemm_backends": "ATEN,TRITON",
    "max_autotune_conv_backends": "ATEN",
}
CONV_TUNING = {
    "max_autotune": True,
    "max_autotune_gemm_backends": "ATEN,TRITON",
    "max_autotune_conv_backends": "ATEN,TRITON",
}
VARIANTS: dict[str, tuple[tuple[str, ...], dict | None, bool]] = {
    # name: (reshaping steps of the compiled copy, inductor options, cudnn.benchmark)
    "inductor defaults (--fast)": (NOW, None, False),
    "cudnn.benchmark": (NOW, None, True),
    "inductor: 1x1 as GEMM, autotuned GEMMs": (NOW, {"conv_1x1_as_mm": True, **GEMM_TUNING}, False),
    "inductor: autotuned convolutions (cuDNN or Triton)": (NOW, CONV_TUNING, False),
    "inductor: 1x1 as GEMM, autotuned GEMMs and convolutions": (NOW, {"conv_1x1_as_mm": True, **CONV_TUNING}, False),
    "+ encoder 1x1 convolutions as GEMMs": ((*NOW, "gemm_1x1"), None, False),
    "+ layer3 3x3 convolutions as im2col GEMMs": ((*NOW, "im2col_layer3"), None, False),
    "+ both": ((*NOW, "gemm_1x1", "im2col_layer3"), None, False),
    "+ both, autotuned GEMMs": ((*NOW, "gemm_1x1", "im2col_layer3"), GEMM_TUNING, False),
    "+ encoder 1x1 as GEMMs, autotuned GEMMs": ((*NOW, "gemm_1x1"), GEMM_TUNING, False),
    "autotuned convolutions, + space-to-depth enhancer": ((*NOW, "space_to_depth_enhancer"), CONV_TUNING, False),
}


def layer3_kernels(size: int) -> list[dict]:
    """layer3's block convolutions (64² at 1024², 1024 channels, Res2Net width 104) alone."""
    dev = torch.device("cuda")
    hw = size // 16
    m = hw * hw
    rows = []
    x1024 = torch.randn(1, 1024, hw, hw, device=dev, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    x416 = torch.randn(1, 416, hw, hw, device=dev, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    x104 = torch.randn(1, 104, hw, hw, device=dev, dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    for name, cin, cout, k, x in (
        ("conv1 1x1 1024->416", 1024, 416, 1, x1024),
        ("convs 3x3 104->104", 104, 104, 3, x104),
        ("conv3 1x1 416->1024", 416, 1024, 1, x416),
    ):
        conv = (
            torch.nn.Conv2d(cin, cout, k, padding=k // 2)
            .to(dev, torch.float16)
            .to(memory_format=torch.channels_last)
            .eval()
        )
        ms = graph_time(conv, x)
        flops = 2 * m * cin * cout * k * k
        rows.append({"op": f"{name} cuDNN fp16", "ms": ms, "tflops": flops / ms / 1e9})
        if k == 3:  # the same as im2col + one GEMM, compiled (the shifted copies in one fused kernel)
            im2col = torch.compile(GemmConv(conv), dynamic=False)
            ms = graph_time(im2col, x)
            rows.append({"op": f"{name} im2col GEMM fp16 (compiled)", "ms": ms, "tflops": flops / ms / 1e9})
        if k == 1:
            a = x.permute(0, 2, 3, 1).reshape(m, cin)
            w = conv.weight.view(cout, cin)
            ms = graph_time(lambda a, b=conv.bias, w=w: torch.addmm(b, a, w.t()), a)
            rows.append({"op": f"{name} GEMM fp16", "ms": ms, "tflops": flops / ms / 1e9})
            if hasattr(torch, "_scaled_mm") and torch.cuda.get_device_capability() >= (8, 9):
                a8 = a.to(torch.float8_e4m3fn)
                w8 = w.to(torch.float8_e4m3fn)
                one = torch.ones((), device=dev)
                try:
                    ms = graph_time(
                        lambda a8, w8=w8, one=one, b=conv.bias: torch._scaled_mm(
                            a8, w8.t(), one, one, bias=b, out_dtype=torch.float16
                        ),
                        a8,
                    )
                    rows.append({"op": f"{name} GEMM fp8 e4m3", "ms": ms, "tflops": flops / ms / 1e9})
                except Exception as exc:  # fp8 GEMMs need a recent GPU and PyTorch
                    rows.append({"op": f"{name} GEMM fp8 e4m3", "error": repr(exc)[:200]})
    return rows


def profile_kernels(fn, x) -> dict:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        for _ in range(3):
            fn(x)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(10):
                fn(x)
            torch.cuda.synchronize()
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    by_kind: dict[str, float] = defaultdict(float)
    by_name: dict[str, float] = defaultdict(float)
    for e in kernels:
        by_kind[kind_of(e.name)] += e.device_time / 10 / 1000
        by_name[e.name[:100]] += e.device_time / 10 / 1000
    return {
        "kernel_ms": sum(by_kind.values()),
        "kernels": len(kernels) // 10,
        "by_kind": dict(by_kind),
        "top": sorted(by_name.items(), key=lambda kv: -kv[1])[:25],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--preset", default="s3net")
    ap.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))), help="indices into VARIANTS")
    ap.add_argument("--no-kernels", action="store_true")
    ap.add_argument("--json")
    a = ap.parse_args()
    dev = torch.device("cuda")
    out, save = bench_record(a)
    out["inductor_cache"] = os.environ.get("TORCHINDUCTOR_CACHE_DIR")

    if not a.no_kernels:
        out["layer3_kernels"] = layer3_kernels(a.size)
        for r in out["layer3_kernels"]:
            print(r, flush=True)
        save()

    model = realistic_weights(create_model(a.preset)).eval().to(dev)
    x = torch.rand((1, 8, a.size, a.size), device=dev, generator=torch.Generator(dev).manual_seed(0))
    eager_ms, ref = eager_reference(model, x)
    out["eager_fp32_ms"] = eager_ms
    print(f"{a.preset} {a.size}², {out['device']}, torch {torch.__version__}: eager fp32 {eager_ms:.2f} ms", flush=True)
    xh = x.half().contiguous(memory_format=torch.channels_last)
    rows = out.setdefault("variants", {})
    names = list(VARIANTS)
    for name in (names[int(i)] for i in a.variants.split(",")):
        steps, options, bench_cudnn = VARIANTS[name]
        torch.backends.cudnn.benchmark = bench_cudnn
        rows[name], c = measure_compiled(name, model, xh, ref, eager_ms, steps=steps, options=options)
        save()
        if c is not None:
            prof = profile_kernels(c.compiled, xh)
            rows[name]["profile"] = prof
            print(f"  kernels {prof['kernel_ms']:.2f} ms in {prof['kernels']}: ", prof["by_kind"], flush=True)
            for k, v in prof["top"][:8]:
                print(f"    {v:.3f} {k}")
            save()
        del c
        torch.cuda.empty_cache()
    torch.backends.cudnn.benchmark = False
    print_variants(rows)
    save()


if __name__ == "__main__":
    main()
