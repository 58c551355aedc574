"""Carrying a relighting computed by the network onto the full-resolution source.

The guided-filter gain map ``carry_to_full_resolution`` (the ``gain-map`` output mode); the default
``detail`` output is ``core.engine.compose``.

S3Net pools globally (channel attention, 32-pixel enhancer pools), so tiles do not compose.
Instead the network runs on a downscaled pair and its effect is transferred as a smooth,
edge-aware gain map: ``gain = (relit + eps) / (source + eps)`` at working resolution, upsampled
with a fast guided filter (He & Sun 2015) whose guide is the source's luminance, then applied
to the full-resolution source. The ``eps`` offset lets dark regions be lifted additively rather
than multiplied from zero.
"""

from __future__ import annotations

import cv2
import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def guided_coefficients(
    guide: np.ndarray, target: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel linear model target ~ a * guide + b (guide: (h, w); target: (h, w, c))."""
    g = guide[:, :, None]
    mean_g = _box(guide, radius)[:, :, None]
    mean_t = _box(target, radius)
    cov = _box(target * g, radius) - mean_g * mean_t
    var = _box(guide * guide, radius)[:, :, None] - mean_g * mean_g
    a = cov / (var + eps)
    b = mean_t - a * mean_g
    return _box(a, radius), _box(b, radius)


def carry_to_full_resolution(
    source_full: np.ndarray,
    source_work: np.ndarray,
    relit_work: np.ndarray,
    *,
    offset: float = 0.02,
    radius: int = 4,
    eps: float = 1e-3,
    max_gain: float = 16.0,
) -> np.ndarray:
    """Apply the relighting seen at working resolution to the full-resolution source."""
    h, w = source_full.shape[:2]
    gain = (relit_work + offset) / (source_work + offset)
    gain = np.clip(gain, 0.0, max_gain).astype(np.float32)
    luma_work = (source_work @ LUMA).astype(np.float32)
    a, b = guided_coefficients(luma_work, gain, radius, eps)
    out = np.empty_like(source_full)
    luma_full = (source_full @ LUMA).astype(np.float32)
    for c in range(3):  # per channel keeps peak memory at a few full-size planes
        a_up = cv2.resize(a[:, :, c], (w, h), interpolation=cv2.INTER_LINEAR)
        b_up = cv2.resize(b[:, :, c], (w, h), interpolation=cv2.INTER_LINEAR)
        g = np.clip(a_up * luma_full + b_up, 0.0, max_gain)
        out[:, :, c] = (source_full[:, :, c] + offset) * g - offset
    np.clip(out, 0.0, 1.0, out=out)
    return out
