import numpy as np
import pytest
import torch

from core.base.errors import RelightError
from core.base.vocab import COMPASS_DIRECTIONS, TEMPERATURES
from core.base.vocab import VIDIT_DIRECTIONS as DIRECTIONS
from core.inputs.layouts import scan_ntire, scan_vidit, split_scenes
from core.render import Light, azimuth_of, kelvin_to_linear_rgb, light_position
from core.storage.io import read_depth, read_image
from core.train.datasets import Augment, PairDataset, VIDITTriplets
from core.train.synthetic import synthesize


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthesize(root, scenes=4, size=64, seed=3, pairs=2)
    return root


def test_synthetic_set_has_exact_vidit_layout(synth):
    names = {p.name for p in synth.glob("*.png")}
    for i in range(4):
        for t in TEMPERATURES:
            for d in DIRECTIONS:
                assert f"Image{i:03d}_{t}_{d}.png" in names
        obj = np.load(synth / f"Image{i:03d}.npy", allow_pickle=True).item()
        assert obj["normalized_depth"].dtype == np.float32 and obj["normalized_depth"].shape == (64, 64)
        assert "ref_center_dis" in obj
    for sub in ("input", "guide"):
        assert (synth / "pairs" / sub / "Pair000.png").is_file() and (synth / "pairs" / sub / "Pair000.npy").is_file()
    assert (synth / "pairs" / "target" / "Pair001.png").is_file()


def test_synthetic_is_deterministic_and_lit_from_the_named_side(tmp_path, synth):
    synthesize(tmp_path, scenes=1, size=64, seed=3, workers=2)
    a = (tmp_path / "Image000_4500_E.png").read_bytes()
    assert a == (synth / "Image000_4500_E.png").read_bytes()
    east, west = read_image(synth / "Image000_6500_E.png"), read_image(synth / "Image000_6500_W.png")
    # light from the east (camera right) brightens the right half more than light from the west
    assert east[:, 32:].mean() - east[:, :32].mean() > west[:, 32:].mean() - west[:, :32].mean()
    warm, cool = read_image(synth / "Image000_2500_N.png"), read_image(synth / "Image000_6500_N.png")
    assert warm[..., 0].mean() / warm[..., 2].mean() > cool[..., 0].mean() / cool[..., 2].mean()
    assert light_position(azimuth_of("E"))[0] > 0
    assert light_position(azimuth_of("N"))[2] > light_position(azimuth_of("S"))[2]


def test_light_directions_parse_names_and_degrees():
    assert [azimuth_of(d) for d in ("N", "ne", "E", "SSW", "270", "-45", 405)] == [0, 45, 90, 202.5, 270, 315, 45]
    assert Light.parse("NE", 3500) == Light(45, 3500)
    assert "NE (45°)" in Light(45, 3500).describe()
    with pytest.raises(RelightError, match="unknown light direction"):
        azimuth_of("up")
    with pytest.raises(RelightError, match="colour temperature"):
        Light(0, 100)
    # an intermediate azimuth puts the light between its neighbours
    a, b, c = (light_position(azimuth_of(d)) for d in ("E", "ESE", "SE"))
    assert a[2] > b[2] > c[2] and min(a[0], c[0]) < b[0] + 1e-6


def test_sixteen_direction_set_and_reference_scene(tmp_path):
    synthesize(tmp_path, scenes=2, size=64, seed=3, directions=COMPASS_DIRECTIONS, reference_every=2)
    idx = scan_vidit(tmp_path)
    assert len(idx.scenes["Image000"]) == 16 * 5
    assert (tmp_path / "Image001_2500_WNW.png").is_file()
    # scene 1 is the reference scene: the same pixels whatever the seed
    other = tmp_path / "other"
    synthesize(other, scenes=2, size=64, seed=9, directions=("E",), reference_every=2)
    assert (other / "Image001_4500_E.png").read_bytes() == (tmp_path / "Image001_4500_E.png").read_bytes()
    assert (other / "Image000_4500_E.png").read_bytes() != (tmp_path / "Image000_4500_E.png").read_bytes()


def test_kelvin_colours_go_from_orange_to_white():
    r25, r65 = kelvin_to_linear_rgb(2500), kelvin_to_linear_rgb(6500)
    assert r25[0] > r25[1] > r25[2]
    assert np.abs(r65 / r65.max() - 1).max() < 0.1  # 6500 K is close to the sRGB white point
    assert np.dot([0.2126, 0.7152, 0.0722], r25) == pytest.approx(1.0, abs=0.01)


def test_vidit_scan_split_and_triplets(synth):
    idx = scan_vidit(synth)
    assert len(idx.scenes) == 4 and not idx.problems
    assert "4 scenes" in idx.summary()
    tr, va = split_scenes(list(idx.scenes), 0.25, seed=0)
    assert (tr, va) == split_scenes(list(idx.scenes), 0.25, seed=0) and len(va) == 1 and not set(tr) & set(va)
    ds = VIDITTriplets(idx, "train", 0.25, seed=0)
    assert len(ds) == 3 * 40
    rng = np.random.default_rng(0)
    for i in range(0, len(ds), 17):
        scene, s1, gscene, s2 = ds.triplet(i, rng)
        assert s1 != s2 and gscene != scene and gscene in ds.scenes
    s = ds[5]
    scene, s1, gscene, s2 = ds.triplet(5, np.random.default_rng([0, 0, 5]))
    np.testing.assert_allclose(s["target"].numpy().transpose(1, 2, 0), read_image(idx.scenes[scene][s2]))
    np.testing.assert_allclose(s["source"].numpy().transpose(1, 2, 0), read_image(idx.scenes[scene][s1]))
    np.testing.assert_allclose(s["guide"].numpy().transpose(1, 2, 0), read_image(idx.scenes[gscene][s2]))
    same = VIDITTriplets(idx, "train", 0.25, seed=0, same_scene_guide=True)
    sc, _, gs, _ = same.triplet(0, np.random.default_rng(1))
    assert sc == gs


def test_crops_share_a_window_and_flips_are_consistent(synth):
    idx = scan_vidit(synth)
    full = VIDITTriplets(idx, "train", 0.25, seed=0)
    crop = VIDITTriplets(idx, "train", 0.25, seed=0, augment=Augment(crop=32))
    a, b = full[7], crop[7]
    assert b["source"].shape[-2:] == (32, 32) and b["guide"].shape[-2:] == (32, 32)
    src, tgt = a["source"].numpy(), a["target"].numpy()
    # find the crop window in the full source: the target must be cropped at the same place
    found = [
        (y, x)
        for y in range(33)
        for x in range(33)
        if np.array_equal(src[:, y : y + 32, x : x + 32], b["source"].numpy())
    ]
    assert found and np.array_equal(
        tgt[:, found[0][0] : found[0][0] + 32, found[0][1] : found[0][1] + 32], b["target"].numpy()
    )
    flip = VIDITTriplets(idx, "train", 0.25, seed=0, augment=Augment(hflip=True))
    flipped = [i for i in range(20) if not np.array_equal(flip[i]["source"].numpy(), full[i]["source"].numpy())]
    assert flipped
    i = flipped[0]
    for k in ("source", "guide", "target", "source_depth", "guide_depth"):
        np.testing.assert_array_equal(flip[i][k].numpy(), full[i][k].numpy()[:, :, ::-1])


def test_ntire_pairs(synth):
    recs = scan_ntire(synth / "pairs")
    assert [r.name for r in recs] == ["Pair000", "Pair001"] and all(r.target for r in recs)
    s = PairDataset(recs)[1]
    assert s["source"].shape == (3, 64, 64) and s["source_depth"].shape == (1, 64, 64)
    np.testing.assert_allclose(s["source_depth"][0].numpy(), read_depth(recs[1].pair.source.depth).data)
    # a pair whose depth file is missing is an input without depth: training refuses it by name
    (synth / "pairs" / "guide" / "Pair000.npy").rename(synth / "pairs" / "guide" / "moved.npy")
    try:
        recs = scan_ntire(synth / "pairs")
        assert recs[0].pair.guide.depth is None and recs[1].pair.guide.depth is not None
        ds = PairDataset(recs)
        with pytest.raises(RelightError, match="Pair000.png: has no depth map"):
            ds.sample(0)
        # in training, an unreadable sample is replaced by the next readable one, deterministically
        torch.testing.assert_close(ds[0]["source"], ds[1]["source"])
    finally:
        (synth / "pairs" / "guide" / "moved.npy").rename(synth / "pairs" / "guide" / "Pair000.npy")


def test_layout_errors(tmp_path, synth):
    with pytest.raises(RelightError, match="matches no known layout"):
        scan_vidit(tmp_path)
    import shutil

    for p in synth.glob("Image000_*"):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "Image000_2500_N.png").unlink()
    with pytest.raises(RelightError, match="without depth"):
        scan_vidit(tmp_path)
    shutil.copy(synth / "Image000.npy", tmp_path / "Image000.npy")
    idx = scan_vidit(tmp_path)
    assert any("lacks 1 lighting settings" in p and "2500_N" in p for p in idx.problems)
