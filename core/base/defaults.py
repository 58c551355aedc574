"""The one table of defaults every face starts from: the library's relight(), the command line,
the app's settings and the batch runner read these, so they cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from core.base.vocab import Engine, OutputMode, Precision


@dataclass(frozen=True)
class Defaults:
    device: str = "auto"  # CUDA, then Apple's MPS, then the CPU
    precision: Precision = Precision.AUTO  # bf16 on a CPU with native bf16, fp32 elsewhere
    # the fast CUDA path (folded BatchNorm, fp16, CUDA graphs, compiled in the background): used
    # wherever CUDA runs the network unless turned off; it has no effect elsewhere
    fast: bool = True
    mode: OutputMode = OutputMode.AUTO
    engine: Engine = Engine.S3NET
    exposure_ev: float = 0.0
    keep_exposure: bool | None = None  # None: kept under a compass light, the guide's with a guide photo
    guide_pixels: int = 384 * 384  # a compass guide's area when the checkpoint names no working size
    preview_pixels: int = 160 * 160  # the live preview's network size: ~20 updates/s for s3net-lite on 2 cores
    display_side: int = 720  # the live preview's picture
    depth_precision: Precision = Precision.FP32  # the depth estimator's (its output feeds a normalisation)
    bit_depth: int = 16


DEFAULTS = Defaults()


def use_fast_path(fast: bool | None, device_type: str) -> bool:
    """Whether the fast CUDA path runs: asked for (or the default) and the network is on CUDA."""
    return (DEFAULTS.fast if fast is None else bool(fast)) and device_type == "cuda"
