"""Image quality metrics on float images in [0, 1]."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from core.train.losses import ssim_map

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
    lap = (
        k[0, 1] * y[:-2, 1:-1]
        + k[1, 0] * y[1:-1, :-2]
        + k[1, 1] * y[1:-1, 1:-1]
        + k[1, 2] * y[1:-1, 2:]
        + k[2, 1] * y[2:, 1:-1]
    )
    return float(lap.var())


def detail_ratio(pred: np.ndarray, target: np.ndarray) -> float:
    """Sharpness against the target: Laplacian variance of pred over that of target (1 = as sharp,
    below 1 = blurrier, above 1 = more high-frequency energy, e.g. noise or old shadow edges)."""
    t = laplacian_variance(target)
    return float("nan") if t == 0 else laplacian_variance(pred) / t


def _lab(img: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB image in [0, 1]."""
    a = np.clip(np.asarray(img, np.float32), 0, 1)
    return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2Lab).astype(np.float64)


def chroma(img: np.ndarray) -> float:
    """Mean Lab chroma sqrt(a*^2 + b*^2): how colourful an image is."""
    lab = _lab(img)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def colour_ratio(pred: np.ndarray, reference: np.ndarray) -> float:
    """Colourfulness kept: mean Lab chroma of pred over that of the reference (1 = as colourful,
    below 1 = greyer). Against the target with ground truth, against the source for photos."""
    r = chroma(reference)
    return float("nan") if r == 0 else chroma(pred) / r


def delta_e(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean colour error: CIE76 Delta E_ab over the pixels."""
    return float(np.linalg.norm(_lab(pred) - _lab(target), axis=-1).mean())


def _luma_laplacian(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img, dtype=np.float32)
    y = a @ np.asarray(LUMA, np.float32) if a.ndim == 3 else a
    return cv2.Laplacian(y, cv2.CV_32F, ksize=1)


def detail_correlation(pred: np.ndarray, source: np.ndarray) -> float:
    """Detail kept: correlation of the luminance Laplacians of pred and source (1 = the same edges
    and texture; a blur or halos lower it)."""
    a, b = _luma_laplacian(pred).ravel().astype(np.float64), _luma_laplacian(source).ravel().astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float(a @ a) * float(b @ b))
    return float("nan") if den == 0 else float(a @ b) / den


def exposure_ratio(pred: np.ndarray, source: np.ndarray) -> float:
    """Mean luminance of pred over that of the source (sRGB values)."""
    lum = np.asarray(LUMA)
    s = float((np.asarray(source, np.float64) @ lum).mean())
    return float("nan") if s == 0 else float((np.asarray(pred, np.float64) @ lum).mean()) / s


def geometric_mean(values) -> float:
    v = np.asarray([x for x in values if np.isfinite(x) and x > 0], np.float64)
    return float(np.exp(np.log(v).mean())) if len(v) else float("nan")
