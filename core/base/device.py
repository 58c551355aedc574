"""Where tensors run and the shapes the network accepts: device choice, autocast precision and
padding. A leaf: training, depth estimation and the engines import it; it imports no engine."""

from __future__ import annotations

import contextlib

import torch

from core.base.errors import RelightError
from core.base.vocab import Precision, checked

MULTIPLE = 32  # the network's input sides are padded to a multiple of this
AUTOCAST = {Precision.FP32: None, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}


def pick_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RelightError("CUDA was asked for but no CUDA GPU is available")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RelightError("MPS was asked for but is not available on this machine")
    try:
        dev = torch.device(name)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise RelightError(f"unknown device '{name}' (use auto, cpu, cuda, cuda:N or mps)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RelightError(f"there is no {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """'auto' -> the CPU's native bf16 when it has one, fp32 elsewhere; others are checked."""
    from core.base.hardware import cpu_precision

    p = checked(Precision, precision, "precision")
    if p is Precision.AUTO:
        return Precision(cpu_precision()) if device.type == "cpu" else Precision.FP32
    return p


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """The autocast context for a resolved precision (fp32: none)."""
    dtype = AUTOCAST[Precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, tuple[int, int]]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, (h, w)
