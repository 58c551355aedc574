"""Tiny files that would hang the program or take gigabytes: pickles of shared references, zip bombs,
FIFOs and devices in place of files, and pairs too large for the machine's memory. Each is refused
with one clear error, quickly, without allocating what the file asks for."""

import io
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from core.base.errors import RelightError
from core.cli import main
from core.inputs.input import InputFiles, load_input
from core.storage.io import read_depth, read_image, write_depth, write_depth_npy, write_image

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.err


def _npy_header_obj() -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    return buf.getvalue()


# A child reads one depth file with its address space capped a little above what its imports took
# and a wall-clock limit: a bomb on the old code runs out of memory or time there, not here.
LIMITED_READ = r"""
import resource, sys, time
sys.path.insert(0, sys.argv[2])
import core.storage.safe_load as sl
from core.storage.io import read_depth
from core.base.errors import RelightError
if len(sys.argv) > 3:
    sl.MAX_ARRAY_BYTES = int(sys.argv[3])  # a small bound keeps the test small
vm = [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:")][0]
resource.setrlimit(resource.RLIMIT_AS, (vm + (768 << 20), resource.RLIM_INFINITY))
t0 = time.perf_counter()
try:
    d = read_depth(sys.argv[1])
    print("read", d.data.shape)
except RelightError as e:
    print("refused:", e)
print("seconds", round(time.perf_counter() - t0, 2))
"""


def _read_limited(path: Path, max_array_bytes: int | None = None, timeout: float = 60) -> str:
    args = [sys.executable, "-c", LIMITED_READ, str(path), str(ROOT)] + (
        [str(max_array_bytes)] if max_array_bytes else []
    )
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timed out"
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def _shared_list_pickle(levels: int = 30) -> bytes:
    x: list = []
    for _ in range(levels):
        x = [x, x]  # each level doubles what a naive rebuild walks; the pickle grows by a few bytes
    return _npy_header_obj() + pickle.dumps({"normalized_depth": x}, protocol=4)


def _tuple_key_pickle(levels: int = 40) -> bytes:
    """A dict whose key is (t, t) nested 40 times: hashing it walks 2**40 tuples. Written opcode by
    opcode, since building it in Python would hash it too."""
    b = bytearray(b"\x80\x02}")  # PROTO 2, EMPTY_DICT
    b += b"K\x01q\x000"  # BININT1 1, BINPUT 0, POP
    for _ in range(levels):
        b += b"h\x00h\x00\x86q\x000"  # BINGET 0 twice, TUPLE2, BINPUT 0, POP
    b += b"h\x00K\x01s."  # the key, value 1, SETITEM, STOP
    return _npy_header_obj() + bytes(b)


def test_pickle_of_shared_references_is_rebuilt_once(tmp_path):
    small = _shared_list_pickle(30)
    assert len(small) < 500
    (tmp_path / "dag.npy").write_bytes(small)
    out = _read_limited(tmp_path / "dag.npy")
    # rebuilt once per object, the result is a small shared structure: a list, not a depth map
    assert "refused:" in out and "normalized_depth is a list" in out, out
    assert float(out.split("seconds")[1]) < 5, out


def test_pickle_with_a_shared_tuple_as_a_dict_key_is_refused_at_once(tmp_path):
    (tmp_path / "hash.npy").write_bytes(_tuple_key_pickle(40))
    out = _read_limited(tmp_path / "hash.npy", timeout=30)
    assert "refused:" in out and "refusing a tuple as a dict key" in out, out


def test_pickle_bounds_on_builtins_sets_and_shared_array_data(tmp_path):
    # bytes(10**10) from a dozen bytes of pickle
    big_bytes = _npy_header_obj() + b"\x80\x02cbuiltins\nbytes\n(\x8a\x05\x00\xe4\x0bT\x02tR."
    (tmp_path / "bytes.npy").write_bytes(big_bytes)
    out = _read_limited(tmp_path / "bytes.npy")
    assert "refused:" in out and "bytes() of anything but text or bytes" in out, out
    # a frozenset is hashed while it is built: sets are not part of the format at all
    (tmp_path / "set.npy").write_bytes(_npy_header_obj() + pickle.dumps(frozenset({1, 2}), protocol=4))
    with pytest.raises(RelightError, match="sets are not allowed"):
        read_depth(tmp_path / "set.npy")
    # one 1 MB bytes object behind 100 arrays: every array is a copy, so all of them count (bound set to 16 MB)
    from numpy._core.multiarray import _reconstruct

    class Arr:
        def __init__(self, data):
            self.data = data

        def __reduce__(self):
            return _reconstruct, (np.ndarray, (0,), b"b"), (1, (512, 512), np.dtype("f4"), False, self.data)

    data = b"\0" * (1 << 20)
    (tmp_path / "shared.npy").write_bytes(
        _npy_header_obj() + pickle.dumps({"normalized_depth": [Arr(data) for _ in range(100)]}, protocol=4)
    )
    assert (tmp_path / "shared.npy").stat().st_size < 2 << 20
    out = _read_limited(tmp_path / "shared.npy", max_array_bytes=16 << 20)
    assert "refused:" in out and "arrays add up to more than 16 MB" in out, out


def test_vidit_pickles_still_read_after_the_bounds(tmp_path):
    rng = np.random.default_rng(0)
    p = write_depth_npy(tmp_path / "d.npy", rng.random((300, 200)))
    assert read_depth(p).shape == (300, 200)
    obj = {"normalized_depth": rng.random((8, 8)).astype(np.float32), "ref_center_dis": 2.0, "meta": [1, (2, 3)]}
    np.save(tmp_path / "e.npy", np.array(obj, dtype=object), allow_pickle=True)
    np.testing.assert_array_equal(read_depth(tmp_path / "e.npy").data, obj["normalized_depth"])


def _npz_bomb(path: Path, side: int) -> Path:
    """An .npz whose float32 side x side array of zeros is streamed in: 4*side^2 bytes inflated, a
    thousandth of that on disk, never in memory while it is made."""
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False, "shape": (side, side)})
    zero = bytes(side * 4 * 64)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("depth.npy", "w", force_zip64=True) as f:
        f.write(hdr.getvalue())
        for _ in range(side // 64):
            f.write(zero)
    return path


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    except RelightError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_npz_zip_bomb_is_refused_from_the_zip_headers(tmp_path):
    bomb = _npz_bomb(tmp_path / "bomb.npz", 8192)  # 256 MB of float32 zeros
    assert bomb.stat().st_size < 2 << 20
    with pytest.raises(RelightError, match="inflates .*-fold .* zip bomb"):
        read_depth(bomb)
    assert _peak_bytes(lambda: read_depth(bomb)) < 16 << 20
    img = write_image(tmp_path / "bomb.png", np.zeros((64, 64, 3)), 8)
    with pytest.raises(RelightError, match="zip bomb"):
        load_input(InputFiles(img, bomb))
    assert _peak_bytes(lambda: load_input(InputFiles(img, bomb))) < 16 << 20
    # beside a 64x64 image a 2048x2048 depth is refused from the headers, before either is decoded
    np.save(tmp_path / "big.npy", np.zeros((2048, 2048), np.float32))
    with pytest.raises(RelightError, match="depth is 2048x2048 but its image is 64x64"):
        load_input(InputFiles(img, tmp_path / "big.npy"))
    assert _peak_bytes(lambda: load_input(InputFiles(img, tmp_path / "big.npy"))) < 4 << 20
    # a zip of many tiny entries is refused from its end record, before its directory is parsed
    with zipfile.ZipFile(tmp_path / "many.npz", "w") as zf:
        for i in range(200):
            zf.writestr(f"a{i}.npy", b"")
    with pytest.raises(RelightError, match="200 entries, more than the 64"):
        read_depth(tmp_path / "many.npz")
    # an ordinary compressed npz still reads
    np.savez_compressed(tmp_path / "ok.npz", depth=np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64))
    assert read_depth(tmp_path / "ok.npz").shape == (48, 64)


@pytest.fixture
def fifos(tmp_path):
    """make(path) creates a FIFO; after 4 s a helper opens every one for writing and closes it, so that
    code which (wrongly) opens one stops waiting and the test fails instead of hanging."""
    made, stop = [], threading.Event()

    def make(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        made.append(path)
        return path

    def unjam():
        if stop.wait(4):
            return
        while not stop.is_set():
            for p in made:
                try:
                    os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))
                except OSError:
                    pass
            time.sleep(0.05)

    t = threading.Thread(target=unjam, daemon=True)
    t.start()
    yield make
    stop.set()
    t.join()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_as_image_depth_or_checkpoint_is_refused_without_waiting(capsys, tmp_path, fifos, lite_checkpoint):
    img = write_image(tmp_path / "s.png", np.random.default_rng(0).random((64, 64, 3)), 8)
    dep = write_depth_npy(tmp_path / "s.npy", np.random.default_rng(1).random((64, 64)))
    base = ["--guide", img, "--guide-depth", dep, "--output", tmp_path / "o.png", "--device", "cpu"]
    cases = [
        (
            ["--source", fifos(tmp_path / "fifo.png"), "--source-depth", dep, "--checkpoint", lite_checkpoint],
            "fifo.png",
        ),
        (
            ["--source", img, "--source-depth", fifos(tmp_path / "fifo.npy"), "--checkpoint", lite_checkpoint],
            "fifo.npy",
        ),
        (
            ["--source", img, "--source-depth", fifos(tmp_path / "fifo.npz"), "--checkpoint", lite_checkpoint],
            "fifo.npz",
        ),
        (["--source", img, "--source-depth", dep, "--checkpoint", fifos(tmp_path / "w.safetensors")], "w.safetensors"),
        (["--source", img, "--source-depth", dep, "--checkpoint", fifos(tmp_path / "weight.pkl")], "weight.pkl"),
    ]
    for args, name in cases:
        t0 = time.perf_counter()
        code, err = run_cli(capsys, "infer", *args, *base)
        assert time.perf_counter() - t0 < 4, (name, err)
        assert code == 2 and err.count("\n") == 1 and name in err and "is a FIFO (named pipe)" in err, (name, err)
    for reader in (read_image, read_depth):
        with pytest.raises(RelightError, match="FIFO"):
            reader(tmp_path / "fifo.png")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_folder_mode_skips_and_reports_fifos(capsys, tmp_path, fifos, lite_checkpoint):
    from core.inputs.pairing import pair_dropped
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=3)
    pairs = tmp_path / "s" / "pairs"
    (pairs / "input" / "Pair001.npy").unlink()
    fifos(pairs / "input" / "Pair001.npy")  # a depth file that is a FIFO
    fifos(pairs / "input" / "Pair009.png")  # an image that is a FIFO
    (pairs / "guide" / "Pair002.png").unlink()
    fifos(pairs / "guide" / "Pair002.png")  # a guide that is a FIFO
    t0 = time.perf_counter()
    code, err = run_cli(
        capsys,
        "infer",
        "--input-dir",
        pairs,
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert time.perf_counter() - t0 < 4 + 10, err
    assert code == 2 and "relit 1 of 4 pairs" in err and "3 pairs skipped: Pair001, Pair002, Pair009" in err, err
    for name in ("Pair001", "Pair002", "Pair009"):
        assert f"skipped {name}:" in err and "FIFO" in err.split(f"skipped {name}:")[1].splitlines()[0], err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["Pair000.png"]
    # a dropped folder names the FIFO among its problems
    _, problems = pair_dropped([pairs / "input"])
    assert "Pair009.png: not a regular file, skipped" in problems


def _png_header(path: Path, w: int, h: int, bit_depth: int = 8, colour: int = 2) -> Path:
    """A PNG with a real header and a token of data: its header says w x h, it weighs a few hundred bytes."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
    return path


def test_pair_over_the_memory_budget_is_refused_before_decoding(capsys, tmp_path, monkeypatch, lite_checkpoint):
    from core.inputs.input import (
        BYTES_PER_DEPTH_PIXEL,
        BYTES_PER_GUIDE_PIXEL,
        BYTES_PER_SOURCE_PIXEL,
        pair_memory_budget,
        physical_memory,
    )

    # the default budget: half of this machine's memory
    monkeypatch.delenv("RELIGHT_MEMORY_BUDGET_MB", raising=False)
    assert pair_memory_budget()[0] == physical_memory() // 2
    # 12000 x 12000 RGB with a 16-bit depth of that size: inside the 150 MP limit, under a kilobyte each
    src = _png_header(tmp_path / "big.png", 12000, 12000)
    dep = _png_header(tmp_path / "big_depth.png", 12000, 12000, bit_depth=16, colour=0)
    gui = write_image(tmp_path / "g.png", np.zeros((64, 64, 3)), 8)
    gdep = write_depth(tmp_path / "g_depth.png", np.zeros((64, 64)))
    monkeypatch.setenv("RELIGHT_MEMORY_BUDGET_MB", "4096")
    t0 = time.perf_counter()
    code, err = run_cli(
        capsys,
        "infer",
        "--source",
        src,
        "--source-depth",
        dep,
        "--guide",
        gui,
        "--guide-depth",
        gdep,
        "--output",
        tmp_path / "o.png",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert code == 2 and err.count("\n") == 1 and time.perf_counter() - t0 < 5, err
    need = 12000 * 12000 * (BYTES_PER_SOURCE_PIXEL + BYTES_PER_DEPTH_PIXEL) + 64 * 64 * (
        BYTES_PER_GUIDE_PIXEL + BYTES_PER_DEPTH_PIXEL
    )
    assert "big.png: relighting this pair needs about" in err and f"{need / 2**30:.1f} GB" in err, err
    assert "source 12000x12000" in err and "more than the 4.00 GB allowed ($RELIGHT_MEMORY_BUDGET_MB)" in err, err
    # the library refuses the same pair with the same numbers, having allocated nothing of its size
    from core.api import relight
    from core.render.light import Light

    assert (
        _peak_bytes(lambda: relight((src, dep), light=Light(azimuth=0), checkpoint=lite_checkpoint, device="cpu"))
        < 64 << 20
    )
    with pytest.raises(RelightError, match="needs about"):
        load_input(InputFiles(src, dep))
    # a small budget applies to real pairs in folder mode: the pair is reported, the run goes on
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    monkeypatch.setenv("RELIGHT_MEMORY_BUDGET_MB", "0.5")  # 64x64 x 128 bytes = 0.5 MB, plus the guide and depths
    code, err = run_cli(
        capsys,
        "infer",
        "--input-dir",
        tmp_path / "s" / "pairs",
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert code == 2 and "relit 0 of 2" in err and "needs about" in err, err
    monkeypatch.setenv("RELIGHT_MEMORY_BUDGET_MB", "64")
    code, err = run_cli(
        capsys,
        "infer",
        "--input-dir",
        tmp_path / "s" / "pairs",
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert code == 0 and "relit 2 of 2" in err, err
