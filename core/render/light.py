"""A light as numbers: azimuth (degrees, clockwise from N seen from above) and colour temperature.

Convention (the renderer's and VIDIT's): **N points away from the camera** (into the scene, up in
the image), **E to the camera's right**. The light sits at a fixed elevation and distance around
the scene centre, as in the synthetic training scenes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.base.errors import RelightError
from core.base.vocab import AZIMUTH_DEG, KELVIN_RANGE

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
            raise RelightError(
                f"unknown light direction '{direction}' (use N, NE, E, ... NW or degrees, "
                "0 = N = away from the camera, 90 = E = the camera's right)"
            ) from None
    elif isinstance(direction, (int, float, np.integer, np.floating)) and not isinstance(direction, bool):
        value = float(direction)
    else:
        raise RelightError(f"light direction must be a compass name or degrees, not {type(direction).__name__}")
    if not math.isfinite(value):
        raise RelightError(f"light direction must be a finite number of degrees, not {direction}")
    return value % 360.0


def light_direction(azimuth_deg: float, elevation_deg: float = LIGHT_ELEVATION_DEG) -> np.ndarray:
    """Unit vector towards a light at `azimuth_deg` (compass) and `elevation_deg` above the horizon:
    x = east (camera right), y = up, z = north (away from the camera)."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)], np.float32)


def light_position(azimuth_deg: float) -> np.ndarray:
    return np.asarray(SCENE_CENTRE, np.float32) + LIGHT_DISTANCE * light_direction(azimuth_deg)


# What the normals engine reads besides direction and colour (S3Net's guides ignore them): name ->
# (lowest, highest, meaning). Defaults are the dataclass fields below.
LIGHT_SETTINGS = {
    "elevation": (0.0, 90.0, "degrees above the horizon"),
    "intensity": (
        0.0,
        4.0,
        "strength of the added light: a surface facing it gets ambient + intensity times its own light",
    ),
    "ambient": (0.0, 1.0, "share of the photo's own light kept where the new light does not reach"),
    "softness": (0.0, 1.0, "size of the light: 0 = hard cast shadows, 1 = a wide penumbra"),
    "flatten": (0.0, 1.0, "how much of the photo's existing light is divided out first"),
}


@dataclass(frozen=True)
class Light:
    """A target lighting: ``Light(azimuth=45, kelvin=3500)`` or ``Light.parse("NE", 3500)``.

    The normals engine also reads ``elevation``, ``intensity``, ``ambient``, ``softness`` and
    ``flatten`` (see LIGHT_SETTINGS); S3Net's compass guides use azimuth and kelvin only."""

    azimuth: float = 0.0
    kelvin: float = 6500.0
    elevation: float = LIGHT_ELEVATION_DEG
    intensity: float = 1.0
    ambient: float = 0.4
    softness: float = 0.3
    flatten: float = 0.0

    def __post_init__(self):
        lo, hi = KELVIN_RANGE
        if isinstance(self.kelvin, bool) or not isinstance(self.kelvin, (int, float, np.integer, np.floating)):
            raise RelightError(f"colour temperature must be a number of kelvin, not {type(self.kelvin).__name__}")
        if not (math.isfinite(self.kelvin) and lo <= self.kelvin <= hi):
            raise RelightError(f"colour temperature must be between {lo} and {hi} K, not {self.kelvin:g}")
        for name, (lo, hi, meaning) in LIGHT_SETTINGS.items():
            value = float(getattr(self, name))
            if not (math.isfinite(value) and lo <= value <= hi):
                raise RelightError(f"light {name} must be between {lo:g} and {hi:g} ({meaning}), not {value:g}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "azimuth", azimuth_of(self.azimuth))

    @classmethod
    def parse(cls, direction: str | float, kelvin: float = 6500.0, **settings) -> Light:
        """From a compass name or degrees; `settings` are LIGHT_SETTINGS values (None = default)."""
        return cls(azimuth_of(direction), float(kelvin), **{k: v for k, v in settings.items() if v is not None})

    def describe(self) -> str:
        name = next((n for n, a in AZIMUTH_DEG.items() if abs(a - self.azimuth) < 1e-6), None)
        where = f"{name} ({self.azimuth:g}°)" if name else f"{self.azimuth:g}°"
        return f"light from {where}, {self.kelvin:g} K"

    def describe_settings(self) -> str:
        """The normals engine's settings in words."""
        return (
            f"elevation {self.elevation:g}°, intensity {self.intensity:g}, ambient {self.ambient:g}, "
            f"softness {self.softness:g}" + (f", flatten {self.flatten:g}" if self.flatten else "")
        )
