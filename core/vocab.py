"""The product's vocabulary, defined once: precisions, light directions and temperatures, output
and compare modes. Everything else imports these names (where the product's files are: core.resources)."""

from __future__ import annotations

from typing import Literal, get_args

from . import __version__ as VERSION  # noqa: F401  (re-exported: the one version string)

PRECISIONS = ("fp32", "bf16", "fp16")

# VIDIT's eight light directions, clockwise from N seen from above. N points away from the
# camera (into the scene, up in the image), E to the camera's right.
VIDIT_DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
# The 16-point compass rose: VIDIT's eight plus the eight between them (22.5 degree steps).
COMPASS_DIRECTIONS = (
    "N",
    "NNE",
    "NE",
    "ENE",
    "E",
    "ESE",
    "SE",
    "SSE",
    "S",
    "SSW",
    "SW",
    "WSW",
    "W",
    "WNW",
    "NW",
    "NNW",
)
AZIMUTH_DEG = {d: 22.5 * i for i, d in enumerate(COMPASS_DIRECTIONS)}
TEMPERATURES = (2500, 3500, 4500, 5500, 6500)  # VIDIT's colour temperatures, kelvin
KELVIN_RANGE = (1500, 12000)  # what the compass and the renderer accept

# How the network's output reaches the user (see core.inference):
# full: the network's image at full resolution; gain-map: network at a working resolution, carried
# to full resolution; detail: network's lighting carried onto the source's own detail; auto: the
# default for the model and the image size.
OUTPUT_MODES = ("auto", "detail", "full", "gain-map")
# The relighting engines: S3Net (a guide image, or the light compass's rendered guide) and the
# normals engine (a light added from the depth map's surface normals; no guide, no checkpoint).
Engine = Literal["s3net", "normals"]
ENGINES: tuple[str, ...] = get_args(Engine)
ENGINE_LABELS = {"s3net": "S3Net", "normals": "Normals (add a light)"}
COMPARE_MODES = {"split": "Split", "side": "Side by side", "toggle": "Toggle", "difference": "Difference"}
