"""Folder relighting throughput: the one-by-one loop (read, relight, write, in turn) against
core.engine.batch.relight_jobs with reading and writing in threads, and with the threads handing them to
worker processes (core.engine.batch_io); same relighter, same pairs, 16-bit PNG output. The two pipelines
must write byte-identical files (checked).

    PYTHONPATH=. python bench/batch.py --pairs 100 --size 1024 --device cuda [--fast] [--mode full] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.engine.batch import folder_jobs, relight_jobs  # noqa: E402
from core.engine.inference import Relighter  # noqa: E402
from core.inputs.input import load_pair  # noqa: E402
from core.storage.checkpoint import BUNDLED_MODEL  # noqa: E402
from core.storage.io import write_image  # noqa: E402
from core.train.synthetic import synthesize  # noqa: E402


class NoNetwork:
    """A relighter that returns the source: what the folder loops cost without the network."""

    graphed = None
    device = torch.device("cpu")
    precision_label = "no network"

    def relight(self, src, gui, sd, gd, **kw):
        return SimpleNamespace(image=src)

    def relight_many(self, pairs, **kw):
        return [SimpleNamespace(image=p[0]) for p in pairs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--mode", default="full", help="full (the network at the image size) or auto")
    ap.add_argument("--workers", type=int, default=8, help="processes rendering the pairs")
    ap.add_argument("--io-processes", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument(
        "--no-network", action="store_true", help="the source stands for the result: the reading and writing alone"
    )
    ap.add_argument(
        "--threads", type=int, help="torch and OpenCV threads in this process (default: theirs, one per core)"
    )
    args = ap.parse_args()
    if args.threads:
        import cv2

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    work = Path(tempfile.mkdtemp())
    t0 = time.perf_counter()
    synthesize(work / "d", scenes=0, size=args.size, seed=3, pairs=args.pairs, workers=args.workers)
    print(f"rendered {args.pairs} pairs at {args.size}² in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    jobs = folder_jobs(work / "d" / "pairs")
    r = (
        NoNetwork()
        if args.no_network
        else Relighter.from_checkpoint(BUNDLED_MODEL, device=args.device, accelerate=args.fast)
    )
    sync = torch.cuda.synchronize if r.device.type == "cuda" else (lambda: None)
    # warm up (kernels, CUDA graphs, the compiled path) on the first pair
    src, gui = load_pair(jobs[0])
    for _ in range(3):
        r.relight(src.image, gui.image, src.depth, gui.depth, mode=args.mode)
    if args.fast:
        while r.graphed.pending:
            time.sleep(0.1)
    # each run of the process pipeline starts its workers (counted in its time); the first start also
    # starts Python's fork server
    t0 = time.perf_counter()
    relight_jobs(r, jobs[:2], work / "warm", mode=args.mode, io_processes=args.io_processes)
    print(f"2 pairs with worker processes, first start: {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    def one_by_one():
        out = work / "seq"
        out.mkdir(exist_ok=True)
        for job in jobs:
            s, g = load_pair(job)
            res = r.relight(s.image, g.image, s.depth, g.depth, mode=args.mode)
            write_image(out / f"{job.name}.png", res.image, 16)

    def pipelined(processes: int):
        def run():
            relight_jobs(r, jobs, work / f"pipe-{processes}", mode=args.mode, io_processes=processes)

        return run

    loops = [
        ("one by one", one_by_one),
        ("pipelined, I/O in threads", pipelined(0)),
        (f"pipelined, I/O in {args.io_processes} worker processes (core.engine.batch)", pipelined(args.io_processes)),
    ]
    rows = []
    for label, fn in loops:
        sync()
        t, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
        fn()
        sync()
        # this process's CPU time (all its threads, not the workers'): what the network's process spends;
        # and the calling thread's alone (it holds the engine)
        n = args.pairs
        rows.append(
            (label, n / (time.perf_counter() - t), (time.process_time() - cpu) / n, (time.thread_time() - own) / n)
        )
    same = all(
        (work / "pipe-0" / f.name).read_bytes() == f.read_bytes()
        for f in (work / f"pipe-{args.io_processes}").iterdir()
    )
    where = torch.cuda.get_device_name() if r.device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    model = "no network" if args.no_network else f"bundled s3net-lite ({r.precision_label})"
    print(f"\n{args.pairs} pairs at {args.size}², {model}, mode {args.mode}, {where}, {os.cpu_count()} cores\n")
    print("| loop | pairs/s | vs one by one | CPU of this process per pair | of the engine's thread |")
    print("| --- | --- | --- | --- | --- |")
    for label, pps, cpu, own in rows:
        print(f"| {label} | {pps:.2f} | {pps / rows[0][1]:.2f}× | {cpu * 1000:.0f} ms | {own * 1000:.0f} ms |")
    print(f"\nthreads and processes wrote identical files: {same}")
    if args.json:
        figures = {
            "pairs": args.pairs,
            "size": args.size,
            "device": where,
            "cores": os.cpu_count(),
            "precision": r.precision_label,
            "mode": args.mode,
            "io_processes": args.io_processes,
            "threads": args.threads or torch.get_num_threads(),
            "pairs_per_s": {label: round(pps, 3) for label, pps, _, _ in rows},
            "process_cpu_ms_per_pair": {label: round(cpu * 1000, 1) for label, _, cpu, _ in rows},
            "engine_thread_cpu_ms_per_pair": {label: round(own * 1000, 1) for label, _, _, own in rows},
            "identical_files": same,
        }
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
