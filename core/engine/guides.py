"""Guides from numbers: the light compass.

S3Net needs a guide image + depth that shows the target lighting. The guide library supplies one
for a ``Light`` (azimuth, colour temperature):

- ``CompassGuides`` renders the renderer's fixed reference scene (``core.render.reference_scene``)
  under that light, at any azimuth and any size; the geometry is traced once per size and the
  shading once per azimuth (temperature only scales the light's colour), both kept in memory,
  and full-size guides are also kept on disk.
- ``FolderGuides`` picks, from a VIDIT-layout folder the user has, the image whose setting is
  nearest (direction by angle, then temperature) -- what the official weights were trained with.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from core.base.errors import RelightError
from core.base.vocab import AZIMUTH_DEG, DepthOrigin
from core.inputs.input import Input, InputFiles, load_input
from core.render.color import kelvin_to_linear_rgb
from core.render.light import Light, light_position
from core.render.scene import DEPTH_FAR, Camera, reference_scene, shade, tone_map, trace_geometry
from core.storage.io import DepthMap, read_depth, read_image, write_depth, write_image

REFERENCE_VERSION = "1"  # bump when the reference scene or the renderer changes (invalidates disk caches)


class CompassGuides:
    """Rendered guides of the reference scene; ``guide(light, width, height)`` -> Input. Safe to
    share between threads: the caches change under a lock."""

    def __init__(self, cache_dir: str | Path | None = None, memory_items: int = 96):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.scene = reference_scene()
        self._geometry: dict[tuple[int, int], object] = {}
        self._shading: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.memory_items = memory_items
        self._lock = threading.RLock()

    def _geo(self, width: int, height: int):
        key = (width, height)
        if key not in self._geometry:
            if len(self._geometry) > 4:
                self._geometry.clear()
            self._geometry[key] = trace_geometry(self.scene, Camera(width, height))
        return self._geometry[key]

    def _linear(self, azimuth: float, width: int, height: int) -> np.ndarray:
        key = (round(azimuth, 2), width, height)
        if key in self._shading:
            self._shading.move_to_end(key)
            return self._shading[key]
        lin = shade(self.scene, self._geo(width, height), light_position(azimuth))
        self._shading[key] = lin
        while len(self._shading) > self.memory_items:
            self._shading.popitem(last=False)
        return lin

    def _disk_path(self, light: Light, width: int, height: int) -> Path | None:
        if self.cache_dir is None:
            return None
        tag = hashlib.sha1(
            f"{REFERENCE_VERSION}:{light.azimuth:.2f}:{light.kelvin:.0f}:{width}x{height}".encode()
        ).hexdigest()[:16]
        return self.cache_dir / f"guide-{tag}"

    def guide(self, light: Light, width: int = 384, height: int | None = None) -> Input:
        height = height or width
        if min(width, height) < 32 or max(width, height) > 8192:
            raise RelightError(f"a compass guide must be 32 to 8192 pixels a side, not {width}x{height}")
        origin = f"rendered (light compass, {light.describe()})"
        disk = self._disk_path(light, width, height)
        if disk is not None and disk.with_suffix(".png").is_file() and disk.with_suffix(".npy").is_file():
            try:
                image, depth = read_image(disk.with_suffix(".png")), read_depth(disk.with_suffix(".npy"))
                return Input(image, DepthMap(depth.data, None, "as rendered", origin, DepthOrigin.RENDERED), origin)
            except RelightError:
                pass  # a damaged cache entry: render again
        with self._lock:  # the geometry and shading caches; rendering a new size takes a moment
            geo = self._geo(width, height)
            lin = self._linear(light.azimuth, width, height)
        img = tone_map(lin * kelvin_to_linear_rgb(light.kelvin)[None])
        image = np.ascontiguousarray(img.reshape(height, width, 3), np.float32)
        depth = DepthMap((geo.depth / DEPTH_FAR).astype(np.float32), None, "as rendered", origin, DepthOrigin.RENDERED)
        if disk is not None and max(width, height) >= 256:
            try:
                write_image(disk.with_suffix(".png"), image, 16)
                write_depth(disk.with_suffix(".npy"), depth.data, "npy")
            except RelightError:
                pass  # a read-only cache folder only costs speed
        return Input(image, depth, origin)


def _angle(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


class FolderGuides:
    """Guides from a VIDIT-layout folder: the image whose setting is nearest to the light."""

    def __init__(self, folder: str | Path):
        from core.inputs.layouts import scan_vidit

        self.index = scan_vidit(folder)
        self.scenes = sorted(n for n in self.index.scenes if n in self.index.depth)

    def nearest(self, light: Light) -> tuple[str, tuple[int, str]]:
        best = None
        for scene in self.scenes:
            for temp, direction in self.index.scenes[scene]:
                key = (_angle(AZIMUTH_DEG[direction], light.azimuth), abs(temp - light.kelvin), scene)
                if best is None or key < best[0]:
                    best = (key, scene, (temp, direction))
        if best is None:
            raise RelightError("no scene with its depth file in the folder", self.index.root)
        return best[1], best[2]

    def guide(self, light: Light, width: int | None = None, height: int | None = None) -> Input:
        scene, setting = self.nearest(light)
        return load_input(InputFiles(self.index.scenes[scene][setting], self.index.depth[scene]))


def compass_guide(
    light: Light, source_shape: tuple[int, int], working_pixels: int | None, guides: CompassGuides | FolderGuides
) -> Input:
    """A guide for `light` with the source's aspect ratio, at the model's working area."""
    from core.base.defaults import DEFAULTS
    from core.engine.inference import working_shape

    gw, gh = working_shape(*source_shape, working_pixels or DEFAULTS.guide_pixels)
    return guides.guide(light, gw, gh)
