"""Inputs that used to end in a traceback or a wrong report where one line and exit 2 are promised:
empty depth arrays, TIFF sample types colour conversion rejects, huge PFM/PAM/HDR headers, link loops,
running out of memory while decoding, wrong argument types in the library, control characters in names,
same-stem images in folder mode and a disk that fills up."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import cli, one_error_line
from core.base.errors import RelightError
from core.storage.io import read_depth, read_image, write_depth_npy, write_image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pair(tmp_path):
    img = write_image(tmp_path / "s.png", np.random.default_rng(0).random((40, 40, 3)), 8)
    dep = write_depth_npy(tmp_path / "s.npy", np.random.default_rng(1).random((40, 40)))
    return img, dep


def infer(capsys, lite_checkpoint, out, src, src_depth, guide, guide_depth):
    return cli(
        capsys,
        "infer",
        "--source",
        src,
        "--source-depth",
        src_depth,
        "--guide",
        guide,
        "--guide-depth",
        guide_depth,
        "--output",
        out,
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )


def test_zero_size_depth_arrays_are_one_line(tmp_path, pair, capsys, lite_checkpoint):
    img, dep = pair
    np.save(tmp_path / "z.npy", np.zeros((0, 40), np.float32))
    np.savez(tmp_path / "z.npz", depth=np.zeros((40, 0)))
    np.save(
        tmp_path / "zv.npy",
        np.array({"normalized_depth": np.zeros((0, 0), np.float32)}, dtype=object),
        allow_pickle=True,
    )
    for name in ("z.npy", "z.npz", "zv.npy"):
        code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", img, tmp_path / name, img, dep)
        one_error_line(code, err, name, "empty" if name != "zv.npy" else "non-empty")
    assert not (tmp_path / "o.png").exists()


def test_tiffs_of_any_sample_type_are_relit_or_refused_cleanly(tmp_path, capsys, pair, lite_checkpoint):
    rng = np.random.default_rng(2)
    rgb = rng.random((40, 40, 3))
    cv2.imwrite(str(tmp_path / "f64.tif"), rgb[:, :, ::-1].astype(np.float64))
    np.testing.assert_allclose(read_image(tmp_path / "f64.tif"), rgb, atol=1e-6)
    cv2.imwrite(str(tmp_path / "u32.tif"), (rgb[:, :, ::-1] * 4294967295).astype(np.uint32))
    np.testing.assert_allclose(read_image(tmp_path / "u32.tif"), rgb, atol=1e-6)
    _, dep = pair
    code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", tmp_path / "f64.tif", dep, tmp_path / "f64.tif", dep)
    assert code == 0, err
    for dt in (np.int8, np.int16, np.int32):
        name = f"{np.dtype(dt).name}.tif"
        cv2.imwrite(str(tmp_path / name), (rgb * 100).astype(dt))
        code, err = infer(capsys, lite_checkpoint, tmp_path / "o2.png", tmp_path / name, dep, tmp_path / name, dep)
        one_error_line(code, err, name, f"signed {np.dtype(dt).name} samples")


@pytest.mark.parametrize(
    "header",
    [
        b"PF\n100000 100000\n-1.0\n",
        b"P7\nWIDTH 100000\nHEIGHT 100000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n",
        b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n",
    ],
)
def test_huge_headers_of_other_formats_named_png(tmp_path, capsys, pair, header, lite_checkpoint):
    img, dep = pair
    (tmp_path / "big.png").write_bytes(header + b"\0" * 100)
    code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", tmp_path / "big.png", dep, img, dep)
    one_error_line(code, err, "big.png", "larger than the 150 MP")
    with pytest.raises(RelightError, match="larger than the 150 MP"):
        read_depth(tmp_path / "big.png")


def test_symlink_loops(tmp_path, capsys, pair, lite_checkpoint):
    img, dep = pair
    for name in ("loop.png", "loop.npy", "loopdir"):
        os.symlink(tmp_path / name, tmp_path / name)
    code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", tmp_path / "loop.png", dep, img, dep)
    one_error_line(code, err, "loop.png", "link to nothing")
    code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", img, tmp_path / "loop.npy", img, dep)
    one_error_line(code, err, "loop.npy", "link to nothing")
    code, err = infer(capsys, lite_checkpoint, tmp_path / "loop.png", img, dep, img, dep)  # the output
    assert code == 0 and not (tmp_path / "loop.png").is_symlink(), err  # replaced by the result, as any output
    photos = tmp_path / "photos"
    photos.mkdir()
    write_image(photos / "p.png", np.zeros((40, 40, 3)), 8)
    code, err = cli(
        capsys,
        "infer",
        "--input-dir",
        photos,
        "--light",
        "N",
        "--output",
        tmp_path / "loopdir",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert code == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("relight: error: "), err
    code, err = cli(capsys, "train", "--data", tmp_path, "--out", tmp_path / "loopdir", "--device", "cpu")
    one_error_line(code, err, "loopdir")


OOM_CHILD = r"""
import resource, sys
sys.path.insert(0, sys.argv[1])
import core.cli, core.engine.inference  # every import first: the limit is on what decoding adds
def vm():
    for ln in open("/proc/self/status"):
        if ln.startswith("VmSize:"):
            return int(ln.split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm() + (400 << 20),) * 2)
sys.exit(core.cli.main(sys.argv[2:]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limit and /proc are Linux's")
def test_running_out_of_memory_while_decoding_is_one_line(tmp_path, pair, lite_checkpoint):
    img, dep = pair
    _, buf = cv2.imencode(".png", np.zeros((9000, 9000), np.uint8))  # 81 MP: under the pixel limit, 1 GB as float RGB
    (tmp_path / "big.png").write_bytes(buf.tobytes())
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            OOM_CHILD,
            str(ROOT),
            "infer",
            "--source",
            str(tmp_path / "big.png"),
            "--guide",
            str(img),
            "--guide-depth",
            str(dep),
            "--output",
            str(tmp_path / "o.png"),
            "--checkpoint",
            str(lite_checkpoint),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("relight: error: ") and "memory" in last, r.stderr[-2000:]


def test_library_raises_relight_error_for_wrong_argument_types(pair):
    from core.api import Light, relight
    from core.inputs.input import InputFiles

    img, dep = pair
    with pytest.raises(RelightError, match="checkpoint must be a file path"):
        relight((img, dep), light=Light(azimuth=45), checkpoint=123)
    with pytest.raises(RelightError, match="light direction"):
        Light(azimuth=None)
    with pytest.raises(RelightError, match="colour temperature"):
        Light(kelvin="warm")
    with pytest.raises(RelightError, match="source must be"):
        relight((img, 3.5), light=Light())
    with pytest.raises(RelightError, match="depth must be a file path"):
        InputFiles(img, 7)
    with pytest.raises(RelightError, match="light must be a Light"):
        relight((img, dep), light="NE")


def test_control_characters_in_names_cannot_forge_error_lines(tmp_path, capsys, pair, lite_checkpoint):
    img, dep = pair
    evil = tmp_path / "x.png\nrelight: error: forged.png"
    evil.write_bytes(b"not an image")
    code, err = infer(capsys, lite_checkpoint, tmp_path / "o.png", evil, dep, img, dep)
    one_error_line(code, err, "x.png\\nrelight: error: forged.png")
    assert str(RelightError("bad", "a\x1b[2Jb\u202ec")).startswith("a\\x1b[2Jb\\u202ec")


def test_errors_list_at_most_a_few_names(tmp_path):
    keys = {f"k{i}": np.zeros(2) for i in range(200)}
    np.save(tmp_path / "d.npy", np.array(keys, dtype=object), allow_pickle=True)
    with pytest.raises(RelightError) as exc:
        read_depth(tmp_path / "d.npy")
    assert "and 195 more" in str(exc.value) and len(str(exc.value)) < 300
    np.savez(tmp_path / "m.npz", **{f"a{i}": np.zeros(2) for i in range(50)})
    with pytest.raises(RelightError, match="and 45 more"):
        read_depth(tmp_path / "m.npz")


def test_folder_mode_gives_same_stem_images_their_own_outputs(tmp_path, capsys, lite_checkpoint):
    photos = tmp_path / "photos"
    rng = np.random.default_rng(3)
    photos.mkdir()
    for ext in ("png", "jpg", "bmp"):
        cv2.imwrite(str(photos / f"a.{ext}"), (rng.random((40, 40, 3)) * 255).astype(np.uint8))
    write_depth_npy(photos / "a.npy", rng.random((40, 40)))
    write_image(photos / "b.png", rng.random((40, 40, 3)), 8)
    code, err = cli(
        capsys,
        "infer",
        "--input-dir",
        photos,
        "--light",
        "N",
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
        "--depth-model",
        tmp_path / "none",
    )
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == ["a_bmp.png", "a_jpg.png", "a_png.png"], (outputs, err)
    assert "relit 3 of 4 pairs" in err and "skipped b" in err  # b has no depth and no depth model here
    write_image(photos / "a_png.webp", rng.random((40, 40, 3)), 8)  # its output name is a.png's
    code, err = cli(
        capsys,
        "infer",
        "--input-dir",
        photos,
        "--light",
        "N",
        "--output",
        tmp_path / "out2",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    one_error_line(code, err, "would write the same output file", "a.png", "a_png.webp")
    assert not (tmp_path / "out2").exists()


def test_folder_mode_exits_non_zero_when_the_disk_fills_up(tmp_path, capsys, monkeypatch, lite_checkpoint):
    import core.storage.io

    photos = tmp_path / "photos"
    rng = np.random.default_rng(4)
    for name in ("a", "b", "c"):
        write_image(photos / f"{name}.png", rng.random((40, 40, 3)), 8)
        write_depth_npy(photos / f"{name}.npy", rng.random((40, 40)))
    real, calls = core.storage.io._atomic_write_bytes, []

    def full_after_one(path, data):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(core.storage.io, "_atomic_write_bytes", full_after_one)
    code, err = cli(
        capsys,
        "infer",
        "--input-dir",
        photos,
        "--light",
        "N",
        "--output",
        tmp_path / "out",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    last = err.strip().splitlines()[-1]
    assert code == 2 and "relit 1 of 3 pairs" in err and "No space left on device" in err, err
    assert last.startswith("relight: error: ") and "2 result(s) could not be written" in last, err
    assert len(list((tmp_path / "out").iterdir())) == 1


def _damaged_png(path: Path, damage: str) -> None:
    """A noisy 256x256 PNG cut short (a partial download or copy) or with one byte flipped (a bad disk)."""
    rng = np.random.default_rng(0)
    data = bytearray(cv2.imencode(".png", (rng.random((256, 256, 3)) * 255).astype(np.uint8))[1].tobytes())
    if damage == "cut early":
        data = data[:3000]
    elif damage == "cut in half":
        data = data[: len(data) // 2]
    elif damage == "cut before IEND":
        data = data[:-12]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = ("cut early", "cut in half", "cut before IEND", "flipped byte")


def _cut_image(path: Path) -> None:
    """A noisy 256x256 image in the format its suffix names, cut in half (a partial download)."""
    rng = np.random.default_rng(0)
    data = cv2.imencode(path.suffix, (rng.random((256, 256, 3)) * 255).astype(np.uint8))[1].tobytes()
    path.write_bytes(data[: len(data) // 2])


def test_cut_tiffs_read_in_threads_leave_the_processes_warning_filters_as_they_were(tmp_path, capfd):
    """Folder mode and the app read in threads: each header read swapped the process's warning filters
    (catch_warnings), and reads at once could leave every warning of the process off for good, or let
    Pillow's "Corrupt EXIF data" through to stderr."""
    import io
    import threading
    import warnings

    from core.storage.io import _pillow_size

    photo = tmp_path / "photo.tif"
    _cut_image(photo)
    data = photo.read_bytes()
    _pillow_size(io.BytesIO(data))  # Pillow's own filter, once
    before = list(warnings.filters)

    def read_many():
        for _ in range(300):
            _pillow_size(io.BytesIO(data))

    threads = [threading.Thread(target=read_many) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("damage", DAMAGES + ("cut TIFF", "cut BMP"))
def test_a_damaged_image_from_the_command_line_is_one_line_on_stderr(tmp_path, damage):
    """OpenCV's decoders log their errors on stderr themselves, libpng prints its own "libpng error: …"
    line and Pillow (reading the header) warns of corrupt EXIF data in a cut-off TIFF; a user sees our
    one line naming the file and nothing else."""
    if damage.startswith("cut ") and damage[4:].isupper():
        photo = tmp_path / f"photo.{damage[4:].lower()}"
        _cut_image(photo)
    else:
        photo = tmp_path / "photo.png"
        _damaged_png(photo, damage)
    np.save(tmp_path / "photo.npy", np.random.default_rng(1).random((256, 256)).astype(np.float32))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "infer",
            "--source",
            str(photo),
            "--source-depth",
            str(tmp_path / "photo.npy"),
            "--light",
            "E",
            "--output",
            str(tmp_path / "out.png"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "OPENCV_LOG_LEVEL"},
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("relight: error: "), r.stderr
    assert photo.name in r.stderr


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_png_says_what_is_wrong(tmp_path, damage):
    photo = tmp_path / "photo.png"
    _damaged_png(photo, damage)
    with pytest.raises(RelightError) as err:
        read_image(photo)
    assert ("cut off" if damage.startswith("cut") else "damaged") in str(err.value), err.value


def test_a_whole_png_with_bytes_after_its_end_still_reads(tmp_path):
    photo = tmp_path / "photo.png"
    write_image(photo, np.random.default_rng(0).random((64, 64, 3)), 8)
    photo.write_bytes(photo.read_bytes() + b"trailing junk")
    assert read_image(photo).shape == (64, 64, 3)
