"""A light as numbers: azimuth (degrees, clockwise from N seen from above) and colour temperature.

Convention (the renderer's and VIDIT's): **N points away from the camera** (into the scene, up in
the image), **E to the camera's right**. The light sits at a fixed elevation and distance around
the scene centre, as in the synthetic training scenes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RelightError
from ..vocab import AZIMUTH_DEG, KELVIN_RANGE

LIGHT_ELEVATION_DEG = 30.0
LIGHT_DISTANCE = 6.5
SCENE_CENTRE = (0.0, 0.0, 2.0)


def azimuth_of(direction: str | float) -> float:
    """A compass name (N, NNE, NE, ... NW) or a number of degrees -> degrees in [0, 360)."""
    if isinstance(direction, str):
        name = direction.strip().upper()
        if name in AZIMUTH_DEG:
            return AZIMUTH_DEG[name]
        try:
            value = float(name.removesuffix("DEG").removesuffix("°"))
        except ValueError:
            raise RelightError(f"unknown light direction '{direction}' (use N, NE, E, ... NW or degrees, "
                               "0 = N = away from the camera, 90 = E = the camera's right)") from None
    elif isinstance(direction, (int, float, np.integer, np.floating)) and not isinstance(direction, bool):
        value = float(direction)
    else:
        raise RelightError(f"light direction must be a compass name or degrees, not {type(direction).__name__}")
    if not math.isfinite(value):
        raise RelightError(f"light direction must be a finite number of degrees, not {direction}")
    return value % 360.0


def light_position(azimuth_deg: float) -> np.ndarray:
    az = math.radians(azimuth_deg)
    el = math.radians(LIGHT_ELEVATION_DEG)
    horiz = LIGHT_DISTANCE * math.cos(el)
    # x = east (camera right), z = north (away from the camera), y = up
    cx, cy, cz = SCENE_CENTRE
    return np.array([cx + horiz * math.sin(az), cy + LIGHT_DISTANCE * math.sin(el), cz + horiz * math.cos(az)], np.float32)


@dataclass(frozen=True)
class Light:
    """A target lighting: ``Light(azimuth=45, kelvin=3500)`` or ``Light.parse("NE", 3500)``."""

    azimuth: float = 0.0
    kelvin: float = 6500.0

    def __post_init__(self):
        lo, hi = KELVIN_RANGE
        if isinstance(self.kelvin, bool) or not isinstance(self.kelvin, (int, float, np.integer, np.floating)):
            raise RelightError(f"colour temperature must be a number of kelvin, not {type(self.kelvin).__name__}")
        if not (math.isfinite(self.kelvin) and lo <= self.kelvin <= hi):
            raise RelightError(f"colour temperature must be between {lo} and {hi} K, not {self.kelvin:g}")
        object.__setattr__(self, "azimuth", azimuth_of(self.azimuth))

    @classmethod
    def parse(cls, direction: str | float, kelvin: float = 6500.0) -> "Light":
        return cls(azimuth_of(direction), float(kelvin))

    def describe(self) -> str:
        name = next((n for n, a in AZIMUTH_DEG.items() if abs(a - self.azimuth) < 1e-6), None)
        where = f"{name} ({self.azimuth:g}°)" if name else f"{self.azimuth:g}°"
        return f"light from {where}, {self.kelvin:g} K"
