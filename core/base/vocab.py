"""The product's vocabulary, defined once: precisions, engines, output modes, checkpoint formats,
training inits, where a depth map came from, light directions and temperatures, the depth model's
name. Everything else imports these names (where the product's files are: core.base.resources).

The enumerations are StrEnums: a member equals its string, so values read from settings files,
command lines and checkpoints compare and format as before; ``Enum(value)`` checks them at the
boundary."""

from __future__ import annotations

import sys
from enum import Enum
from typing import TypeVar

from core import __version__ as VERSION  # noqa: F401  (re-exported: the one version string)
from core.base.errors import RelightError

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # Python 3.10: the same behaviour (str() and format() give the value)

    class StrEnum(str, Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return format(str(self.value), spec)


E = TypeVar("E", bound=Enum)


def checked(kind: type[E], value: object, what: str, joiner: str = ", ") -> E:
    """`value` as a member of `kind`, or one error naming it and the choices (the boundary check)."""
    try:
        return kind(value)
    except ValueError:
        raise RelightError(f"unknown {what} '{value}' (use {joiner.join(str(m.value) for m in kind)})") from None


class Precision(StrEnum):
    AUTO = "auto"  # the CPU's native bf16 when it has one, fp32 elsewhere (core.base.device)
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"


PRECISIONS = tuple(p.value for p in Precision if p is not Precision.AUTO)

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


# How the network's output reaches the user (see core.engine.inference):
# full: the network's image at full resolution; gain-map: network at a working resolution, carried
# to full resolution; detail: network's lighting carried onto the source's own detail; auto: the
# default for the model and the image size.
class OutputMode(StrEnum):
    AUTO = "auto"
    DETAIL = "detail"
    FULL = "full"
    GAIN_MAP = "gain-map"


OUTPUT_MODES = tuple(m.value for m in OutputMode)


# The relighting engines: S3Net (a guide image, or the light compass's rendered guide) and the
# normals engine (a light added from the depth map's surface normals; no guide, no checkpoint).
class Engine(StrEnum):
    S3NET = "s3net"
    NORMALS = "normals"


ENGINES = tuple(e.value for e in Engine)
ENGINE_LABELS = {Engine.S3NET: "S3Net", Engine.NORMALS: "Normals (add a light)"}


class CheckpointFormat(StrEnum):
    NATIVE = "native"  # our safetensors, with metadata
    OFFICIAL = "official"  # the release's weight.pkl


class Init(StrEnum):
    """Where training starts: random weights, the ImageNet encoder, or a checkpoint's path."""

    SCRATCH = "scratch"
    IMAGENET = "imagenet"
    CHECKPOINT = "checkpoint"

    @classmethod
    def of(cls, value: str) -> Init:
        """A training config's `init` (scratch, imagenet or a path) -> its kind."""
        return cls(value) if value in (cls.SCRATCH, cls.IMAGENET) else cls.CHECKPOINT


class DepthOrigin(StrEnum):
    """Where a depth map came from (its description names the file, model or renderer)."""

    FILE = "file"
    ESTIMATED = "estimated"
    RENDERED = "rendered"


# The one depth estimator the product offers (Apache-2.0; the larger sizes are CC-BY-NC).
DEPTH_MODEL_NAME = "depth-anything-v2-small"
DEPTH_MODEL_TITLE = "Depth Anything V2 Small"
