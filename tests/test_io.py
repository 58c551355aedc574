import os

import cv2
import numpy as np
import pytest

from core.base.errors import RelightError
from core.storage.io import check_pair, depth_warnings, read_depth, read_image, write_depth_npy, write_image


def test_png16_round_trip_is_exact_to_16_bit_codes(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 65536, (40, 50, 3), dtype=np.uint16)
    x = codes.astype(np.float32) / 65535
    write_image(tmp_path / "a.png", x, 16)
    raw = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    np.testing.assert_array_equal(raw[:, :, ::-1], codes)  # stored BGR, we hold RGB
    np.testing.assert_allclose(read_image(tmp_path / "a.png"), x, atol=1e-7)


@pytest.mark.parametrize("suffix,bits", [(".png", 8), (".tif", 16), (".tif", 8), (".jpg", 8)])
def test_write_read_formats(tmp_path, suffix, bits):
    x = np.zeros((33, 47, 3), np.float32)
    x[..., 0] = np.linspace(0, 1, 47)[None]
    x[..., 2] = 0.25
    write_image(tmp_path / f"a{suffix}", x, bits)
    y = read_image(tmp_path / f"a{suffix}")
    assert y.shape == x.shape and y.dtype == np.float32
    tol = 0.03 if suffix == ".jpg" else (1 / 255 if bits == 8 else 1e-4)
    assert np.abs(y - x).max() <= tol


def test_rgba_drops_alpha_and_gray_replicates(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17  # BGRA: blue 200, alpha 17
    cv2.imwrite(str(tmp_path / "a.png"), rgba)
    y = read_image(tmp_path / "a.png")
    assert y.shape == (32, 32, 3)
    np.testing.assert_allclose(y[0, 0], [0, 0, 200 / 255], atol=1e-6)
    gray16 = np.full((32, 40), 65535 // 2, np.uint16)
    cv2.imwrite(str(tmp_path / "g.png"), gray16)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (32, 40, 3)
    np.testing.assert_allclose(g, 32767 / 65535, atol=1e-7)


def test_webp_and_bmp(tmp_path):
    x = np.full((32, 32, 3), 0.5, np.float32)
    for s in (".bmp", ".webp"):
        cv2.imwrite(
            str(tmp_path / f"a{s}"), (x * 255).astype(np.uint8), [cv2.IMWRITE_WEBP_QUALITY, 101] if s == ".webp" else []
        )
        assert abs(read_image(tmp_path / f"a{s}").mean() - 0.5) < 0.01


def test_image_errors(tmp_path):
    with pytest.raises(RelightError, match="not found"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(RelightError, match="bad.png.*not a readable image"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(RelightError, match="empty"):
        read_image(tmp_path / "empty.png")
    cv2.imwrite(str(tmp_path / "tiny.png"), np.zeros((16, 64, 3), np.uint8))
    with pytest.raises(RelightError, match="at least 32"):
        read_image(tmp_path / "tiny.png")


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    import core.storage.io as cio

    write_image(tmp_path / "out.png", np.zeros((32, 32, 3)), 8)
    before = (tmp_path / "out.png").read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cio.os, "fsync", boom)
    with pytest.raises(RelightError, match="No space"):
        write_image(tmp_path / "out.png", np.ones((32, 32, 3)), 8)
    assert (tmp_path / "out.png").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temp file left


# ---- depth formats -----------------------------------------------------------------------


def test_vidit_depth_dict(tmp_path):
    d = np.random.default_rng(0).random((20, 30)).astype(np.float32)
    write_depth_npy(tmp_path / "Image000.npy", d, 3.5)
    # the file is the format VIDIT ships: np.load(..., allow_pickle=True).item() gives the dict
    obj = np.load(tmp_path / "Image000.npy", allow_pickle=True).item()
    assert set(obj) == {"normalized_depth", "ref_center_dis"}
    dm = read_depth(tmp_path / "Image000.npy")
    np.testing.assert_array_equal(dm.data, d)
    assert "VIDIT" in dm.scaling


def test_plain_npy_npz_and_scaling(tmp_path):
    d = np.linspace(0, 1, 600, dtype=np.float32).reshape(20, 30)
    np.save(tmp_path / "a.npy", d)
    np.testing.assert_array_equal(read_depth(tmp_path / "a.npy").data, d)
    np.save(tmp_path / "m.npy", d * 10 + 2)  # metric depth in metres: min-max normalised
    np.testing.assert_allclose(read_depth(tmp_path / "m.npy").data, d, atol=1e-6)
    np.savez(tmp_path / "b.npz", depth=d)
    np.testing.assert_array_equal(read_depth(tmp_path / "b.npz").data, d)
    np.savez(tmp_path / "c.npz", x=d, y=d)
    with pytest.raises(RelightError, match="which array"):
        read_depth(tmp_path / "c.npz")


def test_png_and_tiff_depth(tmp_path):
    codes16 = (np.arange(600).reshape(20, 30) * 100).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d16.png"), codes16)
    np.testing.assert_allclose(read_depth(tmp_path / "d16.png").data, codes16 / 65535, atol=1e-7)
    codes8 = (np.arange(600).reshape(20, 30) % 256).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "d8.png"), codes8)
    np.testing.assert_allclose(read_depth(tmp_path / "d8.png").data, codes8 / 255, atol=1e-7)
    f = np.random.default_rng(1).random((20, 30)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "d.tif"), f)
    np.testing.assert_array_equal(read_depth(tmp_path / "d.tif").data, f)


def test_exr_depth(tmp_path):
    f = np.random.default_rng(2).random((20, 30)).astype(np.float32)
    try:
        ok = cv2.imwrite(str(tmp_path / "d.exr"), f)
    except cv2.error:
        ok = False
    if not ok:
        pytest.skip("this OpenCV build has no OpenEXR support")
    np.testing.assert_allclose(read_depth(tmp_path / "d.exr").data, f, atol=1e-3)


def test_depth_errors(tmp_path):
    d = np.ones((20, 30), np.float32)
    d[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", d)
    with pytest.raises(RelightError, match="nan.npy.*non-finite"):
        read_depth(tmp_path / "nan.npy")
    write_depth_npy(tmp_path / "naninf.npy", np.full((4, 4), np.inf))
    with pytest.raises(RelightError, match="non-finite"):
        read_depth(tmp_path / "naninf.npy")
    np.save(tmp_path / "c.npy", np.array({"depth": np.ones((4, 4))}, dtype=object), allow_pickle=True)
    with pytest.raises(RelightError, match="normalized_depth"):
        read_depth(tmp_path / "c.npy")
    (tmp_path / "junk.npy").write_bytes(b"garbage")
    with pytest.raises(RelightError, match="junk.npy"):
        read_depth(tmp_path / "junk.npy")
    with pytest.raises(RelightError, match="unsupported depth format"):
        read_depth(tmp_path / "x.txt") if (tmp_path / "x.txt").write_text("1") else None
    cv2.imwrite(
        str(tmp_path / "colour.png"),
        np.dstack([np.zeros((32, 32)), np.ones((32, 32)) * 50, np.ones((32, 32)) * 9]).astype(np.uint8),
    )
    with pytest.raises(RelightError, match="colour"):
        read_depth(tmp_path / "colour.png")


def test_size_mismatch_names_the_depth_file(tmp_path):
    write_depth_npy(tmp_path / "s.npy", np.zeros((20, 30)))
    with pytest.raises(RelightError, match=r"s\.npy.*30x20.*image is 40x32"):
        check_pair(np.zeros((32, 40, 3), np.float32), read_depth(tmp_path / "s.npy"))


def test_depth_warnings():
    from core.storage.io import DepthMap

    assert depth_warnings(DepthMap(np.zeros((4, 4), np.float32))) == ["depth is all zeros"]
    assert depth_warnings(DepthMap(np.full((4, 4), 0.3, np.float32))) == ["depth is constant"]
    assert depth_warnings(DepthMap(np.eye(4, dtype=np.float32))) == []


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


def test_safe_loader_refuses_pickle_that_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.target = marker
    evil = {"normalized_depth": np.zeros((4, 4), np.float32), "x": payload}
    with open(tmp_path / "evil.npy", "wb") as f:
        np.lib.format.write_array(f, np.array(evil, dtype=object), allow_pickle=True)
    with pytest.raises(RelightError, match=r"evil\.npy.*(refusing|unsafe).*(posix|os|nt)\.system"):
        read_depth(tmp_path / "evil.npy")
    assert not marker.exists()
    # the same bytes would run the command through a plain unpickler: the test guards a real hole
    np.load(tmp_path / "evil.npy", allow_pickle=True)
    assert marker.exists()
