"""`relight` command line: a thin face over core. User errors -> one line on stderr, exit code 2."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import Cancelled, RelightError
from .vocab import OUTPUT_MODES, PRECISIONS

log = logging.getLogger("relight")


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS, help="autocast precision (default fp32)")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def cmd_infer(args) -> int:
    from .checkpoint import resolve_checkpoint
    from .inference import PairFiles, Relighter, load_pair
    from .io import OUTPUT_SUFFIXES, write_image
    from .pairing import ntire_pairs
    from .progress import ProgressBar

    if args.bit_depth not in (8, 16):
        raise RelightError("--bit-depth must be 8 or 16")
    out = Path(args.output)
    if args.input_dir:
        pairs = [
            PairFiles(s.image, s.depth, g.image, g.depth, name)
            for name, s, g in ntire_pairs(args.input_dir)
        ]
    else:
        missing = [n for n in ("source", "source_depth", "guide", "guide_depth") if getattr(args, n) is None]
        if missing:
            raise RelightError("give --input-dir, or all of --source --source-depth --guide --guide-depth (missing: "
                               + ", ".join("--" + m.replace("_", "-") for m in missing) + ")")
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise RelightError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)}", out)
        pairs = [PairFiles(Path(args.source), Path(args.source_depth), Path(args.guide), Path(args.guide_depth))]
        for p in (pairs[0].source, pairs[0].source_depth, pairs[0].guide, pairs[0].guide_depth):
            if _same_file(p, out):
                raise RelightError("refusing to overwrite an input file", out)
        # Read and check every input before loading the model.
        inputs = load_pair(pairs[0])

    ckpt = resolve_checkpoint(args.checkpoint)
    relighter = Relighter.from_checkpoint(ckpt, device=args.device, precision=args.precision,
                                          max_pixels=args.max_pixels, accelerate=args.fast)
    info = relighter.info
    if info is not None and not info.trained:
        print(f"warning: {ckpt.name} holds untrained weights; the result is not a relighting", file=sys.stderr)
    print(f"model: {relighter.model_name} ({info.preset if info else '?'}, {info.format if info else ''}) on {relighter.device}",
          file=sys.stderr)

    if not args.input_dir:
        res = relighter.relight(*inputs, mode=args.mode)
        write_image(out, res.image, args.bit_depth)
        print(f"wrote {out}: {res.describe()}", file=sys.stderr)
        return 0

    out.mkdir(parents=True, exist_ok=True)
    ext = "." + args.format
    bar = ProgressBar(len(pairs), "relight")
    failed = []
    for i, pair in enumerate(pairs):
        try:
            src, gui, sd, gd = load_pair(pair)
            res = relighter.relight(src, gui, sd, gd, mode=args.mode)
            write_image(out / f"{pair.name}{ext}", res.image, args.bit_depth)
        except RelightError as exc:
            failed.append((pair.name, str(exc)))
        bar.update(i + 1, pair.name)
    bar.close()
    for name, msg in failed:
        print(f"skipped {name}: {msg}", file=sys.stderr)
    print(f"relit {len(pairs) - len(failed)} of {len(pairs)} pairs into {out}", file=sys.stderr)
    return 0 if len(failed) < len(pairs) else 2


def cmd_info(args) -> int:
    import platform

    import numpy as np
    import torch

    from . import __version__
    from .checkpoint import BUNDLED_MODEL
    from .weights import find_res2net, find_vgg19, torch_hub_checkpoints

    lines = [f"relight {__version__}", f"python {platform.python_version()} ({platform.system()} {platform.machine()})",
             f"torch {torch.__version__}", f"numpy {np.__version__}"]
    for mod in ("timm", "cv2", "safetensors", "pywt", "PySide6"):
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
    mps = getattr(torch.backends, "mps", None)
    lines.append("mps available" if mps and mps.is_available() else "mps not available")
    lines.append(f"bundled model: {BUNDLED_MODEL if BUNDLED_MODEL.is_file() else 'not found'}")
    vgg = find_vgg19()
    lines.append(f"VGG19 ImageNet weights (perceptual loss): {vgg or 'not found in ' + str(torch_hub_checkpoints()) + ' -> perceptual term off'}")
    r2n = find_res2net()
    lines.append(f"Res2Net-101 v1b ImageNet weights (encoder init): {r2n or 'not found'}")
    print("\n".join(lines))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relight", description="Depth-guided any-to-any image relighting with S3Net.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("infer", help="relight one pair, or every pair of an NTIRE-style folder")
    p.add_argument("--source", help="source image")
    p.add_argument("--source-depth", help="source depth map")
    p.add_argument("--guide", help="guide image (its lighting is transferred)")
    p.add_argument("--guide-depth", help="guide depth map")
    p.add_argument("--input-dir", help="folder with input/ and guide/ (NTIRE pair layout): relight every pair")
    p.add_argument("--checkpoint", help="native .safetensors or the official weight.pkl (default: the bundled model)")
    p.add_argument("--output", required=True, help="output image (.png/.tif), or a folder with --input-dir")
    p.add_argument("--bit-depth", type=int, default=16, help="8 or 16 (default 16)")
    p.add_argument("--format", default="png", choices=["png", "tif"], help="file type in folder mode")
    p.add_argument("--mode", default="auto", choices=OUTPUT_MODES,
                   help="detail: the network's lighting on the source's own detail (auto = detail); full: the "
                        "network's image at full resolution; gain-map: working resolution + guided-filter gain map")
    p.add_argument("--max-pixels", type=int, default=None, help="full-resolution pixel budget for --mode auto")
    p.add_argument("--fast", action="store_true", help="CUDA: folded BatchNorm + fp16 + CUDA graphs (about 2.5x faster)")
    _add_device(p)
    p.set_defaults(func=cmd_infer)

    p = sub.add_parser("info", help="versions, devices and which optional weights were found")
    p.set_defaults(func=cmd_info)

    from .cli_train import add_training_commands

    add_training_commands(sub, _add_device)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    from .logs import add_file_handler

    add_file_handler()
    try:
        return int(args.func(args) or 0)
    except RelightError as exc:
        print(f"relight: error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("relight: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("relight: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
