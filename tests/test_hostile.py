"""Files from the internet, as an attacker or a careless user would bring them: every class gives
one clear error (exit 2 on the CLI), allocates nothing large, and destroys nothing."""

import io
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from core.base.errors import RelightError
from core.cli import main
from core.storage.io import read_depth, read_image, write_depth_npy, write_image

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.err


class _Dtype:  # pickles as numpy.dtype(name) with a chosen BUILD state (flags included)
    def __init__(self, name, flags):
        self.name, self.flags = name, flags

    def __reduce__(self):
        return np.dtype, (self.name, False, True), (3, "<", None, None, None, -1, -1, self.flags)


class _Array:  # pickles as numpy's _reconstruct + BUILD(state) with any shape, dtype and data
    def __init__(self, shape, dtype, data):
        self.shape, self.dtype, self.data = shape, dtype, data

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return _reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data)


def _npy_with_pickle(path: Path, obj) -> Path:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    pickle.dump(obj, buf, protocol=4)
    path.write_bytes(buf.getvalue())
    return path


def _read_in_child(path: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; sys.path.insert(0, sys.argv[2]); from core.storage.io import read_depth; from core.base.errors import RelightError\n"
        "try:\n    d = read_depth(sys.argv[1]); print('read', d.data.dtype, d.data.shape)\n"
        "except RelightError as e:\n    print('refused:', e)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path), str(ROOT)], capture_output=True, text=True, timeout=120
    )


def test_dtype_flags_cannot_make_an_object_array(tmp_path):
    # float64 dtype whose pickled flags say "holds objects": numpy would read raw bytes as pointers
    evil = {"normalized_depth": _Array((2, 2), _Dtype("f8", 63), b"\x41" * 32)}
    r = _read_in_child(_npy_with_pickle(tmp_path / "evil.npy", evil))
    assert r.returncode == 0, r.stderr  # no segfault
    assert "read float32 (2, 2)" in r.stdout  # flags from the file are ignored: a plain float array
    objs = {"normalized_depth": _Array((2,), _Dtype("O8", 63), [1, 2])}
    r = _read_in_child(_npy_with_pickle(tmp_path / "objs.npy", objs))
    assert r.returncode == 0 and "refused:" in r.stdout and "object arrays are not allowed" in r.stdout


def test_protocol_2_vidit_dict_is_accepted(tmp_path):
    obj = np.array(
        {"normalized_depth": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), "ref_center_dis": np.float32(2.0)},
        dtype=object,
    )
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    pickle.dump(obj, buf, protocol=2)  # bytes are spelled _codecs.encode(..., 'latin1')
    (tmp_path / "p2.npy").write_bytes(buf.getvalue())
    assert np.load(tmp_path / "p2.npy", allow_pickle=True).item()["normalized_depth"].shape == (3, 4)
    np.testing.assert_array_equal(read_depth(tmp_path / "p2.npy").data, obj.item()["normalized_depth"])


def test_allocation_bombs_are_refused_before_allocating(tmp_path):
    bomb = _npy_with_pickle(tmp_path / "bomb.npy", {"normalized_depth": _Array((30000, 30000), _Dtype("f8", 0), b"")})
    with pytest.raises(RelightError, match="larger than 1024 MB"):
        read_depth(bomb)
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f8", "fortran_order": False, "shape": (30000, 30000)})
    (tmp_path / "plain.npy").write_bytes(hdr.getvalue())
    with pytest.raises(RelightError, match="larger than 1024 MB"):
        read_depth(tmp_path / "plain.npy")
    hdr = io.BytesIO()
    np.lib.format.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False, "shape": (1000, 1000)})
    (tmp_path / "short.npy").write_bytes(hdr.getvalue() + b"\0" * 100)
    with pytest.raises(RelightError, match="shorter than its header"):
        read_depth(tmp_path / "short.npy")
    np.savez(tmp_path / "z.npz", depth=np.zeros((4, 4), np.float32))
    with pytest.raises(RelightError, match="only plain numeric"):
        np.savez(tmp_path / "s.npz", depth=np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
        read_depth(tmp_path / "s.npz")
    assert read_depth(tmp_path / "z.npz").shape == (4, 4)


def _png_header_only(path: Path, w: int, h: int) -> Path:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_png_is_refused_from_its_header(tmp_path):
    png = _png_header_only(tmp_path / "bomb.png", 30000, 30000)
    assert png.stat().st_size < 2000
    with pytest.raises(RelightError, match="30000x30000 .* more than the 150 MP"):
        read_image(png)
    with pytest.raises(RelightError, match="more than the 150 MP"):
        read_depth(png)


@pytest.mark.parametrize(
    "value,match",
    [
        ("a string", "normalized_depth is a str"),
        ({"nested": 1}, "normalized_depth is a dict"),
        ([[1, 2], [3]], "normalized_depth is a list"),
    ],
)
def test_bad_depth_dict_values(tmp_path, value, match):
    p = tmp_path / "d.npy"
    np.save(p, np.array({"normalized_depth": value}, dtype=object), allow_pickle=True)
    with pytest.raises(RelightError, match=match):
        read_depth(p)


def test_odd_depth_arrays_are_refused_or_converted_as_documented(tmp_path):
    cases = {
        "complex": (np.ones((4, 4), np.complex64), "only plain numeric|non-numeric"),
        "negative": (-np.ones((4, 4), np.int16), "negative integers"),
        "colour": (np.random.default_rng(0).random((4, 4, 3)), "3 different channels"),
        "huge": (np.full((4, 4), 1e300), "do not fit in float32"),
    }
    for name, (arr, match) in cases.items():
        np.save(tmp_path / f"{name}.npy", arr)
        with pytest.raises(RelightError, match=match):
            read_depth(tmp_path / f"{name}.npy")
    same = np.repeat(np.linspace(0, 1, 16).reshape(4, 4, 1), 3, axis=2)  # three equal channels: one map
    np.save(tmp_path / "gray3.npy", same)
    np.testing.assert_allclose(read_depth(tmp_path / "gray3.npy").data, same[:, :, 0], rtol=1e-6)


def test_damaged_checkpoints(tmp_path, lite_checkpoint):
    from safetensors.torch import load_file, save_file

    from core.storage.checkpoint import load_checkpoint, read_state_dict

    state = load_file(str(lite_checkpoint))
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}
    save_file(nan, str(tmp_path / "nan.safetensors"))
    with pytest.raises(RelightError, match="NaN or infinite"):
        load_checkpoint(tmp_path / "nan.safetensors")
    # integer weights are not a float checkpoint at another precision: refused, not cast
    ints = {k: (v * 100).to(torch.int32) if v.is_floating_point() else v for k, v in state.items()}
    save_file(ints, str(tmp_path / "ints.safetensors"))
    with pytest.raises(
        RelightError, match=r"wrong kind of number \(e\.g\. .* is torch\.int32, expected torch\.float32"
    ):
        load_checkpoint(tmp_path / "ints.safetensors")
    halves = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}  # fp16: a float kind
    save_file(halves, str(tmp_path / "half.safetensors"))
    assert load_checkpoint(tmp_path / "half.safetensors")[0].encoder.conv1[0].weight.dtype == torch.float32
    deep = "[" * 100000 + "]" * 100000
    save_file(
        state, str(tmp_path / "deep.safetensors"), metadata={"relight.training": deep, "relight.metrics": "1" * 5000}
    )
    _, meta, _ = read_state_dict(tmp_path / "deep.safetensors")  # kept as (truncated) text, no crash
    assert isinstance(meta["training"], str) and isinstance(meta["metrics"], str)
    (tmp_path / "hdr.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(RelightError, match="bad or oversized header"):
        read_state_dict(tmp_path / "hdr.safetensors")


def test_cli_refuses_bad_numbers_in_one_line(capsys, tmp_path, lite_checkpoint):
    img = write_image(tmp_path / "s.png", np.zeros((40, 40, 3)), 8)
    dep = write_depth_npy(tmp_path / "s.npy", np.zeros((40, 40)))
    base = [
        "infer",
        "--source",
        img,
        "--source-depth",
        dep,
        "--guide",
        img,
        "--guide-depth",
        dep,
        "--output",
        tmp_path / "o.png",
        "--checkpoint",
        lite_checkpoint,
    ]
    for extra, match in (
        (["--max-pixels", "0"], "--max-pixels"),
        (["--device", "meta"], "unknown device 'meta'"),
        (["--device", "xla"], "unknown device"),
    ):
        code, err = run_cli(capsys, *base, *extra)
        assert code == 2 and match in err and err.count("\n") == 1, err
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "d", scenes=2, size=64, seed=0)
    for extra, match in (
        (["--batch", "0"], "batch must be at least 1"),
        (["--log-every", "0"], "log_every"),
        (["--steps", "0"], "steps must be at least 1"),
        (["--batch", "500"], "fewer than one batch"),
    ):
        code, err = run_cli(
            capsys,
            "train",
            "--data",
            tmp_path / "d",
            "--out",
            tmp_path / "r",
            "--device",
            "cpu",
            "--preset",
            "s3net-lite",
            *extra,
        )
        last = err.strip().splitlines()[-1]
        assert code == 2 and last.startswith("relight: error:") and match in last and "Traceback" not in err, err


def test_folder_mode_never_writes_into_its_inputs(capsys, tmp_path, lite_checkpoint):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    pairs = tmp_path / "s" / "pairs"
    before = {p: p.read_bytes() for p in pairs.rglob("*") if p.is_file()}
    for out in (pairs / "input", pairs / "guide", pairs):
        code, err = run_cli(capsys, "infer", "--input-dir", pairs, "--output", out, "--checkpoint", lite_checkpoint)
        assert code == 2 and "refusing to write into a folder that holds inputs" in err
    assert {p: p.read_bytes() for p in pairs.rglob("*") if p.is_file()} == before


def test_files_are_written_with_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = write_image(tmp_path / "a.png", np.zeros((40, 40, 3)), 8)
        q = write_depth_npy(tmp_path / "d.npy", np.zeros((4, 4)))
        assert p.stat().st_mode & 0o777 == 0o644 and q.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert write_image(tmp_path / "b.png", np.zeros((40, 40, 3)), 8).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


FUZZ_CHILD = r"""
import sys, random
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from core.storage.io import read_depth, read_image
from core.base.errors import RelightError
seeds = [Path(p) for p in sys.argv[3:]]
rng = random.Random(int(sys.argv[2]))
out = Path(sys.argv[2] + ".fuzz")
tmp = seeds[0].parent / "mutant"
counts = {"read": 0, "refused": 0}
for i in range(300):
    src = rng.choice(seeds)
    data = bytearray(src.read_bytes())
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(data))
        op = rng.random()
        if op < 0.6:
            data[pos] = rng.randrange(256)
        elif op < 0.8:
            del data[pos:pos + rng.randint(1, 64)]
        else:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    path = tmp.with_suffix(src.suffix)
    path.write_bytes(bytes(data))
    try:
        (read_image if src.suffix == ".png" and "img" in src.name else read_depth)(path)
        counts["read"] += 1
    except RelightError:
        counts["refused"] += 1
print(counts)
"""


def test_fuzz_readers_in_a_subprocess(tmp_path):
    """Mutated valid files through the readers, in a child process so that a crash fails the test;
    anything but a result or a RelightError (a traceback) fails it too."""
    rng = np.random.default_rng(0)
    seeds = [
        write_depth_npy(tmp_path / "vidit.npy", rng.random((8, 8))),
        write_image(tmp_path / "img.png", rng.random((40, 40, 3)), 8),
        write_image(tmp_path / "depth16.png", rng.random((40, 40)), 16),
    ]
    np.save(tmp_path / "plain.npy", rng.random((8, 8)).astype(np.float32))
    np.savez(tmp_path / "arr.npz", depth=rng.random((8, 8)))
    seeds += [tmp_path / "plain.npy", tmp_path / "arr.npz"]
    r = subprocess.run(
        [sys.executable, "-c", FUZZ_CHILD, str(ROOT), "7", *map(str, seeds)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])
    counts = eval(r.stdout.strip().splitlines()[-1])
    assert counts["read"] + counts["refused"] == 300 and counts["refused"] > 50
