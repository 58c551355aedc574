"""Fast CUDA inference: BatchNorm folded into convolutions, fp16 weights, channels_last, and one
CUDA graph per input shape (half of S3Net's eager time is kernel-launch overhead).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from .model import S3Net


def _conv_for_bn(bn_name: str) -> str:
    """Name of the convolution a BatchNorm directly follows in the Res2Net v1b encoder."""
    parent, _, leaf = bn_name.rpartition(".")
    if parent.endswith("conv1") and leaf.isdigit():  # deep stem Sequential: conv, bn, relu, ...
        return f"{parent}.{int(leaf) - 1}"
    if leaf == "bn1" and parent == "encoder":
        return "encoder.conv1.6"
    if parent.endswith(".bns"):
        return f"{parent[:-4]}.convs.{leaf}"
    if parent.endswith("downsample") and leaf == "2":
        return f"{parent}.1"
    return f"{parent}.{ {'bn1': 'conv1', 'bn3': 'conv3'}[leaf] }"


def fold_batchnorm(model: S3Net) -> S3Net:
    """A copy of `model` (eval) with every BatchNorm folded into its convolution."""
    model = copy.deepcopy(model).eval()
    modules = dict(model.named_modules())
    for name, bn in list(modules.items()):
        if not isinstance(bn, nn.BatchNorm2d):
            continue
        conv = modules[_conv_for_bn(name)]
        assert isinstance(conv, nn.Conv2d), name
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        with torch.no_grad():
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            conv.bias = nn.Parameter(bias)
        parent, _, leaf = name.rpartition(".")
        setattr(modules[parent], leaf, nn.Identity())
    return model


class GraphedS3Net:
    """Replays a captured CUDA graph per (N, H, W); inputs are copied into static buffers."""

    def __init__(self, model: S3Net, device: torch.device, dtype: torch.dtype = torch.float16):
        self.device, self.dtype = device, dtype
        self.model = fold_batchnorm(model).to(device=device, dtype=dtype).to(memory_format=torch.channels_last)
        self.graphs: dict[tuple, tuple] = {}

    @torch.inference_mode()
    def _capture(self, shape):
        static_in = torch.zeros(shape, device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm up (cuDNN picks its algorithms) before capture
                self.model.forward_packed(static_in)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.model.forward_packed(static_in)
        return graph, static_in, static_out

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in self.graphs:
            self.graphs[key] = self._capture(key)
        graph, static_in, static_out = self.graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out.float()


def inductor_cache_dir() -> Path:
    from .logs import data_dir

    return data_dir() / "inductor-cache"


class CompiledS3Net:
    """The folded fp16 network compiled with torch.compile (inductor) and captured in a CUDA graph per
    input shape. Compiling takes tens of seconds, so it happens in a background thread while the
    `fallback` (GraphedS3Net) serves; the compiled path takes over per shape once it is ready. The
    inductor cache lives in the app's data folder, so a later launch loads instead of compiling."""

    def __init__(self, graphed: GraphedS3Net):
        import os
        import threading

        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
        self.fallback = graphed
        self.device, self.dtype = graphed.device, graphed.dtype
        self.compiled = torch.compile(graphed.model.forward_packed, dynamic=False)
        self.ready: dict[tuple, tuple] = {}
        self.pending: set[tuple] = set()
        self.compile_seconds: dict[tuple, float] = {}
        self._lock = threading.Lock()
        self.error: str | None = None

    def _build(self, shape: tuple) -> None:
        import time

        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                static_in = torch.zeros(shape, device=self.device, dtype=self.dtype).contiguous(
                    memory_format=torch.channels_last)
                stream = torch.cuda.Stream(self.device)
                with torch.cuda.stream(stream):
                    for _ in range(3):  # compile (or load from the cache) and warm up
                        self.compiled(static_in)
                stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
                    static_out = self.compiled(static_in)
                stream.synchronize()
            with self._lock:
                self.ready[shape] = (graph, static_in, static_out)
                self.compile_seconds[shape] = time.perf_counter() - t0
        except Exception as exc:  # compiling is an optimisation: on failure the graphed path stays
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._lock:
                self.pending.discard(shape)

    def prepare(self, shape: tuple, wait: bool = False) -> None:
        """Start compiling for `shape` in the background (or now, with wait=True)."""
        import threading

        with self._lock:
            if shape in self.ready or shape in self.pending:
                return
            self.pending.add(shape)
        if wait:
            self._build(shape)
        else:
            threading.Thread(target=self._build, args=(shape,), name="compile S3Net", daemon=True).start()

    @property
    def label(self) -> str:
        return "compiled fp16 CUDA graph" if self.ready else "fp16 CUDA graph (compiling in the background)"

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        with self._lock:
            entry = self.ready.get(key)
        if entry is None:
            self.prepare(key)
            return self.fallback(x)
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out.float()
