"""The renderer: synthetic scenes with exact ground truth (training data and compass guides)."""

from .color import kelvin_to_linear_rgb
from .light import Light, azimuth_of, light_position
from .scene import DEPTH_FAR, Scene, random_scene, reference_scene, render_scene, scene_rng

__all__ = [
    "DEPTH_FAR",
    "Light",
    "Scene",
    "azimuth_of",
    "kelvin_to_linear_rgb",
    "light_position",
    "random_scene",
    "reference_scene",
    "render_scene",
    "scene_rng",
]
