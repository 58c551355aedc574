"""The normals engine ("add a light"): analytic checks of normals, shading, shadows and colour,
checks on real photographs, and its command line and library faces."""

import math

import cv2
import numpy as np
import pytest
import torch

from core.base.errors import RelightError
from core.render.addlight import (
    Optics,
    add_light,
    cast_shadows,
    geometry,
    light_field,
    shading,
    srgb_to_linear,
    to_full_size,
)
from core.render.light import Light
from core.render.normals import focal_px, normals_from_depth

SUN = math.inf  # a directional light: the analytic references below assume one


def sphere_depth(n: int, fov: float = 50.0, radius: float = 0.3, centre: float = 1.0, back: float = 1.6):
    """Exact z-depth of a sphere in front of a wall through the engine's pinhole camera, with the
    sphere's true normals and the pixels it covers."""
    f = focal_px(n, n, fov)
    u = (np.arange(n) + 0.5 - n / 2) / f
    x, y = np.meshgrid(u, -u)
    d = np.stack([x, y, np.ones_like(x)], -1)
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    c = np.array([0.0, 0.0, centre])
    b = d @ c
    disc = b * b - (c @ c - radius * radius)
    hit = disc > 0
    t = np.where(hit, b - np.sqrt(np.maximum(disc, 0)), np.inf)
    z = np.where(hit, t * d[..., 2], back)
    normals = (d * np.where(hit, t, 0)[..., None] - c) / radius
    return z.astype(np.float32), hit, normals


def lab(img):
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(img, 0, 1))


def to_image(t):
    return t[0].permute(1, 2, 0).numpy()


def from_image(a):
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))[None]


# ---- analytic checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("shadows", [False, True])
def test_sphere_lit_from_east_at_elevation_0_is_lambert_inside_the_rim(shadows):
    n = 1024
    z, hit, true_n = sphere_depth(n)
    optics = Optics(distance=SUN, wrap=0.0, shadows=shadows)
    light = Light(90, elevation=0, softness=0)
    geo = geometry(torch.from_numpy(z), optics)
    lambert = np.clip(true_n[..., 0], 0, None)
    # inside the rim: more than 1 % of the image side from the silhouette (the outermost ring's
    # depth differences span the sphere and the wall)
    inside = cv2.distanceTransform(hit.astype(np.uint8), cv2.DIST_L2, 5) > 0.01 * n
    shade = to_full_size(shading(geo, light, optics), geo)[0, 0].numpy()
    err = np.abs(shade - lambert)[inside]
    assert err.max() < 0.02, f"shading off Lambert by {err.max():.4f}"
    # through the whole chain: a grey card's linear value times the shading (ambient 0, intensity 1)
    grey = np.full((n, n, 3), 0.5, np.float32)
    out = add_light(from_image(grey), geo, Light(90, elevation=0, softness=0, ambient=0.0), optics)
    ratio = srgb_to_linear(out)[0, 1].numpy() / float(srgb_to_linear(torch.tensor(0.5)))
    assert np.abs(ratio - lambert)[inside].max() < 0.02
    # the side away from the light gets nothing
    assert shade[hit & (true_n[..., 0] < -0.1) & inside].max() < 0.02


def test_normals_do_not_depend_on_the_depth_unit_and_face_the_camera():
    z, hit, true_n = sphere_depth(256)
    _, n1 = normals_from_depth(torch.from_numpy(z))
    _, n2 = normals_from_depth(torch.from_numpy(z * 37.0))
    assert torch.allclose(n1, n2, atol=1e-4)
    assert (n1[0, 2] < 0).all()  # every visible surface faces the camera (z away from it)


@pytest.mark.parametrize("direction,elevation", [("S", 0), ("SE", 30), ("E", 45), ("SW", 70)])
def test_a_plane_facing_the_camera_is_lit_uniformly(direction, elevation):
    z = torch.full((300, 400), 0.37)
    optics = Optics(distance=SUN)
    light = Light.parse(direction, 6500, elevation=elevation)
    geo = geometry(z, optics)
    shade = to_full_size(shading(geo, light, optics), geo)[0, 0]
    nl = float(-torch.tensor(np.float32(light_field(geo.points[:, :, :1, :1], light, geo.centre, SUN)[0][0, 2, 0, 0])))
    expected = max(0.0, (nl + optics.wrap) / (1 + optics.wrap))
    assert float(shade.std()) < 1e-4 and abs(float(shade.mean()) - expected) < 1e-4


def box_on_floor(n=256):
    z = np.full((n, n), 0.5, np.float32)  # a floor seen from above
    z[96:160, 96:160] = 0.42  # a box standing 16 % of the floor's depth towards the camera
    return z


def test_a_box_casts_its_shadow_away_from_the_light_and_softness_widens_the_penumbra():
    z = box_on_floor()
    optics = Optics(distance=SUN)
    geo = geometry(torch.from_numpy(z), optics)
    widths = []
    for softness in (0.0, 0.25, 0.5, 1.0):
        light = Light(135, elevation=20, softness=softness)  # SE: from the camera's right, a little above
        to_light, _, dist = light_field(geo.points, light, geo.centre, SUN)
        vis = cast_shadows(geo, to_light, dist, softness)[0, 0].numpy()
        left, right = vis[110:150, 68:92].mean(), vis[110:150, 164:188].mean()  # floor beside the box
        assert left < 0.5 < 0.99 < right, (softness, left, right)  # the shadow falls on the side away from the light
        assert vis[100:156, 100:156].min() > 0.99  # the box's top is lit
        if softness == 0:
            assert set(np.unique(vis)) <= {0.0, 1.0}  # hard: lit or not
        # penumbra: pixels of the floor row through the shadow that are neither lit nor dark
        row = vis[120:136, 0:96]
        widths.append(float(((row > 0.05) & (row < 0.95)).sum(1).mean()))
    assert widths[0] == 0 and all(a < b for a, b in zip(widths, widths[1:])), widths


def test_a_box_shadow_points_along_the_light():
    z = box_on_floor()
    optics = Optics(distance=SUN)
    geo = geometry(torch.from_numpy(z), optics)
    for az, shadow_side, lit_side in (
        (45, np.s_[150:200, 110:150], np.s_[56:96, 110:150]),  # NE above: shadow below
        (300, np.s_[110:150, 170:220], np.s_[110:150, 36:86]),
    ):  # WNW: shadow to the right
        light = Light(az, elevation=25, softness=0)
        to_light, _, dist = light_field(geo.points, light, geo.centre, SUN)
        vis = cast_shadows(geo, to_light, dist, 0.0)[0, 0].numpy()
        assert vis[shadow_side].mean() < vis[lit_side].mean(), az


@pytest.mark.parametrize("kelvin,warm", [(6500, False), (2500, True)])
def test_a_grey_card_stays_neutral_at_6500_k_and_turns_warm_at_2500_k(kelvin, warm):
    card = np.full((128, 128, 3), 0.46, np.float32)
    depth = np.full((128, 128), 0.3, np.float32)
    geo = geometry(torch.from_numpy(depth))
    for light in (Light(135, kelvin), Light(200, kelvin, elevation=60, intensity=2.0, ambient=0.1)):
        out = to_image(add_light(from_image(card), geo, light))
        L = lab(out)
        chroma = np.hypot(L[..., 1], L[..., 2])
        if warm:
            assert L[..., 1].min() > 2 and L[..., 2].min() > 15, (L[..., 1].mean(), L[..., 2].mean())
        else:
            assert chroma.max() < 2, chroma.max()  # delta E_ab from the neutral grey of the same lightness


def test_texture_in_the_depth_does_not_become_bumps_and_edges_keep_no_halo():
    n = 384
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.standard_normal((n, n)).astype(np.float32), (0, 0), 1.5)
    noise /= noise.std()
    rows = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, n), np.float32)
    floor = (1 / (1 / 0.5 + rows / n * (1 / 0.15 - 1 / 0.5))).astype(np.float32)  # a receding floor
    _, clean = normals_from_depth(torch.from_numpy(floor), smooth=0)
    textured = torch.from_numpy(floor * (1 + 0.002 * noise))  # 0.2 % of depth: photo texture leaked into the map
    deviation = {}
    for smooth in (0.0, 0.02):
        _, nrm = normals_from_depth(textured, smooth=smooth)
        cos = (nrm * clean).sum(1)[0].clamp(-1, 1).numpy()[16:-16, 16:-16]
        deviation[smooth] = np.degrees(np.arccos(cos))
    assert np.median(deviation[0.0]) > 10  # raw gradients: a bumpy surface
    assert np.percentile(deviation[0.02], 99) < 8 and np.median(deviation[0.02]) < 3
    # an object in front of a wall: normals stay frontal up to the edge on both sides (no halo ring)
    z = np.full((n, n), 0.45, np.float32)
    z[:, n // 2 :] = 0.25
    _, nrm = normals_from_depth(torch.from_numpy(z))
    assert float(nrm[0, 2].max()) < -0.999


# ---- real photographs -----------------------------------------------------------------------------


def photos():
    import skimage.data

    return {"astronaut": skimage.data.astronaut(), "chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


def depths(h, w):
    plane = np.full((h, w), 0.4, np.float32)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(xx - w / 2, yy - h / 2) / (0.35 * min(h, w))
    dome = plane - 0.12 * np.sqrt(np.clip(1 - r * r, 0, None)).astype(np.float32)  # a dome in the middle
    return {"plane": plane, "dome": dome}


def laplacian_correlation(a, b):
    la = cv2.Laplacian(cv2.cvtColor(a.astype(np.float32), cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    lb = cv2.Laplacian(cv2.cvtColor(b.astype(np.float32), cv2.COLOR_RGB2GRAY), cv2.CV_32F)
    return float(np.corrcoef(la.ravel(), lb.ravel())[0, 1])


def test_photographs_keep_colour_and_detail_and_follow_the_light():
    from core.engine.normals import NormalsRelighter

    engine = NormalsRelighter("cpu")
    report = []
    for name, photo in photos().items():
        src = photo.astype(np.float32) / 255
        h, w = src.shape[:2]
        chroma_src = np.hypot(*lab(src)[..., 1:].transpose(2, 0, 1)).mean()
        for dname, depth in depths(h, w).items():
            right = {}
            for az in (90, 270):
                out = engine.relight(src, depth, Light(az, 5000)).image
                ratio = np.hypot(*lab(out)[..., 1:].transpose(2, 0, 1)).mean() / chroma_src
                corr = laplacian_correlation(src, out)
                report.append((name, dname, az, round(ratio, 3), round(corr, 3)))
                assert 0.75 <= ratio <= 1.33, report[-1]
                assert corr >= 0.9, report[-1]
                luma = out @ np.array([0.2126, 0.7152, 0.0722], np.float32)
                right[az] = (luma[:, w // 2 :].mean(), luma[:, : w // 2].mean())
            assert right[90][0] > right[270][0], (name, dname, right)  # E: brighter on the right than W
            assert right[270][1] > right[90][1], (name, dname, right)  # and W on the left
    print(report)


# ---- faces ----------------------------------------------------------------------------------------


def test_light_settings_are_checked():
    with pytest.raises(RelightError, match="elevation"):
        Light(90, elevation=95)
    with pytest.raises(RelightError, match="ambient"):
        Light(90, ambient=-0.1)
    assert Light.parse("NE", 3000, softness=None, intensity=2).intensity == 2


def test_library_relights_with_the_normals_engine_without_a_checkpoint(tmp_path, monkeypatch):
    from core import api
    from core.engine.inference import Relighter
    from core.storage.io import write_depth_npy, write_image

    def no_network(*a, **k):
        raise AssertionError("the normals engine must not load a checkpoint")

    monkeypatch.setattr(Relighter, "from_checkpoint", no_network)
    img = write_image(tmp_path / "p.png", np.full((48, 64, 3), 0.5, np.float32), 8)
    dep = write_depth_npy(tmp_path / "p.npy", np.full((48, 64), 0.4, np.float32))
    res = api.relight(
        (img, dep), light=Light(180, 6500, elevation=0, ambient=0.5, intensity=0.5), engine="normals", device="cpu"
    )
    assert res.image.shape == (48, 64, 3) and res.mode == "normals" and "normals engine" in res.describe()
    with pytest.raises(RelightError, match="light"):
        api.relight((img, dep), guide=(img, dep), engine="normals")
    with pytest.raises(RelightError, match="engine"):
        api.relight((img, dep), light=Light(), engine="magic")


def test_command_line_normals_engine_single_and_folder(capsys, tmp_path):
    from core.cli import main
    from core.storage.io import read_image, write_depth_npy, write_image

    src = write_image(tmp_path / "in" / "a.png", np.full((40, 60, 3), 0.5, np.float32), 8)
    write_depth_npy(tmp_path / "in" / "a.npy", np.full((40, 60), 0.4, np.float32))
    write_image(tmp_path / "in" / "b.png", np.full((40, 60, 3), 0.3, np.float32), 8)
    write_depth_npy(tmp_path / "in" / "b.npy", np.full((40, 60), 0.3, np.float32))
    out = tmp_path / "a_lit.png"
    code = main(
        [
            "infer",
            "--engine",
            "normals",
            "--source",
            str(src),
            "--light",
            "S",
            "--elevation",
            "0",
            "--intensity",
            "1.5",
            "--ambient",
            "0.2",
            "--softness",
            "0",
            "--output",
            str(out),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert "normals engine" in err and "a.npy" in err  # the depth beside the photo was used and said
    lin = srgb_to_linear(torch.tensor(read_image(out))).numpy()
    # frontal light on a plane: 0.2 + 1.5 * falloff at the centre (1) in linear light
    expected = float(srgb_to_linear(torch.tensor(0.5))) * 1.7
    assert abs(lin[20, 30].mean() - expected) < 0.02
    code = main(
        [
            "infer",
            "--engine",
            "normals",
            "--input-dir",
            str(tmp_path / "in"),
            "--light",
            "E",
            "--output",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"], err
    # user errors: one line, exit code 2
    for args, words in (
        (["--elevation", "30"], "--elevation only works with --engine normals"),
        (["--engine", "normals"], "give --light"),
        (["--engine", "normals", "--light", "E", "--guide-folder", str(tmp_path)], "takes no guide"),
        (["--engine", "normals", "--light", "E", "--ambient", "3"], "ambient must be between"),
    ):
        code = main(["infer", "--source", str(src), "--output", str(tmp_path / "x.png"), *args])
        err = capsys.readouterr().err
        assert code == 2 and words in err and err.count("\n") == 1, err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_and_cpu_agree():
    z, _, _ = sphere_depth(512)
    img = np.random.default_rng(0).random((512, 512, 3)).astype(np.float32)
    light = Light(120, 3500, elevation=25, softness=0.4)
    outs = []
    for dev in ("cpu", "cuda"):
        geo = geometry(torch.from_numpy(z).to(dev))
        outs.append(to_image(add_light(from_image(img).to(dev), geo, light).cpu()))
    assert np.abs(outs[0] - outs[1]).mean() < 2e-3


def test_the_march_gives_the_same_shadows_in_one_launch_as_step_by_step():
    # CUDA runs every step in one launch per operation, the CPU a few steps at a time: one answer
    z = box_on_floor(128)
    geo = geometry(torch.from_numpy(z), Optics(distance=SUN))
    light = Light(120, elevation=30, softness=0.5)
    to_light, _, dist = light_field(geo.points, light, geo.centre, SUN)
    one = cast_shadows(geo, to_light, dist, 0.5, chunk=48)
    steps = cast_shadows(geo, to_light, dist, 0.5, chunk=1)
    assert torch.allclose(one, steps, atol=1e-5) and float(one.min()) < 0.05


def test_a_light_at_a_distance_follows_the_inverse_square_law_on_a_plane():
    n, zc, dist = 200, 0.4, 3.0
    optics = Optics(distance=dist, shadows=False, work_side=n)
    light = Light(150, elevation=20)
    geo = geometry(torch.full((n, n), zc), optics)
    shade = shading(geo, light, optics)[0, 0].numpy()
    f = focal_px(n, n, optics.fov_deg)
    u = (np.arange(n) + 0.5 - n / 2) / f
    p = np.stack(np.broadcast_arrays(u[None, :] * zc, -u[:, None] * zc, np.full((n, n), zc)), -1)
    from core.render.light import light_direction

    pos = np.array([0, 0, zc]) + dist * zc * light_direction(150, 20)
    v = pos - p
    r = np.linalg.norm(v, axis=-1)
    expected = np.clip((-v[..., 2] / r + optics.wrap) / (1 + optics.wrap), 0, 1) * np.minimum((dist * zc / r) ** 2, 4)
    assert np.abs(shade - expected).max() < 1e-3
    assert shade[:, -20:].mean() > shade[:, :20].mean()  # from the SSE: brighter on the right
