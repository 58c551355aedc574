"""The normals engine: "add a light" to a photo from its depth map (no guide, no checkpoint).

``NormalsRelighter`` runs ``core.render.addlight`` on a device (CPU, CUDA or MPS) for numpy images;
``NormalsBatch`` gives it the batch runner's interface for one light; ``NormalsPreview`` keeps a
source's geometry at display size so that each move of the light costs only the shading.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch

from core.base.defaults import DEFAULTS
from core.base.device import pick_device
from core.base.errors import RelightError
from core.engine.inference import RelightResult
from core.render.addlight import DEFAULT_DISTANCE, Optics, add_light, geometry, srgb_to_linear
from core.render.light import Light
from core.render.normals import DEFAULT_FOV_DEG
from core.storage.io import DepthMap

ENGINE_NAME = "normals engine"
PREVIEW_WORK_SIDE = 160  # shading and shadows while the light moves; the picture itself is at display size
PREVIEW_STEPS = 16


@dataclass
class NormalsResult(RelightResult):
    light: Light | None = None

    def describe(self) -> str:
        w, h = self.working_size
        what = f"{self.light.describe()}, {self.light.describe_settings()}" if self.light else ""
        return f"{self.model} on {self.device}, {what}, light worked out at {w}x{h}, {self.seconds:.2f} s"


def _depth_array(depth: DepthMap | np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    d = depth.data if isinstance(depth, DepthMap) else np.asarray(depth)
    if d.shape != shape:
        raise RelightError(f"the depth map is {d.shape[1]}x{d.shape[0]} but the image is {shape[1]}x{shape[0]}")
    if not np.isfinite(d).all():
        raise RelightError("the depth map holds non-finite values")
    if float(d.max()) <= 0:
        raise RelightError("the depth map is zero everywhere: there is no surface to light")
    return np.ascontiguousarray(d, np.float32)


def check_fov(fov_deg: float) -> float:
    if not (math.isfinite(fov_deg) and 5.0 <= fov_deg <= 150.0):
        raise RelightError(f"field of view must be between 5 and 150 degrees, not {fov_deg:g}")
    return float(fov_deg)


class NormalsRelighter:
    """Adds a light to images of any size from their depth maps."""

    model_name = ENGINE_NAME
    needs_guide = False  # the batch runner reads no guide for this engine
    graphed = None
    working_pixels = None
    info = None

    def __init__(
        self,
        device: str = "auto",
        fov_deg: float = DEFAULT_FOV_DEG,
        distance: float = DEFAULT_DISTANCE,
        shadows: bool = True,
    ):
        self.device = pick_device(device)
        if not (distance > 0):
            raise RelightError(f"light distance must be positive (inf: a sun), not {distance:g}")
        self.optics = Optics(fov_deg=check_fov(fov_deg), distance=float(distance), shadows=shadows)

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[None].to(self.device)

    @torch.inference_mode()
    def relight(
        self, image: np.ndarray, depth: DepthMap | np.ndarray, light: Light, progress=None, cancel=None
    ) -> NormalsResult:
        """`image` float RGB (H, W, 3) in [0, 1] (sRGB), `depth` in the product's convention."""
        t0 = time.perf_counter()
        if cancel is not None:
            cancel.check()
        if progress:
            progress(0.1, "normals from the depth map")
        d = torch.from_numpy(_depth_array(depth, image.shape[:2])).to(self.device)
        geo = geometry(d, self.optics)
        if cancel is not None:
            cancel.check()
        if progress:
            progress(0.5, "adding the light")
        out = add_light(self._tensor(image), geo, light, self.optics)[0].permute(1, 2, 0).float().cpu().numpy()
        h, w = geo.depth.shape[-2:]
        if progress:
            progress(1.0, "done")
        return NormalsResult(
            np.ascontiguousarray(out),
            "normals",
            (w, h),
            time.perf_counter() - t0,
            str(self.device),
            "fp32",
            ENGINE_NAME,
            light=light,
        )


class NormalsBatch:
    """One light for a whole folder, with the interface the batch runner drives (``core.engine.batch``)."""

    needs_guide = False
    graphed = None

    def __init__(self, engine: NormalsRelighter, light: Light):
        self.engine, self.light = engine, light

    def relight_many(
        self, items, mode: str = "auto", batch_size: int | None = None, cancel=None, compose=None
    ) -> list[NormalsResult]:
        """`mode` and `compose` are S3Net's output settings: this engine changes the light itself."""
        out = []
        for image, _guide, depth, _guide_depth in items:
            if cancel is not None:
                cancel.check()
            out.append(self.engine.relight(image, depth, self.light))
        return out


class NormalsPreview:
    """The live preview while the light moves: the source at display size, decoded to linear light
    once, its geometry at a small working size; each update shades, marches and applies."""

    def __init__(
        self,
        engine: NormalsRelighter,
        source,
        display_side: int = DEFAULTS.display_side,
        work_side: int = PREVIEW_WORK_SIDE,
        steps: int = PREVIEW_STEPS,
    ):
        h, w = source.image.shape[:2]
        scale = min(1.0, display_side / max(h, w))
        self.dw, self.dh = max(1, round(w * scale)), max(1, round(h * scale))
        self.pw, self.ph = self.dw, self.dh
        self.display = cv2.resize(source.image, (self.dw, self.dh), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(
            _depth_array(source.require_depth(), (h, w)), (self.dw, self.dh), interpolation=cv2.INTER_AREA
        )
        self.engine = engine
        self.optics = replace(engine.optics, work_side=work_side, shadow_steps=steps)
        with torch.inference_mode():
            self.image = engine._tensor(self.display)
            self.linear = srgb_to_linear(self.image)
            self.geo = geometry(torch.from_numpy(depth).to(engine.device), self.optics)

    def guide(self, light: Light):
        return None  # this engine has no guide

    @torch.inference_mode()
    def update(self, light: Light, settings=None) -> np.ndarray:
        """The lit source at display size (`settings`: S3Net's composition, unused here)."""
        out = add_light(self.image, self.geo, light, self.optics, linear=self.linear)
        return np.ascontiguousarray(out[0].permute(1, 2, 0).float().cpu().numpy())

    def describe(self) -> str:
        h, w = self.geo.depth.shape[-2:]
        return f"light worked out at {w}×{h}"
