import numpy as np

from core.inputs.pairing import find_depth, pair_dropped
from core.storage.io import write_depth_npy, write_image


def _img(p):
    return write_image(p, np.zeros((32, 32, 3)), 8)


def test_pairing_rules(tmp_path):
    a = _img(tmp_path / "a.png")
    write_depth_npy(tmp_path / "a.npy", np.zeros((32, 32)))
    b = _img(tmp_path / "b.jpg")
    write_image(tmp_path / "b_depth.png", np.zeros((32, 32)), 16)
    v = _img(tmp_path / "Image007_4500_NE.png")
    write_depth_npy(tmp_path / "Image007.npy", np.zeros((32, 32)))
    assert find_depth(a) == tmp_path / "a.npy"
    assert find_depth(b) == tmp_path / "b_depth.png"
    assert find_depth(v) == tmp_path / "Image007.npy"
    pairs, problems = pair_dropped([a, b, v, tmp_path / "a.npy"])
    assert {(p.image.name, p.depth.name) for p in pairs} == {
        ("a.png", "a.npy"),
        ("b.jpg", "b_depth.png"),
        ("Image007_4500_NE.png", "Image007.npy"),
    }
    assert not problems
    # a folder is expanded; depth images are not mistaken for inputs
    pairs, _ = pair_dropped([tmp_path])
    assert sorted(p.image.name for p in pairs) == ["Image007_4500_NE.png", "a.png", "b.jpg"]


def test_explicit_image_plus_depth_wins_photos_alone_open_and_refusals_explain(tmp_path):
    x = _img(tmp_path / "x.png")
    write_depth_npy(tmp_path / "x.npy", np.zeros((32, 32)))
    other = write_depth_npy(tmp_path / "other.npy", np.zeros((32, 32)))
    pairs, _ = pair_dropped([x, other])
    assert pairs[0].depth == other
    lonely = _img(tmp_path / "lonely.png")
    pairs, problems = pair_dropped([lonely])  # a photo alone: an input whose depth can be estimated
    assert [(p.image, p.depth) for p in pairs] == [(lonely, None)] and not problems
    pairs, problems = pair_dropped([other])
    assert not pairs and "without its image" in problems[0]
    assert pair_dropped([])[1] == ["nothing to open"]
