"""Depth for photos without depth: the conversion, the estimator, the CLI, the library, downloads."""

import socket
import time

import numpy as np
import pytest

from core.base.errors import RelightError
from core.cli import main
from core.depth.estimation import FAR, NEAR, estimate_depth, inverse_to_network_depth
from core.storage.io import read_depth, read_image, write_depth_npy, write_image


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def no_installed_model(monkeypatch, tmp_path):
    monkeypatch.delenv("RELIGHT_DEPTH_MODEL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_inverse_depth_becomes_network_depth_by_hand_values():
    inv = np.array([0.0] * 50 + [0.5] + [1.0] * 49, np.float32).reshape(10, 10)
    d = inverse_to_network_depth(inv)
    assert d.dtype == np.float32 and d.shape == (10, 10)
    assert d.flat[0] == pytest.approx(FAR)  # smallest inverse depth: the farthest point
    assert d.flat[99] == pytest.approx(NEAR)  # largest inverse depth: the nearest
    # halfway in inverse depth: 1 / (1/0.5 + 0.5 (1/0.15 - 1/0.5)) = 1 / (2 + 7/3) = 3/13
    assert d.flat[50] == pytest.approx(3 / 13, rel=1e-5)
    # scale and shift of the inverse depth do not matter; larger = nearer becomes larger = farther
    np.testing.assert_allclose(inverse_to_network_depth(7 * inv + 3), d, rtol=1e-6)
    assert np.all(np.diff(inverse_to_network_depth(np.linspace(0, 1, 100)).ravel()) <= 0)
    assert np.all(inverse_to_network_depth(np.full((4, 4), 2.0)) == pytest.approx((NEAR + FAR) / 2))


def test_library_call_returns_the_readers_type(tiny_depth_model):
    img = np.random.default_rng(0).random((70, 90, 3), dtype=np.float32)
    d = estimate_depth(img, tiny_depth_model, device="cpu")
    assert d.shape == (70, 90) and d.data.dtype == np.float32
    assert d.data.min() >= NEAR - 1e-6 and d.data.max() <= FAR + 1e-6
    assert "Depth Anything (32-wide backbone)" in d.origin and d.path is None
    assert estimate_depth(img, tiny_depth_model, device="cpu") is d  # cached per image
    with pytest.raises(RelightError, match="not a depth model folder"):
        estimate_depth(img, tiny_depth_model / "nope")


@pytest.mark.parametrize("fmt,suffix", [("png16", ".png"), ("npy", ".npy"), ("vidit", ".npy")])
def test_depth_command_writes_readable_maps(capsys, tmp_path, tiny_depth_model, fmt, suffix):
    img = write_image(tmp_path / "photo.jpg", np.random.default_rng(1).random((64, 80, 3)), 8)
    out = tmp_path / f"d{suffix}"
    code, _, err = run_cli(
        capsys, "depth", img, "--output", out, "--model", tiny_depth_model, "--format", fmt, "--device", "cpu"
    )
    assert code == 0, err
    back = read_depth(out)
    want = estimate_depth(read_image(img), tiny_depth_model, device="cpu").data
    assert back.shape == (64, 80)
    np.testing.assert_allclose(back.data, want, atol=1 / 65535 + 1e-7 if fmt == "png16" else 1e-7)
    # several images into a folder; never over an input
    code, _, err = run_cli(
        capsys,
        "depth",
        img,
        img.with_name("photo.jpg"),
        "--output",
        tmp_path / "maps",
        "--model",
        tiny_depth_model,
        "--device",
        "cpu",
        "--format",
        fmt,
    )
    assert code == 0 and (tmp_path / "maps" / f"photo_depth{suffix}").is_file()
    code, _, err = run_cli(capsys, "depth", img, "--output", img, "--model", tiny_depth_model, "--format", fmt)
    assert code == 2 and err.startswith("relight: error:")


def test_depth_command_gives_photos_of_one_name_their_own_maps(capsys, tmp_path, tiny_depth_model):
    """a.png and a.jpg into one folder: a_png_depth and a_jpg_depth (as folder mode names its results),
    not the second written over the first."""
    rng = np.random.default_rng(3)
    png = write_image(tmp_path / "a.png", rng.random((64, 80, 3)), 8)
    jpg = write_image(tmp_path / "a.jpg", rng.random((48, 96, 3)), 8)
    out = tmp_path / "maps"
    code, _, err = run_cli(capsys, "depth", png, jpg, "--output", out, "--model", tiny_depth_model, "--device", "cpu")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a_jpg_depth.png", "a_png_depth.png"]
    assert read_depth(out / "a_png_depth.png").shape == (64, 80)
    assert read_depth(out / "a_jpg_depth.png").shape == (48, 96)


def test_depth_command_estimates_a_photo_named_two_ways_once(capsys, tmp_path, tiny_depth_model, monkeypatch):
    """a.png, ./a.png and its absolute path are one photo: one map, not 'these inputs would write the
    same output file: a.png, a.png; rename them'."""
    png = write_image(tmp_path / "a.png", np.random.default_rng(3).random((64, 80, 3)), 8)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "maps"
    args = ["--output", out, "--model", tiny_depth_model, "--device", "cpu"]
    code, _, err = run_cli(capsys, "depth", "a.png", png, "./a.png", *args)
    assert code == 0, err
    assert err.count("wrote") == 1 and [p.name for p in out.iterdir()] == ["a_depth.png"], err


def test_infer_estimates_missing_depth_and_says_so(capsys, tmp_path, tiny_depth_model, lite_checkpoint):
    rng = np.random.default_rng(2)
    src = write_image(tmp_path / "src.png", rng.random((64, 64, 3)), 8)
    gui = write_image(tmp_path / "gui.png", rng.random((64, 64, 3)), 8)
    gd = write_depth_npy(tmp_path / "gui.npy", rng.random((64, 64)))
    out = tmp_path / "out.png"
    code, _, err = run_cli(
        capsys,
        "infer",
        "--source",
        src,
        "--guide",
        gui,
        "--guide-depth",
        gd,
        "--output",
        out,
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
        "--depth-model",
        tiny_depth_model,
    )
    assert code == 0, err
    assert "source src.png: no depth map given, estimating it with Depth Anything (32-wide backbone)" in err
    assert "guide gui.png" not in err and read_image(out).shape == (64, 64, 3)


def test_folder_mode_estimates_for_pairs_without_depth(
    capsys, tmp_path, tiny_depth_model, lite_checkpoint, monkeypatch
):
    from core.train.synthetic import synthesize

    synthesize(tmp_path / "s", scenes=0, size=64, seed=0, pairs=2)
    pairs = tmp_path / "s" / "pairs"
    (pairs / "input" / "Pair001.npy").unlink()
    monkeypatch.setenv("RELIGHT_DEPTH_MODEL", str(tiny_depth_model))
    code, _, err = run_cli(
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
    assert code == 0, err
    assert "Pair001.png: no depth map given" in err and "relit 2 of 2" in err


def test_without_a_model_infer_fails_fast_and_offline(
    capsys, tmp_path, lite_checkpoint, no_installed_model, monkeypatch
):
    def no_network(*a, **k):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    src = write_image(tmp_path / "src.png", np.random.default_rng(3).random((64, 64, 3)), 8)
    t0 = time.perf_counter()
    code, _, err = run_cli(
        capsys,
        "infer",
        "--source",
        src,
        "--guide",
        src,
        "--output",
        tmp_path / "o.png",
        "--checkpoint",
        lite_checkpoint,
        "--device",
        "cpu",
    )
    assert code == 2 and time.perf_counter() - t0 < 10
    assert err.count("\n") == 1 and "relight models download depth-anything-v2-small" in err
    assert not (tmp_path / "o.png").exists()


# Downloads and installs against the pinned table: tests/test_depth_models.py


@pytest.mark.slow
def test_two_threads_loading_at_once_share_one_model(tiny_depth_model):
    # a fresh process: the first import of transformers' lazy classes is what two threads race on
    code = f"""
import threading
from core.depth.estimation import load_estimator
barrier, got, errors = threading.Barrier(4), [], []
def load():
    barrier.wait()
    try:
        got.append(load_estimator({str(tiny_depth_model)!r}, device="cpu"))
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=load) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print(errors, len(got), len({{id(e) for e in got}}))
"""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[-2] == "[] 4 1"  # no error, and all four got the same estimator


def test_a_damaged_depth_model_is_a_clear_error(capsys, tmp_path, tiny_depth_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_depth_model, broken)
    (broken / "model.safetensors").write_bytes(b"\x05\x00")  # a cut-off download
    img = write_image(tmp_path / "photo.png", np.random.default_rng(2).random((64, 80, 3)), 8)
    code, _, err = run_cli(capsys, "depth", img, "--output", tmp_path / "d.png", "--model", broken, "--device", "cpu")
    assert code == 2 and "cannot load the depth model" in err and str(broken) in err and "Traceback" not in err


def test_a_depth_model_folder_is_checked_fully_and_named_by_its_config(tmp_path, tiny_depth_model):
    import shutil

    from core.depth.estimation import depth_model_title, inspect_depth_model

    assert inspect_depth_model(tiny_depth_model) == "Depth Anything (32-wide backbone)"
    assert (
        depth_model_title({"_name_or_path": "depth-anything/Depth-Anything-V2-Small-hf"}) == "Depth Anything V2 Small"
    )
    assert depth_model_title({"backbone_config": {"hidden_size": 1024}}) == "Depth Anything Large"
    for name, damage in (
        ("config.json", b'{"model_type": "depth_anything", '),
        ("model.safetensors", b"\x10\x00"),
        ("config.json", b'{"model_type": "dpt"}'),
    ):
        folder = tmp_path / f"m-{name}-{len(damage)}"
        shutil.copytree(tiny_depth_model, folder)
        (folder / name).write_bytes(damage)
        with pytest.raises(RelightError, match=name.replace(".", r"\.")):
            inspect_depth_model(folder)
    cut = tmp_path / "cut"
    shutil.copytree(tiny_depth_model, cut)
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])  # an interrupted copy
    with pytest.raises(RelightError, match="cut off"):
        inspect_depth_model(cut)
