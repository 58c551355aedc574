"""Folder relighting throughput: the one-by-one loop (read, relight, write, in turn) against
core.engine.batch.relight_jobs (reading and writing in threads while the network works, same-size pairs
batched), same relighter, same pairs, one process.

    PYTHONPATH=. python bench/batch.py --pairs 100 --size 1024 --device cuda [--fast] [--mode full]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.batch import folder_jobs, relight_jobs  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.inputs.input import load_pair  # noqa: E402
from core.storage.checkpoint import BUNDLED_MODEL  # noqa: E402
from core.storage.io import write_image  # noqa: E402
from core.train.synthetic import synthesize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--mode", default="full", help="full (the network at the image size) or auto")
    ap.add_argument("--workers", type=int, default=8, help="processes rendering the pairs")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    synthesize(work / "d", scenes=0, size=args.size, seed=3, pairs=args.pairs, workers=args.workers)
    print(f"rendered {args.pairs} pairs at {args.size}² in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    jobs = folder_jobs(work / "d" / "pairs")
    r = Relighter.from_checkpoint(BUNDLED_MODEL, device=args.device, accelerate=args.fast)
    sync = torch.cuda.synchronize if r.device.type == "cuda" else (lambda: None)
    # warm up (kernels, CUDA graphs, the compiled path) on the first pair
    src, gui = load_pair(jobs[0])
    for _ in range(3):
        r.relight(src.image, gui.image, src.depth, gui.depth, mode=args.mode)
    if args.fast:
        while r.graphed.pending:
            time.sleep(0.1)

    def one_by_one():
        out = work / "seq"
        out.mkdir(exist_ok=True)
        for job in jobs:
            s, g = load_pair(job)
            res = r.relight(s.image, g.image, s.depth, g.depth, mode=args.mode)
            write_image(out / f"{job.name}.png", res.image, 16)

    def pipelined(pinned: bool):
        def run():
            r.pin_memory = pinned and r.device.type == "cuda"
            relight_jobs(r, jobs, work / f"pipe-{pinned}", mode=args.mode)

        return run

    loops = [("one by one", one_by_one), ("pipelined + batched (core.engine.batch)", pipelined(True))]
    if r.device.type == "cuda":
        loops.insert(1, ("pipelined + batched, pageable host memory", pipelined(False)))
    rows = []
    for label, fn in loops:
        sync()
        t = time.perf_counter()
        fn()
        sync()
        rows.append((label, args.pairs / (time.perf_counter() - t)))
    where = torch.cuda.get_device_name() if r.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(
        f"\n{args.pairs} pairs at {args.size}², bundled s3net-lite ({r.precision_label}), mode {args.mode}, {where}\n"
    )
    print("| loop | pairs/s | vs one by one |\n| --- | --- | --- |")
    for label, pps in rows:
        print(f"| {label} | {pps:.2f} | {pps / rows[0][1]:.2f}× |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
