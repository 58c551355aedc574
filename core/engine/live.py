"""Live preview while the light moves: the network at a small size, the result at display size.

Each update looks up the compass guide at the preview size (rendered once per azimuth and kept in
memory), runs the network there, and carries its lighting onto the display-sized source with the
colour-true detail composition (core.engine.compose) with the session's output settings (the compass's
defaults when none are given). The full-resolution relight runs separately when the user lets go.
The orchestration (core.orchestration.Engines.preview) prepares one per source, after the same
depth check a relight makes."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from core.base.defaults import DEFAULTS
from core.base.device import MULTIPLE
from core.engine.compose import ComposeSettings, compose
from core.engine.guides import CompassGuides
from core.engine.inference import Relighter
from core.inputs.input import Input
from core.render.light import Light

PREVIEW_PIXELS = DEFAULTS.preview_pixels
DISPLAY_SIDE = DEFAULTS.display_side


def _fit(h: int, w: int, pixels: int, multiple: int = 1) -> tuple[int, int]:
    s = math.sqrt(pixels / (h * w))
    return max(multiple, round(w * s / multiple) * multiple), max(multiple, round(h * s / multiple) * multiple)


class LivePreview:
    def __init__(
        self,
        relighter: Relighter,
        source: Input,
        guides: CompassGuides | None = None,
        preview_pixels: int = PREVIEW_PIXELS,
        display_side: int = DISPLAY_SIDE,
        settings: ComposeSettings | None = None,
    ):
        from core.engine.compose import compass_settings

        self.relighter = relighter
        self.settings = settings or compass_settings()
        self.guides = guides or CompassGuides()
        h, w = source.image.shape[:2]
        depth = source.require_depth().data
        self.pw, self.ph = _fit(h, w, preview_pixels, MULTIPLE)
        scale = min(1.0, display_side / max(h, w))
        self.dw, self.dh = max(1, round(w * scale)), max(1, round(h * scale))
        self.display = cv2.resize(source.image, (self.dw, self.dh), interpolation=cv2.INTER_AREA)
        self.small = cv2.resize(source.image, (self.pw, self.ph), interpolation=cv2.INTER_AREA)
        self.small_depth = cv2.resize(depth, (self.pw, self.ph), interpolation=cv2.INTER_AREA)
        self.reference: np.ndarray | None = None

    def guide(self, light: Light) -> Input:
        return self.guides.guide(light, self.pw, self.ph)

    def update(self, light: Light, settings: ComposeSettings | None = None) -> np.ndarray:
        """The relit source at display size for `light` (float RGB in [0, 1]); `settings`: the
        composition for this light (default: the preview's own, at the light's temperature)."""
        settings = settings or replace(self.settings, light_kelvin=light.kelvin)
        g = self.guide(light)
        relit = self.relighter.run_network(self.small, g.image, self.small_depth, g.depth.data)
        if self.reference is None:  # the source under its own light: the same for every light
            self.reference = self.relighter.run_network(self.small, self.small, self.small_depth, self.small_depth)
        return compose(self.display, self.small, relit, settings, self.reference)
