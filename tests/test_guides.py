"""The light compass: guides from numbers, relighting to a light, the CLI's --light."""

import numpy as np
import pytest

from core.api import guide_for_light, relight
from core.base.errors import RelightError
from core.cli import main
from core.engine.guides import CompassGuides, FolderGuides
from core.engine.inference import Relighter, working_shape
from core.inputs.input import Input
from core.render import Light, random_scene, reference_scene, render_scene, scene_rng
from core.storage.checkpoint import BUNDLED_MODEL
from core.storage.io import DepthMap, write_depth_npy, write_image
from core.train.metrics import psnr


@pytest.fixture(scope="module")
def bundled():
    return Relighter.from_checkpoint(BUNDLED_MODEL, device="cpu")


def _held_out(i: int, size: int, light: Light):
    """A scene never trained on, at 6500 K / N, and the renderer's own image of it under `light`."""
    scene = random_scene(scene_rng(12345, i))
    imgs, depth = render_scene(scene, size, directions=("N", light.azimuth), temperatures=(6500, light.kelvin))
    return Input(imgs[(6500, "N")], DepthMap(depth), "held-out"), imgs[(light.kelvin, light.azimuth)]


def test_compass_guide_is_the_renderers_reference_scene(tmp_path):
    g = CompassGuides(tmp_path)
    a = g.guide(Light(90, 3500), 96, 64)
    assert a.image.shape == (64, 96, 3) and a.depth.shape == (64, 96) and "light compass" in a.depth.origin
    ims, depth = render_scene(reference_scene(), 64, directions=(90.0,), temperatures=(3500,))
    sq = g.guide(Light(90, 3500), 64)
    np.testing.assert_allclose(sq.image, ims[(3500, 90.0)], atol=1e-6)
    np.testing.assert_allclose(sq.depth.data, depth, atol=1e-6)
    big = g.guide(Light(30, 5000), 256)  # full-size guides are cached on disk
    again = CompassGuides(tmp_path).guide(Light(30, 5000), 256)
    assert len(list(tmp_path.glob("guide-*.png"))) == 1
    np.testing.assert_allclose(again.image, big.image, atol=1 / 65535)
    with pytest.raises(RelightError, match="32 to 8192"):
        g.guide(Light(0, 6500), 8)


@pytest.mark.slow
def test_relighting_to_a_light_given_as_numbers(bundled):
    """Held-out scenes lit from N at 6500 K, relit to a light given as numbers: closer to the
    renderer's truth than the source; the bright side follows the light; warmer and cooler."""
    size = 128
    gains = []
    for i, light in enumerate([Light(90, 3500), Light(270, 5500), Light(135, 2500)]):
        src, truth = _held_out(i, size, light)
        # the network's exposure: the renderer's truth is brighter or darker under the new light
        out = relight(src, light=light, relighter=bundled, keep_exposure=False).image
        gains.append(psnr(out, truth) - psnr(src.image, truth))
    assert min(gains) > 3.0 and np.mean(gains) > 6.0, gains
    src, _ = _held_out(7, size, Light(90, 6500))
    east = relight(src, light=Light(90, 4500), relighter=bundled).image
    west = relight(src, light=Light(270, 4500), relighter=bundled).image
    half = size // 2
    assert east[:, half:].mean() - east[:, :half].mean() > west[:, half:].mean() - west[:, :half].mean() + 0.02
    warm = relight(src, light=Light(45, 2500), relighter=bundled).image
    cool = relight(src, light=Light(45, 9000), relighter=bundled).image
    assert warm[..., 0].mean() / warm[..., 2].mean() > 1.2 * cool[..., 0].mean() / cool[..., 2].mean()


def test_guide_follows_the_source_aspect_and_working_size():
    g = guide_for_light(Light(0, 6500), (300, 600), 384 * 384, CompassGuides())
    h, w = g.image.shape[:2]
    assert (w, h) == (512, 256)  # 2:1 at most 384², sides on the 32 px grid
    r = Relighter.from_checkpoint(BUNDLED_MODEL, device="cpu")
    assert r.working_pixels == 384 * 384
    assert r._working_size(300, 600, "detail") == (w, h)  # rendered at the network's own shape
    # shapes bucket: nearby aspect ratios share one network shape; every side is on the grid
    assert working_shape(3000, 4000, 1024 * 1024) == working_shape(2990, 4010, 1024 * 1024) == (1152, 832)
    for hw in [(480, 640), (1080, 1920), (4000, 3000), (333, 777)]:
        for px in (384 * 384, 1024 * 1024):
            ww, wh = working_shape(*hw, px)
            step = 64 if px >= 768 * 768 else 32
            assert ww % step == 0 and wh % step == 0 and ww * wh <= px
            assert abs((ww / wh) / (hw[1] / hw[0]) - 1) < 0.12


def test_folder_guides_pick_the_nearest_setting(tmp_path):
    from core.train.synthetic import synthesize

    synthesize(tmp_path, scenes=1, size=64, seed=0)
    fg = FolderGuides(tmp_path)
    assert fg.nearest(Light(100, 3300)) == ("Image000", (3500, "E"))
    assert fg.nearest(Light(350, 6400)) == ("Image000", (6500, "N"))
    assert fg.guide(Light(200, 2500)).files.image.name == "Image000_2500_S.png"


def test_cli_light_instead_of_a_guide(capsys, tmp_path, lite_checkpoint):
    rng = np.random.default_rng(0)
    src = write_image(tmp_path / "s.png", rng.random((64, 80, 3)), 8)
    write_depth_npy(tmp_path / "s.npy", rng.random((64, 80)))
    out = tmp_path / "o.png"
    code = main(
        [
            "infer",
            "--source",
            str(src),
            "--light",
            "NE",
            "--temperature",
            "3500",
            "--output",
            str(out),
            "--checkpoint",
            str(lite_checkpoint),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert (
        "light from NE (45°), 3500 K, rendered by the light compass" in err and "using the depth map beside it" in err
    )
    # folder mode with a light: every image of a plain folder
    code = main(
        [
            "infer",
            "--input-dir",
            str(tmp_path),
            "--light",
            "200",
            "--output",
            str(tmp_path / "out"),
            "--checkpoint",
            str(lite_checkpoint),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["s.png"], err
    # o.png has no depth: its line names the file, says it has no depth map and how to get the model
    line = next(x for x in err.splitlines() if x.startswith("skipped o: "))
    assert line.startswith(f"skipped o: {tmp_path / 'o.png'}: has no depth map, and no depth model"), line
    assert "relight models download" in line and "relit 1 of 2" in err
    assert err.strip().splitlines()[-1].endswith(": 1 pair skipped: o"), err
    for bad, msg in (
        (["--light", "up"], "unknown light direction"),
        (["--light", "E", "--temperature", "100"], "colour temperature"),
        (["--light", "E", "--guide", str(src)], "either --guide or --light"),
    ):
        code = main(["infer", "--source", str(src), "--output", str(tmp_path / "x.png"), *bad])
        assert code == 2 and msg in capsys.readouterr().err
