"""Folder relighting (core.engine.batch): read-ahead, same-size batches, bad pairs skipped, results as single runs."""

import numpy as np
import pytest

from core.engine.batch import relight_jobs
from core.engine.inference import Relighter
from core.inputs.input import InputFiles, PairFiles, load_pair
from core.storage.io import read_image, write_depth_npy, write_image


def test_mixed_sizes_and_a_bad_pair_give_the_single_run_results(tmp_path, lite_checkpoint):
    rng = np.random.default_rng(0)
    jobs = []
    for k, (h, w) in enumerate([(64, 64), (64, 64), (64, 96), (64, 64), (64, 64), (64, 64)]):
        files = []
        for role in ("s", "g"):
            img = write_image(tmp_path / f"{role}{k}.png", rng.random((h, w, 3)), 8)
            dep = write_depth_npy(tmp_path / f"{role}{k}.npy", rng.random((h, w)))
            files.append(InputFiles(img, dep))
        jobs.append(PairFiles(files[0], files[1], f"P{k}"))
    (tmp_path / "g3.npy").write_bytes(b"broken")
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    seen = []
    report = relight_jobs(
        r, jobs, tmp_path / "out", mode="full", batch_size=2, io_threads=2, progress=lambda f, m: seen.append((f, m))
    )
    assert sorted(p.name for p in report.written) == ["P0.png", "P1.png", "P2.png", "P4.png", "P5.png"]
    assert [n for n, _ in report.failed] == ["P3"] and "g3.npy" in report.failed[0][1]
    assert len(seen) == 6 and seen[-1][0] == 1.0 and any("skipped P3" in m for _, m in seen)
    for job in (jobs[0], jobs[2], jobs[5]):
        s, g = load_pair(job)
        want = r.relight(s.image, g.image, s.depth, g.depth, mode="full").image
        got = read_image(tmp_path / "out" / f"{job.name}.png")
        np.testing.assert_allclose(got, want, atol=1 / 65535 + 2e-4)


def test_cancel_stops_relighting_writes_what_was_relit_and_reports_it(tmp_path, lite_checkpoint):
    from core.base.cancel import CancelToken

    rng = np.random.default_rng(1)
    jobs = []
    for k in range(6):
        img = write_image(tmp_path / f"s{k}.png", rng.random((32, 32, 3)), 8)
        dep = write_depth_npy(tmp_path / f"s{k}.npy", rng.random((32, 32)))
        jobs.append(PairFiles(InputFiles(img, dep), InputFiles(img, dep), f"P{k}"))
    import time

    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    real = r.relight_many
    r.relight_many = lambda pairs, **kw: (time.sleep(0.3), real(pairs, **kw))[1]  # a pair takes a while
    cancel = CancelToken()
    on_disk = []

    def progress(f, m):  # called as each file is written: it is already there
        on_disk.append((m, (tmp_path / "out" / f"{m.split()[-1]}.png").is_file()))
        if m.startswith("2/"):
            cancel.cancel()

    report = relight_jobs(r, jobs, tmp_path / "out", batch_size=1, io_threads=2, progress=progress, cancel=cancel)
    assert report.cancelled and report.total == 6 and [p.name for p in report.written] == ["P0.png", "P1.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["P0.png", "P1.png"]
    assert all(there for _, there in on_disk) and "(cancelled)" in report.summary()


def _mixed_jobs(folder, n=6, bad=None):
    """Pairs of 8- and 16-bit PNGs with .npy and 16-bit PNG depth maps; `bad`: the index of a pair whose
    guide depth is broken."""
    from core.storage.io import write_depth

    rng = np.random.default_rng(2)
    jobs = []
    for k in range(n):
        files = []
        for role, bits in (("s", 16), ("g", 8)):
            img = write_image(folder / f"{role}{k}.png", rng.random((48, 64, 3)), bits)
            fmt = "png16" if k % 2 else "npy"
            dep = write_depth(folder / f"{role}{k}_d.{fmt[:3]}", rng.random((48, 64)), fmt)
            files.append(InputFiles(img, dep))
        jobs.append(PairFiles(files[0], files[1], f"P{k}"))
    if bad is not None:
        jobs[bad].guide.depth.write_bytes(b"broken")
    return jobs


def test_worker_processes_write_the_same_files_as_threads_and_skip_a_bad_pair(tmp_path, lite_checkpoint):
    jobs = _mixed_jobs(tmp_path, bad=3)
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    runs = {}
    for processes in (0, 2):
        seen = []
        runs[processes] = relight_jobs(
            r,
            jobs,
            tmp_path / f"out{processes}",
            mode="full",
            batch_size=2,
            io_processes=processes,
            progress=lambda f, m, seen=seen: seen.append(m),
        )
        assert len(seen) == 6 and sum("skipped P3: " in m and "g3_d.png" in m for m in seen) == 1
    threads, procs = runs[0], runs[2]
    assert [p.name for p in procs.written] == ["P0.png", "P1.png", "P2.png", "P4.png", "P5.png"]
    assert procs.failed == threads.failed and "g3_d.png" in procs.failed[0][1]
    for a, b in zip(threads.written, procs.written, strict=True):
        assert a.read_bytes() == b.read_bytes()


def test_cancel_with_worker_processes(tmp_path, lite_checkpoint):
    import time

    from core.base.cancel import CancelToken

    jobs = _mixed_jobs(tmp_path)
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    real = r.relight_many
    r.relight_many = lambda pairs, **kw: (time.sleep(0.2), real(pairs, **kw))[1]
    cancel = CancelToken()
    seen = []

    def progress(f, m):
        seen.append((m, (tmp_path / "out" / f"{m.split()[-1]}.png").is_file()))
        if m.startswith("2/"):
            cancel.cancel()

    report = relight_jobs(r, jobs, tmp_path / "out", batch_size=1, io_processes=2, progress=progress, cancel=cancel)
    assert report.cancelled and [p.name for p in report.written] == ["P0.png", "P1.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["P0.png", "P1.png"]
    assert [m for m, _ in seen] == ["1/6 P0", "2/6 P1"] and all(there for _, there in seen)


def test_arrays_cross_processes_through_mapped_files(tmp_path):
    from core.engine.batch_io import pack, unpack

    arrays = {
        "img": np.arange(24, dtype=np.float32).reshape(2, 4, 3),
        "d": np.ones((3, 5), np.uint16),
        "e": np.zeros(0),
    }
    for folder in (str(tmp_path), None):
        parcel = pack(arrays, folder)
        got = unpack(parcel)
        assert all(np.array_equal(got[k], v) and got[k].dtype == v.dtype for k, v in arrays.items())
        got["img"][0, 0, 0] = 7  # writable, and the sender's array is untouched
        assert arrays["img"][0, 0, 0] == 0
    assert list(tmp_path.iterdir()) == []  # the receiver removed the file


def test_a_parcel_builds_read_inputs_and_arrays_but_nothing_else(tmp_path):
    """A worker decodes files from the internet: what it hands back may build only arrays, the read
    inputs' own types, paths and plain values in the relighting process."""
    import pickle
    import subprocess

    from core.engine.batch_io import pack, read_job, unpack

    img = tmp_path / "a.png"
    write_image(img, np.full((40, 48, 3), 0.35, np.float32), 8)
    np.save(tmp_path / "a.npy", np.ones((40, 48), np.float32))
    files = InputFiles(img, tmp_path / "a.npy")
    source, guide = read_job(PairFiles(files, files, "a"), with_guide=True)
    for folder in (str(tmp_path / "spool"), None):
        (tmp_path / "spool").mkdir(exist_ok=True)
        got, got_guide = unpack(pack((source, guide), folder))
        assert np.array_equal(got.image, source.image) and got.files == source.files
        assert np.array_equal(got.require_depth().data, source.require_depth().data)
        assert got.depth.kind == source.depth.kind and got_guide is not None

    class Hostile:
        def __reduce__(self):
            return (subprocess.call, (["true"],))

    for folder in (str(tmp_path / "spool"), None):
        with pytest.raises(pickle.UnpicklingError, match="subprocess.call"):
            unpack(pack({"img": np.zeros(3), "x": Hostile()}, folder))
    assert list((tmp_path / "spool").iterdir()) == []  # a refused parcel's file is gone too


def test_a_spool_folder_that_cannot_take_the_arrays_sends_them_pickled(tmp_path):
    """A folder gone (or out of inodes) when a parcel is made, or one that fills up in the middle of an
    array (the system writes part of it): the arrays travel pickled, whole."""
    import os
    import subprocess
    import sys

    from core.engine.batch_io import pack, unpack

    arrays = {"img": np.arange(3 * 64 * 64, dtype=np.float32).reshape(64, 64, 3)}
    parcel = pack(arrays, str(tmp_path / "gone"))
    assert parcel.path is None and np.array_equal(unpack(parcel)["img"], arrays["img"])
    # a file size limit makes the system write what fits and say so only at the next write, as a full tmpfs does
    code = f"""
import resource, signal, sys
import numpy as np
import pytest
from core.engine.batch_io import pack, unpack
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
img = np.arange(3 * 64 * 64, dtype=np.float32).reshape(64, 64, 3)
parcel = pack({{"img": img}}, {str(tmp_path)!r})
got = unpack(parcel)["img"]
assert parcel.path is None, parcel.path
assert np.array_equal(got, img)
"""
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.iterdir()) == []


CTRL_C_RUN = """
import sys, time
from pathlib import Path
import numpy as np
import pytest
sys.path.insert(0, "tests")
from conftest import randomize
from core.engine.batch import relight_jobs
from core.engine.inference import Relighter
from core.model import create_model
from core.storage.checkpoint import save_checkpoint
from core.inputs.input import InputFiles, PairFiles
from core.storage.io import write_image, write_depth
d = Path(sys.argv[1])
ckpt = save_checkpoint(d / "lite.safetensors", randomize(create_model("s3net-lite"), 1), "s3net-lite")
rng = np.random.default_rng(0)
jobs = []
for k in range(8):
    files = []
    for role in "sg":
        img = write_image(d / f"{role}{k}.png", rng.random((48, 64, 3)), 8)
        files.append(InputFiles(img, write_depth(d / f"{role}{k}_d.npy", rng.random((48, 64)), "npy")))
    jobs.append(PairFiles(files[0], files[1], f"P{k}"))
r = Relighter.from_checkpoint(ckpt, device="cpu")
real = r.relight_many
r.relight_many = lambda pairs, **kw: (time.sleep(0.5), real(pairs, **kw))[1]
try:
    relight_jobs(r, jobs, d / "out", batch_size=1, io_processes=2, progress=lambda f, m: print(m, flush=True))
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_in_a_terminal_stops_a_run_with_worker_processes_quietly(tmp_path):
    """Ctrl-C reaches every process of the terminal's group: the workers leave the stopping to the
    relighting process (no traceback of each worker, no new workers started on the way out)."""
    import os
    import signal
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    run = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_RUN, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=root,
        start_new_session=True,  # its own process group, as a terminal's job is
    )
    try:
        assert run.stdout.readline().startswith("1/8 "), run.stderr.read()
        os.killpg(run.pid, signal.SIGINT)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert out.splitlines()[-1] == "interrupted", out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_workers_started_from_two_threads_at_once_leave_the_main_module_in_place():
    """Two folder runs starting their workers at the same moment (the app's batch thread beside another)
    put the program's main module back, whatever the order in which they finish starting."""
    import sys
    import threading

    from core.engine.batch_io import _without_main

    main = sys.modules["__main__"]
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _without_main():
            first_in.set()
            second_in.wait(0.5)  # the other thread starts its workers meanwhile, if it may
        first_out.set()

    def second():
        first_in.wait()
        with _without_main():
            second_in.set()
            first_out.wait(0.5)  # and is still at it when this one is done

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sys.modules["__main__"] is main
    finally:
        sys.modules["__main__"] = main


def test_a_system_that_cannot_start_worker_processes_relights_with_threads(tmp_path, lite_checkpoint, monkeypatch):
    """No process semaphores (no /dev/shm, as in some containers) or a process limit: the folder is
    relit as without worker processes, not stopped."""
    import errno

    from core.engine import batch_io

    def no_processes(*args, **kwargs):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(batch_io, "ProcessPoolExecutor", no_processes)
    jobs = _mixed_jobs(tmp_path, n=3)
    r = Relighter.from_checkpoint(lite_checkpoint, device="cpu")
    report = relight_jobs(r, jobs, tmp_path / "out", io_processes=2)
    assert [p.name for p in report.written] == ["P0.png", "P1.png", "P2.png"] and not report.failed


def test_a_dead_worker_that_cannot_be_replaced_fails_its_pair_not_the_run(tmp_path, monkeypatch):
    import errno
    import os
    import signal

    from core.base.errors import RelightError
    from core.engine import batch_io

    jobs = _mixed_jobs(tmp_path, n=1)
    with batch_io.IOWorkers(1) as workers:
        for pid in list(workers._pool._processes):
            os.kill(pid, signal.SIGKILL)  # the out-of-memory killer

        def no_processes(*args, **kwargs):
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

        monkeypatch.setattr(batch_io, "ProcessPoolExecutor", no_processes)
        for _ in range(2):
            with pytest.raises(RelightError, match="stopped unexpectedly"):
                workers.read(jobs[0], True)


def test_the_spool_folder_goes_even_when_stopping_the_workers_is_interrupted(monkeypatch):
    """A second Ctrl-C while the workers are being shut down: the arrays in memory go all the same."""
    import os

    from core.engine import batch_io

    workers = batch_io.IOWorkers(1)
    folder = workers.folder
    assert folder is not None and os.path.isdir(folder)
    pool = workers._pool

    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pool, "shutdown", interrupted)
    with pytest.raises(KeyboardInterrupt):
        workers.close()
    monkeypatch.undo()
    pool.shutdown()
    assert not os.path.exists(folder)


def test_worker_processes_follow_the_cores_this_process_may_use(monkeypatch):
    """A container or `taskset` giving the run 2 of a machine's 64 cores: no 32 worker processes."""
    import os

    from core.engine.batch_io import auto_processes

    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert auto_processes(100) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert auto_processes(100) == 7 and auto_processes(15) == 0


def test_with_the_network_on_a_gpu_and_worker_processes_this_process_runs_one_host_thread(tmp_path):
    """Its thread pools would only spin on the cores the workers decode and encode on; afterwards (and
    for a CPU network, whose pool does the work) the thread counts are as they were."""
    from types import SimpleNamespace

    import cv2
    import torch

    seen = []

    class OnGpu:  # stands for a relighter on CUDA (nothing here touches a GPU)
        graphed = None
        device = torch.device("cuda")

        def relight_many(self, pairs, **kw):
            seen.append((torch.get_num_threads(), cv2.getNumThreads()))
            return [SimpleNamespace(image=p[0]) for p in pairs]

    jobs = _mixed_jobs(tmp_path, bad=None)[:3]
    before = torch.get_num_threads(), cv2.getNumThreads()
    assert before[0] > 1 or before[1] > 1  # else the test shows nothing
    report = relight_jobs(OnGpu(), jobs, tmp_path / "gpu", batch_size=1, io_processes=2)
    assert len(report.written) == 3 and set(seen) == {(1, 1)}
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    seen.clear()
    OnGpu.device = torch.device("cpu")
    relight_jobs(OnGpu(), jobs, tmp_path / "cpu", batch_size=1, io_processes=2)
    assert set(seen) == {before}


def test_overlapping_folder_runs_put_the_thread_counts_back_once_the_last_one_ends():
    """Two batch dialogs can run at once: whichever ends first, the counts come back only at the end."""
    import threading

    import cv2
    import torch

    from core.engine.batch import one_host_thread

    before = torch.get_num_threads(), cv2.getNumThreads()
    assert before != (1, 1)  # else the test shows nothing
    a, b = one_host_thread(), one_host_thread()
    a.__enter__()
    b.__enter__()
    a.__exit__(None, None, None)  # the first run ends while the second still runs
    assert (torch.get_num_threads(), cv2.getNumThreads()) == (1, 1)
    b.__exit__(None, None, None)
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
    # from threads, as the app's dialogs do
    gate = threading.Barrier(4)

    def run():
        with one_host_thread():
            gate.wait()

    threads = [threading.Thread(target=run) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert (torch.get_num_threads(), cv2.getNumThreads()) == before
