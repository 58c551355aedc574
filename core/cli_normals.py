"""`relight infer --engine normals`: add a light from the source's depth map (no guide, no checkpoint)."""

from __future__ import annotations

import argparse
import sys

from core.base.errors import RelightError
from core.base.vocab import ENGINE_LABELS, ENGINES, Engine
from core.render.addlight import DEFAULT_DISTANCE
from core.render.light import LIGHT_SETTINGS
from core.render.normals import DEFAULT_FOV_DEG

NORMALS_FLAGS = ("elevation", "intensity", "ambient", "softness", "flatten", "fov", "light_distance", "no_shadows")


def add_normals_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine",
        default="s3net",
        choices=ENGINES,
        help="s3net (default): the network, with a guide or --light; normals: add --light from the "
        "source's depth map (no guide, no checkpoint)",
    )
    for name, (lo, hi, meaning) in LIGHT_SETTINGS.items():
        p.add_argument(
            f"--{name}",
            type=float,
            default=None,
            metavar="DEG" if name == "elevation" else "X",
            help=f"--engine normals: {meaning}, {lo:g}..{hi:g}",
        )
    p.add_argument(
        "--fov",
        type=float,
        default=None,
        help="--engine normals: the camera's field of view across the "
        f"longer side in degrees (default {DEFAULT_FOV_DEG:g})",
    )
    p.add_argument(
        "--light-distance",
        type=float,
        default=None,
        help=f"--engine normals: light distance in median scene depths (default {DEFAULT_DISTANCE:g}; "
        "inf: a sun, the same direction everywhere)",
    )
    p.add_argument("--no-shadows", action="store_true", help="--engine normals: no cast shadows")


def _given(args) -> list[str]:
    return ["--" + n.replace("_", "-") for n in NORMALS_FLAGS if getattr(args, n, None) not in (None, False)]


def check_normals_flags(args) -> None:
    """The normals engine's flags only with it; with it, a light and no guide or checkpoint."""
    if args.engine != Engine.NORMALS:
        given = _given(args)
        if given:
            raise RelightError(f"{', '.join(given)} only work{'s' if len(given) == 1 else ''} with --engine normals")
        return
    if args.light is None:
        raise RelightError("--engine normals adds a light: give --light (N, NE, E, ... or degrees)")
    if args.guide or args.guide_depth or args.guide_folder:
        raise RelightError("--engine normals takes no guide (--guide, --guide-depth, --guide-folder)")
    if args.checkpoint or args.fast:
        raise RelightError("--engine normals reads no checkpoint (--checkpoint, --fast)")


def light_settings(args) -> dict[str, float | None]:
    """The light's elevation, intensity, ... given on the command line (the normals engine's)."""
    if args.engine != Engine.NORMALS:
        return {}
    return {n: getattr(args, n) for n in LIGHT_SETTINGS}


def normals_optics(args) -> dict[str, float | bool]:
    """The normals engine's camera and light settings, for core.session.EngineSettings."""
    return {
        "fov_deg": DEFAULT_FOV_DEG if args.fov is None else args.fov,
        "light_distance": DEFAULT_DISTANCE if args.light_distance is None else args.light_distance,
        "shadows": not args.no_shadows,
    }


def describe_normals(engine, light) -> None:
    print(
        f"engine: {ENGINE_LABELS[Engine.NORMALS]} on {engine.device}; {light.describe()}, {light.describe_settings()}",
        file=sys.stderr,
    )
