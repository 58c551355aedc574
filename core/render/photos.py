"""Photographs as surface textures for the renderer (``relight synth --photo-textures``).

scikit-image's bundled sample photos, as linear-light reflectances in (0.02, 0.9]. The photos the
project evaluates on (astronaut, cat, coffee, rocket) are left out, so an evaluation on them is
of photos the network never saw.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from core.base.errors import RelightError

# colour photographs shipped inside scikit-image (no download)
PHOTOS = (
    "colorwheel",
    "hubble_deep_field",
    "immunohistochemistry",
    "logo",
    "coins",
    "brick",
    "grass",
    "gravel",
    "camera",
    "horse",
    "moon",
    "page",
    "text",
    "clock",
)


@lru_cache(maxsize=1)
def texture_photos() -> tuple[np.ndarray, ...]:
    try:
        from skimage import data
    except ImportError:
        raise RelightError("photo textures need scikit-image (pip install scikit-image)") from None
    out = []
    for name in PHOTOS:
        try:
            img = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001 - a photo this scikit-image version lacks or would download
            continue
        if img.dtype == bool:
            img = img.astype(np.float32)
        img = img.astype(np.float32)
        img = img / (255.0 if img.max() > 1.5 else 1.0)
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, 2)
        img = img[:, :, :3]
        lin = np.where(img <= 0.04045, img / 12.92, ((img + 0.055) / 1.055) ** 2.4)
        out.append(np.clip(0.02 + 0.88 * lin, 0.02, 0.9).astype(np.float32))
    if not out:
        raise RelightError("photo textures: scikit-image has none of its sample photos here")
    return tuple(out)
