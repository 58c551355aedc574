"""numpy <-> Qt image conversion and depth colour maps (display only; no model or file logic)."""

from __future__ import annotations

import cv2
import numpy as np
from PySide6.QtGui import QImage

COLORMAPS = {
    "turbo": cv2.COLORMAP_TURBO,
    "inferno": cv2.COLORMAP_INFERNO,
    "viridis": cv2.COLORMAP_VIRIDIS,
    "gray": None,
}


def to_qimage(rgb: np.ndarray) -> QImage:
    """float RGB [0, 1] (H, W, 3) or uint8 -> a QImage that owns its pixels."""
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    rgb = np.ascontiguousarray(rgb[:, :, :3])
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def depth_range(depth: np.ndarray) -> tuple[float, float]:
    finite = depth[np.isfinite(depth)]
    if finite.size == 0:
        return 0.0, 1.0
    return float(finite.min()), float(finite.max())


def colorize_depth(
    depth: np.ndarray, cmap: str = "turbo", lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """Depth (H, W) -> uint8 RGB with the colour map stretched over [lo, hi] (default min..max)."""
    a, b = depth_range(depth)
    lo = a if lo is None else lo
    hi = b if hi is None else hi
    x = np.nan_to_num((depth - lo) / max(hi - lo, 1e-12), nan=0.0, posinf=1.0, neginf=0.0)
    codes = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    if COLORMAPS.get(cmap) is None:
        return np.repeat(codes[:, :, None], 3, axis=2)
    return cv2.cvtColor(cv2.applyColorMap(codes, COLORMAPS[cmap]), cv2.COLOR_BGR2RGB)


def colorbar(cmap: str, height: int = 256, width: int = 14) -> np.ndarray:
    ramp = np.linspace(1, 0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    return colorize_depth(ramp, cmap, 0.0, 1.0)


def difference(a: np.ndarray, b: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """Amplified absolute difference, for the compare view's difference mode."""
    if a.shape != b.shape:
        b = cv2.resize(b, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA)
    return np.clip(np.abs(a - b) * gain, 0, 1)
