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


LUMA = (0.2126, 0.7152, 0.0722)


def laplacian_variance(img: np.ndarray) -> float:
    """Variance of the 3x3 Laplacian of the luminance (float64): high-frequency energy."""
    a = np.asarray(img, dtype=np.float64)
    y = a @ np.asarray(LUMA) if a.ndim == 3 else a
    k = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
    lap = (k[0, 1] * y[:-2, 1:-1] + k[1, 0] * y[1:-1, :-2] + k[1, 1] * y[1:-1, 1:-1]
           + k[1, 2] * y[1:-1, 2:] + k[2, 1] * y[2:, 1:-1])
    return float(lap.var())


def detail_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    """Sharpness against the target: Laplacian variance of pred over that of target (1 = as sharp,
    below 1 = blurrier, above 1 = more high-frequency energy, e.g. noise or old shadow edges)."""
    t = laplacian_variance(target)
    return float("nan") if t == 0 else laplacian_variance(pred) / t
