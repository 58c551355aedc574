"""`relight infer --engine normals`: add a light from the source's depth map (no guide, no checkpoint)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import RelightError
from .render.addlight import DEFAULT_DISTANCE
from .render.light import LIGHT_SETTINGS
from .render.normals import DEFAULT_FOV_DEG
from .vocab import ENGINE_LABELS, ENGINES

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


def refuse_normals_flags(args) -> None:
    given = _given(args)
    if given:
        raise RelightError(f"{', '.join(given)} only work with --engine normals")


def infer_normals(args, out: Path, fill) -> int:
    from .batch import check_output_folder, folder_jobs, relight_jobs
    from .cli import _same_file, _with_depth
    from .inputs import load_input
    from .io import OUTPUT_SUFFIXES, write_image
    from .normals_engine import NormalsBatch, NormalsRelighter
    from .progress import ProgressBar
    from .render.light import Light

    if args.light is None:
        raise RelightError("--engine normals adds a light: give --light (N, NE, E, ... or degrees)")
    if args.guide or args.guide_depth or args.guide_folder:
        raise RelightError("--engine normals takes no guide (--guide, --guide-depth, --guide-folder)")
    if args.checkpoint or args.fast:
        raise RelightError("--engine normals reads no checkpoint (--checkpoint, --fast)")
    light = Light.parse(args.light, args.temperature, **{n: getattr(args, n) for n in LIGHT_SETTINGS})
    engine = NormalsRelighter(
        args.device,
        fov_deg=DEFAULT_FOV_DEG if args.fov is None else args.fov,
        distance=DEFAULT_DISTANCE if args.light_distance is None else args.light_distance,
        shadows=not args.no_shadows,
    )
    print(
        f"engine: {ENGINE_LABELS['normals']} on {engine.device}; {light.describe()}, {light.describe_settings()}",
        file=sys.stderr,
    )
    if args.input_dir:
        jobs = folder_jobs(args.input_dir, sources_only=True)
        check_output_folder(jobs, out)
        bar = ProgressBar(100, "relight")
        report = relight_jobs(
            NormalsBatch(engine, light),
            jobs,
            out,
            fill=fill,
            suffix="." + args.format,
            bit_depth=args.bit_depth,
            progress=bar,
        )
        bar.close()
        for name, msg in report.failed:
            print(f"skipped {name}: {msg}", file=sys.stderr)
        print(report.summary(), file=sys.stderr)
        return 0 if report.written else 2
    if args.source is None:
        raise RelightError("give --source (or --input-dir) with --engine normals")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise RelightError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)}", out)
    for p in (args.source, args.source_depth):
        if p is not None and _same_file(Path(p), out):
            raise RelightError("refusing to overwrite an input file", out)
    src = fill(load_input(_with_depth(args.source, args.source_depth, "source")), "source")
    res = engine.relight(src.image, src.depth, light)
    write_image(out, res.image, args.bit_depth)
    print(f"wrote {out}: {res.describe()}", file=sys.stderr)
    return 0
