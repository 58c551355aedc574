"""The whole training step (forward, loss, backward, optimiser update) replayed as one CUDA graph.

A training step of S3Net at 256² launches about two thousand small kernels; on an H200 the GPU
waits for the CPU to launch them. Captured once, the step is replayed with one launch: 2.8x the
images/s of the eager fp32 step for s3net and 2.1x for s3net-lite with the same loss curve
(docs/PERFORMANCE.md, `bench/train_step.py --variants base,graph-fp32`).

What a capture needs, and the trainer provides: one process (no all-reduce inside the graph), no
GradScaler (its skipped steps are decided on the CPU), a fused capturable AdamW whose learning rate
is a tensor the schedule fills in place, and no host synchronisation inside the step (loss terms stay
tensors). Batches of a new shape are first run eagerly a few times (cuDNN picks its algorithms, the
optimiser creates its state), on a side stream as the capture requires, and then captured; a run
that sees more shapes than ``max_shapes`` (or whose capture fails) goes on eagerly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import torch

Batch = dict[str, torch.Tensor]
Terms = dict[str, torch.Tensor]
Key = tuple[object, ...]  # a batch's names, shapes, dtypes and strides


def _key(b: Batch) -> Key:
    return tuple((k, tuple(v.shape), v.dtype, v.stride()) for k, v in sorted(b.items()))


class GraphedStep:
    """Calls `step(batch) -> loss terms` eagerly for the first `warmup` batches of a shape, then as a
    captured CUDA graph: the batch is copied into the graph's static inputs and the graph replayed.
    `step` must begin with ``zero_grad(set_to_none=True)`` so that the captured backward owns the
    gradients it writes."""

    def __init__(self, step: Callable[[Batch], Terms], warmup: int = 3, max_shapes: int = 2):
        self.step = step
        self.warmup = warmup
        self.max_shapes = max_shapes
        self.graphs: dict[Key, tuple[torch.cuda.CUDAGraph, Batch, Terms]] = {}
        self.seen: Counter[Key] = Counter()
        self.failed: str | None = None  # why the run went on eagerly

    def __call__(self, b: Batch) -> Terms:
        key = _key(b)
        if key in self.graphs:
            graph, static, terms = self.graphs[key]
            for k, v in b.items():
                static[k].copy_(v)
            graph.replay()
            return {k: v.clone() for k, v in terms.items()}  # the next replay overwrites them
        if self.failed or len(self.graphs) >= self.max_shapes:
            return self.step(b)
        self.seen[key] += 1
        if self.seen[key] <= self.warmup:
            side = torch.cuda.Stream()  # type: ignore[no-untyped-call]
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                terms = self.step(b)
            torch.cuda.current_stream().wait_stream(side)
            return terms
        return self._capture(key, b)

    def _capture(self, key: Key, b: Batch) -> Terms:
        static = {k: v.clone() for k, v in b.items()}
        graph = torch.cuda.CUDAGraph()
        try:
            # thread-local: the data loader's pin-memory thread goes on using CUDA during the capture
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                terms = self.step(static)
        except Exception as exc:  # an operation that cannot be captured: the same step, eagerly
            self.failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
            torch.cuda.synchronize()
            return self.step(b)
        self.graphs[key] = (graph, static, terms)
        graph.replay()  # the capture recorded the step without running it: this batch's step
        return {k: v.clone() for k, v in terms.items()}
