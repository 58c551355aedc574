"""Image quality metrics on float images in [0, 1]."""
from __future__ import annotations

import math

import numpy as np
import torch

from .losses import ssim_map

BORDER = 5  # (11 - 1) // 2: ignore the zero-padded rim, as skimage does


def _double(a: np.ndarray | torch.Tensor) -> torch.Tensor:
    return (a if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))).double()


def psnr(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    p, t = _double(pred), _double(target)
    mse = float(((p.clamp(0, 1) - t) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """Mean SSIM over channels (Gaussian window 11, sigma 1.5), borders excluded. HWC or NCHW."""
    def nchw(a):
        a = _double(a)
        if a.ndim == 3 and a.shape[-1] in (1, 3):  # HWC image
            return a.permute(2, 0, 1)[None]
        return a[None] if a.ndim == 3 else a

    m = ssim_map(nchw(pred).clamp(0, 1), nchw(target))
    return float(m[..., BORDER:-BORDER, BORDER:-BORDER].mean())
