"""`relight` command line: a thin face over core. User errors -> one line on stderr, exit code 2."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.base.defaults import DEFAULTS
from core.base.errors import Cancelled, RelightError, clean
from core.base.vocab import OUTPUT_MODES, PRECISIONS, Engine
from core.cli_normals import check_normals_flags, describe_normals, light_settings, normals_optics

if TYPE_CHECKING:
    from core.session import Session

log = logging.getLogger("relight")


def _add_device(
    p: argparse.ArgumentParser,
    precision_help: str = "autocast precision; auto (default): bf16 on a CPU with native bf16, fp32 otherwise",
) -> None:
    p.add_argument("--device", default=DEFAULTS.device, help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--precision", default=DEFAULTS.precision, choices=("auto",) + PRECISIONS, help=precision_help)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return False


def _spelled(p: Path) -> Path:
    """The entry a path names however it is spelled (its folder resolved; a link keeps its own name)."""
    try:
        return p.parent.resolve() / p.name
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return p.absolute()


def _with_depth(image: str, depth: str | None, role: str):
    """The image and its depth file: the one given, else one found beside it by name (and said)."""
    from core.inputs.input import InputFiles
    from core.inputs.pairing import find_depth

    if depth is None:
        found = find_depth(image)
        if found is not None:
            print(
                f"{role} {clean(Path(image).name)}: using the depth map beside it, {clean(found.name)}", file=sys.stderr
            )
        return InputFiles(image, found)
    return InputFiles(image, depth)


def _session(args, light) -> Session:
    """The relight session the command line describes (guide files are set by the caller)."""
    from core.session import EngineSettings, OutputSettings, Session

    return Session(
        light=light,
        engine=args.engine,
        output=OutputSettings(args.mode, args.keep_exposure, args.exposure),
        settings=EngineSettings(
            device=args.device,
            precision=args.precision,
            fast=DEFAULTS.fast if args.fast is None else args.fast,
            max_pixels=args.max_pixels,
            checkpoint=args.checkpoint,
            depth_model=args.depth_model,
            **normals_optics(args),
        ),
    )


def output_bit_depth(out: Path, asked: int | None, folder_suffix: str | None = None) -> int:
    """The bit depth an output file gets: 16 unless asked otherwise, 8 for a type that holds only 8
    (`--output relit.jpg` writes a JPEG); 16 asked for such a type is refused, naming the file.
    `folder_suffix`: folder mode's --format, for the files written into the folder `out`."""
    from core.storage.io import EIGHT_BIT_ONLY

    suffix = (folder_suffix or out.suffix).lower()
    if suffix not in EIGHT_BIT_ONLY:
        return asked or 16
    if asked == 16:
        other = "--format png or tif" if folder_suffix else ".png or .tif"
        raise RelightError(f"{suffix[1:].upper()} holds 8-bit images only; use {other}, or --bit-depth 8", out)
    return 8


def cmd_infer(args) -> int:
    from core.base.progress import ProgressBar
    from core.engine.batch import check_output_folder, folder_jobs
    from core.orchestration import Engines, complete_inputs, relight, relight_folder
    from core.storage.io import OUTPUT_SUFFIXES, check_output_dir, check_output_file, write_image

    if args.bit_depth not in (None, 8, 16):
        raise RelightError("--bit-depth must be 8 or 16")
    if args.max_pixels is not None and args.max_pixels < 32 * 32:
        raise RelightError("--max-pixels must be at least 1024 (32x32)")
    out = Path(args.output)
    light = None
    if args.light is not None:
        from core.render.light import Light

        if args.guide or args.guide_depth:
            raise RelightError("give either --guide or --light, not both")
        light = Light.parse(args.light, 6500 if args.temperature is None else args.temperature, **light_settings(args))
    elif args.guide_folder:
        raise RelightError("--guide-folder picks guides for --light; give --light too")
    elif args.temperature is not None:  # ignored, it would leave the guide's colour where 3000 K was asked for
        raise RelightError("--temperature is the colour of the --light; give --light too (a guide gives its own)")
    check_normals_flags(args)
    guides = None
    if args.guide_folder:
        from core.engine.guides import FolderGuides

        guides = FolderGuides(args.guide_folder)
    engines = Engines(guides=guides, notify=lambda msg: print(clean(msg), file=sys.stderr))
    session = _session(args, light)
    session.compose()  # the exposure is checked before anything is read
    normals = session.engine == Engine.NORMALS
    if normals:  # its settings are checked before anything is read
        describe_normals(engines.normals(session.settings), light)
    folder_suffix = "." + (args.format or "png")  # the results' type in folder mode
    if args.input_dir:
        bit_depth = output_bit_depth(out, args.bit_depth, folder_suffix)  # not 8 in silence
        pairs = folder_jobs(args.input_dir, sources_only=light is not None)
        check_output_folder(pairs, out)
        check_output_dir(out)
    else:
        if args.format is not None:  # one result's type is its --output name's: a --format would be ignored
            raise RelightError(
                "--format sets the file type in folder mode (--input-dir); one result is typed by --output", out
            )
        if normals and args.source is None:
            raise RelightError("give --source (or --input-dir) with --engine normals")
        missing = [n for n in ("source", "guide") if getattr(args, n) is None and not (n == "guide" and light)]
        if missing:
            raise RelightError(
                "give --input-dir, or --source and --guide or --light (missing: "
                + ", ".join("--" + m for m in missing)
                + "); depth maps left out are estimated"
            )
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise RelightError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)}", out)
        bit_depth = output_bit_depth(out, args.bit_depth)  # before the work, not when writing its result
        check_output_file(out)
        for p in (args.source, args.source_depth, args.guide, args.guide_depth):
            if p is not None and _same_file(Path(p), out):
                raise RelightError("refusing to overwrite an input file", out)
        # Read and check every input (and estimate missing depth) before loading the relighting model;
        # the pair's memory need is checked from the headers before anything is decoded.
        session.source = _with_depth(args.source, args.source_depth, "source")
        session.guide = None if light else _with_depth(args.guide, args.guide_depth, "guide")
        inputs = complete_inputs(session, engines)

    if not normals:
        relighter = engines.relighter(session.settings)
        info = relighter.info
        if info is not None and not info.trained:
            print(f"warning: {info.name} holds untrained weights; the result is not a relighting", file=sys.stderr)
        print(
            f"model: {relighter.model_name} ({info.preset if info else '?'}, {info.format if info else ''}) on {relighter.device}",
            file=sys.stderr,
        )
        if light is not None:
            print(
                f"guide: {light.describe()}, "
                + (f"nearest image in {args.guide_folder}" if args.guide_folder else "rendered by the light compass"),
                file=sys.stderr,
            )

    if not args.input_dir:
        res = relight(session, engines, inputs=inputs).result
        write_image(out, res.image, bit_depth)
        print(f"wrote {clean(out)}: {res.describe()}", file=sys.stderr)
        return 0

    bar = ProgressBar(len(pairs), "relight")  # counts pairs: "7/23 … astronaut_2"
    notes: list[str] = []  # the runner's "N/M name" (a file written) or "N/M skipped name: problem"

    def progress(fraction: float, note: str = "") -> None:
        notes.append(note.partition(" ")[2])
        bar(fraction, notes[-1])  # the bar says N/M itself

    try:
        report = relight_folder(
            session, pairs, out, engines, suffix=folder_suffix, bit_depth=bit_depth, progress=progress
        )
    except KeyboardInterrupt:  # Ctrl-C: what is on disk and which pairs were bad, before "interrupted"
        bar.close()
        skipped = [n for n in notes if n.startswith("skipped ")]
        for note in skipped:
            print(clean(note), file=sys.stderr)
        written = len(notes) - len(skipped)
        print(clean(f"relit {written} of {len(pairs)} pairs into {out} (interrupted)"), file=sys.stderr)
        raise
    bar.close()
    for name, msg in report.failed:
        print(f"skipped {clean(name)}: {msg}", file=sys.stderr)
    print(clean(report.summary()), file=sys.stderr)
    # a pair skipped (bad input) or relit but lost (e.g. the disk is full): the folder is finished, but the
    # run did not do all of its job, so it ends with one error line naming those pairs, and exit code 2
    problems = report.problems()
    if problems:
        raise RelightError(problems, out)
    return 0 if report.written else 2


def cmd_depth(args) -> int:
    from core.depth.estimation import load_estimator
    from core.storage.io import check_output_dir, check_output_file, read_image, write_depth

    named: dict[Path, Path] = {}
    for p in map(Path, args.images):  # a file named twice (a.png, ./a.png, its absolute path) is estimated once
        named.setdefault(_spelled(p), p)
    images = list(named.values())
    out = Path(args.output)
    suffix = {"png16": ".png", "npy": ".npy", "vidit": ".npy"}[args.format]
    single_file = len(images) == 1 and out.suffix != "" and not out.is_dir()
    if single_file and out.suffix.lower() != suffix:
        raise RelightError(f"--format {args.format} writes {suffix} files", out)
    if single_file:
        check_output_file(out)
    else:
        check_output_dir(out)
    if single_file:
        targets = [out]
    else:  # a.png and a.jpg give a_png_depth and a_jpg_depth, as folder mode's results are named
        from core.engine.batch import unique_names
        from core.inputs.input import InputFiles, PairFiles

        jobs = unique_names([PairFiles(InputFiles(p), InputFiles(p), p.stem) for p in images])
        targets = [out / f"{j.name}_depth{suffix}" for j in jobs]
    for img, tgt in zip(images, targets):
        if any(_same_file(tgt, p) for p in images):
            raise RelightError("refusing to overwrite an input file", tgt)
    estimator = load_estimator(args.model, args.device, args.precision)
    for img, tgt in zip(images, targets):
        depth = estimator.estimate(read_image(img))
        write_depth(tgt, depth.data, args.format)
        print(f"wrote {clean(tgt)}: {depth.origin}, {depth.scaling}", file=sys.stderr)
    return 0


def cmd_models(args) -> int:
    from core.base.progress import ProgressBar
    from core.depth.store import MODELS, describe_folder, download_model, install_model, model_locations

    if args.action == "list":
        for m in MODELS.values():
            print(f"{m.name}: {m.title} ({m.licence}), {m.repo} at revision {m.revision}")
        print("looked for, in order (--depth-model DIR comes first when given):")
        in_use = None  # the first folder that is there is the one used, valid or not (as find_depth_model does)
        for i, (label, folder) in enumerate(model_locations(), 1):
            if folder is None:
                print(f"  {i}. {label}: not set")
                continue
            status = describe_folder(folder)
            print(f"  {i}. {label}: {folder}: {status}")
            if in_use is None and status != "nothing there":
                in_use = (folder, status.startswith("valid"))
        if in_use is None:
            print(
                f"in use: none; get it with 'relight models download {next(iter(MODELS))}', or "
                "'relight models install FOLDER_OR_ARCHIVE' on a machine without network"
            )
        else:
            print(
                f"in use: {in_use[0]}" + ("" if in_use[1] else " (not usable: estimation stops with the problem above)")
            )
        return 0
    if not args.name:
        raise RelightError(
            "name the model to download (" + ", ".join(MODELS) + ")"
            if args.action == "download"
            else "give the folder or archive to install (.zip, .tar, .tar.gz, .tar.bz2, .tar.xz)"
        )
    if args.action == "install":
        dest = install_model(args.name, args.dest)  # a local copy: a few seconds, no progress bar
        print(f"installed {next(iter(MODELS))} from {args.name} in {dest}", file=sys.stderr)
        return 0
    bar = ProgressBar(100, "download")
    dest = download_model(args.name, args.dest, progress=bar)
    bar.close()
    print(f"installed {args.name} in {dest}", file=sys.stderr)
    return 0


def cmd_info(args) -> int:
    import platform

    import numpy as np
    import torch

    from core import __version__
    from core.storage.checkpoint import BUNDLED_MODEL
    from core.storage.weights import find_res2net, find_vgg19, torch_hub_checkpoints

    lines = [
        f"relight {__version__}",
        f"python {platform.python_version()} ({platform.system()} {platform.machine()})",
        f"torch {torch.__version__}",
        f"numpy {np.__version__}",
    ]
    for mod in ("timm", "cv2", "safetensors", "pywt", "PySide6", "transformers"):
        try:
            m = __import__(mod)
            lines.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            lines.append(f"{mod} not installed")
    lines.append(f"cpu threads {torch.get_num_threads()}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            lines.append(f"cuda:{i} {p.name} {p.total_memory / 2**30:.0f} GiB")
    else:
        lines.append("cuda not available")
    from core.base.hardware import cpu_precision
    from core.startup import inductor_cache_dir

    auto = cpu_precision()
    lines.append(f"CPU precision for --precision auto: {auto} (native bf16: {'yes' if auto == 'bf16' else 'no'})")
    if torch.cuda.is_available():
        lines.append(
            f"--fast: torch.compile (inductor) in a CUDA graph, compiled in the background while a folded fp16 "
            f"CUDA graph serves; cache {inductor_cache_dir()}"
        )
    else:
        lines.append("--fast: needs CUDA (not available)")
    mps = getattr(torch.backends, "mps", None)
    lines.append("mps available" if mps and mps.is_available() else "mps not available")
    lines.append(f"bundled model: {BUNDLED_MODEL if BUNDLED_MODEL.is_file() else 'not found'}")
    vgg = find_vgg19()
    lines.append(
        f"VGG19 ImageNet weights (perceptual loss): {vgg or 'not found in ' + str(torch_hub_checkpoints()) + ' -> perceptual term off'}"
    )
    from core.depth.estimation import find_depth_model, missing_model_message

    try:
        dm = find_depth_model()
    except RelightError as exc:
        dm = f"problem: {exc}"
    lines.append(f"depth model (Depth Anything V2 Small): {dm or missing_model_message()}")
    r2n = find_res2net()
    lines.append(f"Res2Net-101 v1b ImageNet weights (encoder init): {r2n or 'not found'}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from core.storage.io import DEPTH_FORMATS

    parser = argparse.ArgumentParser(prog="relight", description="Depth-guided any-to-any image relighting with S3Net.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("infer", help="relight one pair, or every pair of an NTIRE-style folder")
    p.add_argument("--source", help="source image")
    p.add_argument("--source-depth", help="source depth map (left out: estimated)")
    p.add_argument("--guide", help="guide image (its lighting is transferred)")
    p.add_argument("--guide-depth", help="guide depth map (left out: estimated)")
    p.add_argument(
        "--depth-model",
        help=f"depth model folder for missing depth maps (default: ${'RELIGHT_DEPTH_MODEL'} "
        "or the one installed by 'relight models download')",
    )
    p.add_argument(
        "--light",
        help="instead of a guide: the light's direction, N NE E SE S SW W NW (16-point names too) "
        "or degrees clockwise from N (N = away from the camera, E = the camera's right)",
    )
    p.add_argument("--temperature", type=float, help="with --light: colour temperature in kelvin (default 6500)")
    p.add_argument(
        "--guide-folder",
        help="with --light: take the nearest image of this VIDIT-layout folder as the guide "
        "instead of the rendered compass scene",
    )
    p.add_argument(
        "--input-dir",
        help="folder with input/ and guide/ (NTIRE pair layout): relight every pair; "
        "with --light, also a plain folder of images",
    )
    p.add_argument("--checkpoint", help="native .safetensors or the official weight.pkl (default: the bundled model)")
    p.add_argument("--output", required=True, help="output image (.png/.tif), or a folder with --input-dir")
    p.add_argument("--bit-depth", type=int, help="8 or 16 (default 16; .jpg and .webp: 8)")
    p.add_argument(
        "--format",
        choices=["png", "tif", "jpg", "webp"],
        help="file type in folder mode (default png; jpg and webp: 8-bit); one result's type is --output's",
    )
    p.add_argument(
        "--mode",
        default=DEFAULTS.mode,
        choices=OUTPUT_MODES,
        help="auto (default): what the checkpoint recommends (the official weights: full; the bundled "
        "model: detail); detail: the network's light carried onto the source's own colours and "
        "detail; full: the network's image at full resolution; gain-map: working resolution + "
        "guided-filter gain map",
    )
    p.add_argument(
        "--keep-exposure",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="detail mode: the output keeps the source's mean brightness (default: on with --light, "
        "off with a guide image, whose brightness is then part of the target)",
    )
    p.add_argument(
        "--exposure",
        type=float,
        default=0.0,
        metavar="EV",
        help="detail mode: brighten (+) or darken (-) the result by this many stops (default 0)",
    )
    p.add_argument("--max-pixels", type=int, default=None, help="full-resolution pixel budget for --mode auto")
    p.add_argument(
        "--fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="CUDA: folded BatchNorm + fp16 + CUDA graphs, compiled in the background "
        f"(default {'on' if DEFAULTS.fast else 'off'}; no effect without CUDA; docs/PERFORMANCE.md)",
    )
    from core.cli_normals import add_normals_flags

    add_normals_flags(p)
    _add_device(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("depth", help="estimate depth maps for photos (Depth Anything V2 Small)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument(
        "--output",
        required=True,
        help="output file (one image) or folder (IMAGE_depth.png/.npy; a.png and a.jpg: a_png_depth, a_jpg_depth)",
    )
    p.add_argument("--model", help="depth model folder (default: $RELIGHT_DEPTH_MODEL or the installed one)")
    p.add_argument(
        "--format",
        default="png16",
        choices=DEPTH_FORMATS,
        help="png16: 16-bit PNG (default); npy: float32 array; vidit: VIDIT's pickled dict",
    )
    _add_device(p)
    p.set_defaults(func=cmd_depth)

    p = sub.add_parser("models", help="list, download or install optional models (only when asked)")
    p.add_argument("action", choices=["list", "download", "install"])
    p.add_argument(
        "name",
        nargs="?",
        help="download: the model, e.g. depth-anything-v2-small; install: a model folder "
        "or archive (.zip, .tar.*) brought from another machine",
    )
    p.add_argument(
        "--dest",
        help="install folder (default: the app's data folder); an existing folder is replaced only if relight made it",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="versions, devices and which optional weights were found")
    p.set_defaults(func=cmd_info)

    from core.cli_train import add_training_commands

    add_training_commands(sub, _add_device)
    return parser


def main(argv: list[str] | None = None) -> int:
    from core.startup import configure_process

    configure_process()  # before OpenCV loads
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    from core.base.logs import add_file_handler

    add_file_handler()
    try:
        return int(args.func(args) or 0)
    except RelightError as exc:
        print(f"relight: error: {exc}", file=sys.stderr)
        return 2
    except MemoryError:  # a reader bounds what it decodes; this is what is left (e.g. a limit set for the process)
        print("relight: error: out of memory (try a smaller image, batch or --max-pixels)", file=sys.stderr)
        return 2
    except Cancelled:
        print("relight: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("relight: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
