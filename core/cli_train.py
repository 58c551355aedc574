"""Training-side subcommands of the `relight` command line: synth, train, eval."""

from __future__ import annotations

import sys
from pathlib import Path

from core.base.errors import RelightError, clean
from core.base.vocab import COMPASS_DIRECTIONS, VIDIT_DIRECTIONS
from core.model import PRESETS


def cmd_synth(args) -> int:
    from core.base.progress import ProgressBar
    from core.train.synthetic import synthesize

    if args.size < 64 or args.size % 32:
        raise RelightError("--size must be a multiple of 32, at least 64")
    if args.reference_every < 0:
        raise RelightError("--reference-every must be 0 or more")
    directions = COMPASS_DIRECTIONS if args.directions == 16 else VIDIT_DIRECTIONS
    bar = ProgressBar(args.scenes + args.pairs, "synth")
    synthesize(
        args.out,
        args.scenes,
        args.size,
        args.seed,
        args.pairs,
        progress=bar,
        workers=args.workers,
        directions=directions,
        reference_every=args.reference_every,
        photo_textures=args.photo_textures,
    )
    bar.close()
    print(
        f"wrote {args.scenes} scenes ({args.scenes * 5 * len(directions)} images) to {args.out}"
        + (f" and {args.pairs} pairs to {Path(args.out) / 'pairs'}" if args.pairs else ""),
        file=sys.stderr,
    )
    return 0


def cmd_train(args) -> int:
    from core.base.progress import ProgressBar
    from core.train.training import Callbacks, TrainConfig, train

    overrides = {
        "data": args.data,
        "out": args.out,
        "preset": args.preset,
        "steps": args.steps,
        "epochs": args.epochs,
        "batch": args.batch,
        "crop": args.crop,
        "resize": args.resize,
        "device": args.device,
        "frame_cache": args.frame_cache,
        "cache_dir": args.cache_dir,
        "precision": args.precision,
        "init": args.init,
        "lr": args.lr,
        "num_workers": args.workers,
        "val_every": args.val_every,
        "ckpt_every": args.ckpt_every,
        "seed": args.seed,
        "val_data": args.val_data,
        "log_every": args.log_every,
        "grad_clip": args.grad_clip,
        "vgg_weights": args.vgg_weights,
        "decay_every_steps": args.decay_every_steps,
        "max_minutes": args.max_minutes,
        "loss_colour": args.loss_colour,
        "hflip": True if args.hflip else None,
        "freeze_encoder": True if args.freeze_encoder else None,
        "cuda_graph": False if args.no_cuda_graph else None,
    }
    notes = []  # said with the run's first message: a run that cannot start says only why
    if args.resume and not args.config:
        # everything comes from the run's config.json; flags given now change it (and say so)
        out = overrides.pop("out") or TrainConfig().out
        cfg, changes = TrainConfig.for_resume(out, overrides)
        notes = [f"resume: {clean(c)} (recorded in config.json)" for c in changes]
    else:
        cfg = TrainConfig.from_file(args.config) if args.config else TrainConfig()
        for k, v in overrides.items():
            if v is not None:
                setattr(cfg, k, v)
        if args.resume:
            cfg.keep_the_runs_precision()
    if not cfg.data:
        raise RelightError("--data is required")
    cfg.validate()
    import os

    rank0 = os.environ.get("RANK", "0") == "0"
    bar = {}

    def on_step(info):
        if "bar" not in bar:
            bar["bar"] = ProgressBar(info.total_steps, "train")
        bar["bar"].update(info.step, f"loss {info.terms['total']:.4f} lr {info.lr:.1e} {info.images_per_s:.1f} img/s")

    def on_message(msg):
        while notes:
            print(notes.pop(0), file=sys.stderr)
        print(("\n" if bar.get("bar") and bar["bar"].tty else "") + clean(msg), file=sys.stderr)

    result = train(cfg, Callbacks(on_step=on_step, on_message=on_message), resume=args.resume)
    if bar.get("bar"):
        bar["bar"].close()
    if rank0:
        print(f"checkpoint: {result.last_checkpoint}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    from core.base.progress import ProgressBar
    from core.engine.inference import Relighter
    from core.storage.checkpoint import resolve_checkpoint
    from core.train.evaluate import evaluate

    if (args.data is None) == (args.photos is None):
        raise RelightError("give --data (pairs with ground truth) or --photos (a folder of photographs)")
    _check_report_files(args, Path(args.data or args.photos))
    ckpt = resolve_checkpoint(args.checkpoint)
    relighter = Relighter.from_checkpoint(ckpt, device=args.device, precision=args.precision)
    if args.photos:
        return _eval_photos(args, relighter, ckpt)
    bar = ProgressBar(100, "eval")
    report = evaluate(relighter, args.data, args.pairs, progress=bar)
    bar.close()
    print(f"checkpoint {ckpt.name} ({relighter.info.preset}) on {relighter.device}")
    print(report.table())
    if args.json:
        report.write_json(args.json, {"checkpoint": str(ckpt), "data": str(args.data)})
    if args.csv:
        report.write_csv(args.csv)
    return 0


def _check_report_files(args, folder: Path) -> None:
    """--sheet, --json and --csv, before any work: into a folder that is there, the sheet an image type
    this program writes, no two into one file, none over an image or depth file of the folder evaluated,
    and none that this kind of evaluation does not write."""
    from core.cli import _same_file
    from core.storage.io import DEPTH_SUFFIXES, IMAGE_SUFFIXES, OUTPUT_SUFFIXES, check_output_file

    # a report of the other kind of evaluation would be skipped in silence, its file never written
    if args.photos and args.csv:
        raise RelightError("--csv is written with --data; with --photos give --json (or --sheet)")
    if args.data and args.sheet:
        raise RelightError("--sheet is a contact sheet of --photos; with --data give --json or --csv")
    given = {flag: Path(getattr(args, flag)) for flag in ("sheet", "json", "csv") if getattr(args, flag) is not None}
    for flag, path in given.items():
        other = next((f for f, p in given.items() if f != flag and _same_file(p, path)), None)
        if other:  # the second report was written over the first
            raise RelightError(f"--{flag} and --{other} name one file; give each report its own", path)
        if flag == "sheet" and path.suffix.lower() not in OUTPUT_SUFFIXES:
            raise RelightError(f"--sheet must end in one of {', '.join(OUTPUT_SUFFIXES)}", path)
        check_output_file(path)
        try:
            # where the file is written (a link there is replaced, not written through) or where it leads
            base = folder.resolve()
            inside = any(p.is_relative_to(base) for p in (path.parent.resolve() / path.name, path.resolve()))
        except (OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
            inside = False
        if inside and path.exists() and path.suffix.lower() in IMAGE_SUFFIXES + DEPTH_SUFFIXES:
            raise RelightError("refusing to overwrite an input file", path)


def _eval_photos(args, relighter, ckpt) -> int:
    import json

    from core.base.progress import ProgressBar
    from core.inputs.input import InputFiles, load_input
    from core.inputs.pairing import find_depth, is_depth_name
    from core.storage.io import IMAGE_SUFFIXES, write_image, write_result
    from core.train.evaluate import evaluate_photos

    folder = Path(args.photos)
    if not folder.is_dir():
        raise RelightError("not a folder of photos", folder)
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not is_depth_name(p) and p.is_file()
    )
    if not files:
        raise RelightError("no images in the folder", folder)
    inputs = {p.stem: load_input(InputFiles(p, find_depth(p))) for p in files}

    from core.train.evaluate import depth_plane

    bar = ProgressBar(100, "eval")
    # a depth map beside the photo, else a plain plane (said below)
    report = evaluate_photos(
        relighter,
        [(n, i.image) for n, i in inputs.items()],
        progress=bar,
        depth_for=lambda n, img: inputs[n].depth.data if inputs[n].has_depth else depth_plane(*img.shape[:2]),
    )
    bar.close()
    planes = [n for n, i in inputs.items() if not i.has_depth]
    print(
        f"checkpoint {ckpt.name} ({relighter.info.preset if relighter.info else '?'}) on {relighter.device}; "
        f"{len(inputs)} photos"
        + (f", {len(planes)} without a depth map beside them: a plain depth plane" if planes else "")
    )
    print(report.table())
    sheet = Path(args.sheet) if args.sheet else None
    if sheet is not None:
        write_image(sheet, report.sheet, 8)
        print(f"contact sheet: {sheet}", file=sys.stderr)
    if args.json:
        write_result(
            args.json,
            json.dumps(
                {"summary": report.summary(), "per_result": report.rows, "checkpoint": str(ckpt)}, indent=2
            ).encode(),
        )
    return 0


def cmd_cache(args) -> int:
    from core.base.errors import name_list
    from core.train.frame_cache import clear_caches, default_cache_root, list_caches

    root = Path(args.cache_dir) if args.cache_dir else default_cache_root()
    if args.action != "clear":
        caches = list_caches(root)
        for c in caches:
            print(clean(c.describe()))
        print(
            clean(f"{len(caches)} frame cache(s), {sum(c.bytes for c in caches) / 2**30:.2f} GB in {root}"),
            file=sys.stderr,
        )
        return 0
    report = clear_caches(root)
    for c in report.removed:
        print(clean(f"removed {c.describe()}"))
    for name, why in report.damaged:
        print(f"removed {name} ({why})")
    for name in report.leftovers:
        print(clean(f"removed {name} (left by a build that was stopped)"))
    freed = (
        f"{len(report.removed) + len(report.damaged)} frame cache(s), "
        f"{sum(c.bytes for c in report.removed) / 2**30:.2f} GB freed"
    )
    if report.failed:
        raise RelightError(f"{freed}; not removed: " + name_list([f"{n} ({why})" for n, why in report.failed], 3), root)
    for name in report.busy:
        print(clean(f"kept {name}: being built by a running training"), file=sys.stderr)
    if report.others:
        print(
            f"left {len(report.others)} item(s) that are not frame caches: {name_list(report.others, 3)}",
            file=sys.stderr,
        )
    print(clean(f"{freed} in {root}"), file=sys.stderr)
    return 0


def add_training_commands(sub, add_device) -> None:
    p = sub.add_parser("synth", help="render a VIDIT-style synthetic dataset with exact ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--scenes", type=int, default=100)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pairs", type=int, default=0, help="also write this many held-out NTIRE pairs under OUT/pairs")
    p.add_argument("--workers", type=int, default=1, help="processes rendering in parallel")
    p.add_argument(
        "--directions",
        type=int,
        default=8,
        choices=[8, 16],
        help="light directions: VIDIT's 8, or the 16-point compass (any-azimuth training)",
    )
    p.add_argument(
        "--reference-every",
        type=int,
        default=0,
        help="every Nth scene is the light compass's reference scene (0 = never)",
    )
    p.add_argument(
        "--photo-textures",
        action="store_true",
        help="also map photographs onto the solids and a random fill light per scene (needs scikit-image, "
        "whose sample photos are the textures): scenes that look more like photos",
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("cache", help="list or delete the decoded datasets of train --frame-cache")
    p.add_argument("action", nargs="?", choices=["list", "clear"], default="list")
    p.add_argument("--cache-dir", help="where the caches are (default: the app's data folder)")
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("train", help="train or fine-tune S3Net (also under torchrun for several GPUs)")
    p.add_argument("--data", help="VIDIT-layout or NTIRE-layout folder")
    p.add_argument("--out", help="run folder (config, metrics, checkpoints)")
    p.add_argument("--config", help="YAML/JSON TrainConfig; flags override it")
    p.add_argument("--preset", choices=list(PRESETS))
    p.add_argument("--steps", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch", type=int, help="per process (default 3)")
    p.add_argument("--crop", type=int, help="random square crops (default: full images)")
    p.add_argument("--resize", type=int, help="resize images to this side on load")
    p.add_argument("--hflip", action="store_true", help="random horizontal flips (source, guide, target together)")
    p.add_argument("--init", help="scratch, imagenet, or a checkpoint (native or official weight.pkl)")
    p.add_argument("--freeze-encoder", action="store_true")
    p.add_argument("--lr", type=float)
    p.add_argument("--decay-every-steps", type=int)
    p.add_argument("--grad-clip", type=float)
    p.add_argument("--workers", type=int, help="data loader workers (0 = load in the main process)")
    p.add_argument(
        "--frame-cache",
        action="store_true",
        default=None,
        help="VIDIT layout: decode the dataset once into memory-mapped frames (fast loading for GPUs)",
    )
    p.add_argument("--cache-dir", help="where frame caches are kept (default: the app's data folder)")
    p.add_argument("--val-data", help="NTIRE-layout folder to validate on")
    p.add_argument("--val-every", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--vgg-weights", help="VGG19 ImageNet weights file for the perceptual term")
    p.add_argument(
        "--loss-colour", type=float, help="weight of the colour (chromaticity) term (default 0: the paper's loss)"
    )
    p.add_argument("--max-minutes", type=float, help="stop safely after this much training time")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument(
        "--no-cuda-graph",
        action="store_true",
        help="run each step eagerly (by default one CUDA GPU replays the whole step as a CUDA graph)",
    )
    add_device(p, "training precision; auto (default): bf16 on a CUDA GPU that computes it natively, fp32 elsewhere")
    p.set_defaults(func=cmd_train, precision=None, device=None)  # unset: the run's own, or the default

    p = sub.add_parser("eval", help="PSNR/SSIM of a checkpoint and two baselines on held-out pairs")
    p.add_argument("--data", help="NTIRE-layout folder with ground truth, or a VIDIT folder")
    p.add_argument(
        "--photos",
        help="instead: a folder of photographs (no ground truth), each relit under compass "
        "lights E and W at 5000 K and N at 3500 K; colour, detail and exposure kept",
    )
    p.add_argument("--sheet", help="with --photos: write a contact sheet PNG (each photo, then its relit versions)")
    p.add_argument("--checkpoint", help="default: the bundled model")
    p.add_argument("--pairs", type=int, help="number of pairs (drawn deterministically from a VIDIT split)")
    p.add_argument("--json")
    p.add_argument("--csv")
    add_device(p)
    p.set_defaults(func=cmd_eval, precision="fp32")  # evaluation is exact unless asked otherwise
