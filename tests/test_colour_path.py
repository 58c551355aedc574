"""The colour path (preset s3net-lite-colour): the image is base + gain x the source's chromaticity."""

import math

import pytest
import torch

from conftest import randomize
from core.model import PRESETS, adds_colour_path, create_model, with_colour_path
from core.storage.checkpoint import identify_preset, load_checkpoint, save_checkpoint


def test_the_published_presets_have_no_colour_path():
    assert not PRESETS["s3net"].colour_path and not PRESETS["s3net-lite"].colour_path
    assert adds_colour_path("s3net-lite-colour", "s3net-lite")
    assert not adds_colour_path("s3net-lite-colour", "s3net")  # another encoder
    assert not adds_colour_path("s3net-lite", "s3net-lite-colour")


def test_the_output_is_base_plus_gain_times_the_source_chromaticity_by_hand():
    model = create_model("s3net-lite-colour").eval()
    conv = model.tail[1]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.copy_(torch.tensor([0.1, 0.2, -0.3, 0.5, -0.25, 0.0]))
    x = torch.rand(1, 8, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.forward_packed(x)
    brightness = (x[0, 0] + x[0, 1] + x[0, 2]) / 3
    for c, (b, g) in enumerate([(0.1, 0.5), (0.2, -0.25), (-0.3, 0.0)]):
        expected = math.tanh(b) + 2 * math.tanh(g) * x[0, c] / (brightness + 0.05)
        torch.testing.assert_close(out[0, c], expected, atol=1e-5, rtol=0)


def test_the_chromaticity_keeps_colour_and_drops_the_shading():
    from core.model.s3net import chromaticity

    red = torch.tensor([0.6, 0.2, 0.1]).view(1, 3, 1, 1)
    lit, shadowed = chromaticity(red), chromaticity(red * 0.4)  # the same surface, a grey shadow
    grey = chromaticity(torch.full((1, 3, 1, 1), 0.5))
    torch.testing.assert_close(grey, torch.full_like(grey, 0.5 / 0.55))
    # hue identical, level within the floor's share: 0.3 / 0.35 against 0.12 / 0.17
    torch.testing.assert_close(lit / lit.sum(), shadowed / shadowed.sum())
    assert abs(lit.sum().item() / shadowed.sum().item() - (0.3 / 0.35) / (0.12 / 0.17)) < 1e-6
    black = chromaticity(torch.full((1, 3, 1, 1), 1e-4))
    assert black.max() < 0.01  # near black it fades out instead of amplifying noise
    # values below zero (an array handed in by a library caller) never divide by less than the floor
    odd = chromaticity(torch.tensor([-0.0501, -0.05, -0.0499]).view(1, 3, 1, 1))
    assert torch.isfinite(odd).all() and odd.abs().max() <= 0.0501 / 0.05 + 1e-6


def test_weights_without_the_path_start_the_network_with_it_as_exactly_the_old_one(tmp_path):
    old = randomize(create_model("s3net-lite"), 4).eval()
    new = create_model("s3net-lite-colour").eval()
    new.load_state_dict(with_colour_path(old.state_dict()), strict=True)
    x = torch.rand(2, 8, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(new.forward_packed(x), old.forward_packed(x), atol=0, rtol=0)
    # a saved checkpoint says which preset it is from its shapes and its metadata
    path = save_checkpoint(tmp_path / "c.safetensors", new, "s3net-lite-colour")
    _, info = load_checkpoint(path)
    assert info.preset == "s3net-lite-colour"
    assert identify_preset(new.state_dict())[0] == "s3net-lite-colour"
    assert identify_preset(old.state_dict())[0] == "s3net-lite"


def test_training_from_the_bundled_kind_of_model_keeps_the_asked_preset(tmp_path):
    from core.train.training import TrainConfig, _init_model

    old = randomize(create_model("s3net-lite"), 5).eval()
    path = save_checkpoint(tmp_path / "lite.safetensors", old, "s3net-lite")
    notes: list[str] = []
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "run"), preset="s3net-lite-colour", init=str(path))
    model, preset, note = _init_model(cfg, notes.append)
    assert preset == "s3net-lite-colour" and "colour path starting at zero" in note and not notes
    x = torch.rand(1, 8, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model.eval().forward_packed(x), old.forward_packed(x), atol=1e-6, rtol=0)
    # the other way round is not a growth: the checkpoint's own preset is used, and said so
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "run2"), preset="s3net", init=str(path))
    _, preset, _ = _init_model(cfg, notes.append)
    assert preset == "s3net-lite" and notes


def test_every_preset_says_what_it_is():
    from core.model import PRESET_NOTES

    assert set(PRESET_NOTES) == set(PRESETS) and all(len(n) > 20 for n in PRESET_NOTES.values())


@pytest.mark.slow
def test_the_bundled_models_own_image_keeps_the_objects_colours(tmp_path):
    """Its own image (--mode full) on held-out synthetic pairs keeps the target's colourfulness, also
    after a grey-world balance of both (the objects' own colours, not only the light's cast). The
    s3net-lite it was grown from kept 0.50 and 0.16 here."""
    import numpy as np

    from core.base.vocab import COMPASS_DIRECTIONS
    from core.engine.inference import Relighter
    from core.storage.checkpoint import BUNDLED_MODEL
    from core.train.evaluate import eval_pairs
    from core.train.metrics import chroma, geometric_mean
    from core.train.synthetic import synthesize

    def grey_world(img):
        m = img.reshape(-1, 3).mean(0)
        return np.clip(img * (m.mean() / np.maximum(m, 1e-6)), 0, 1)

    synthesize(tmp_path, 0, 256, seed=11, pairs=6, directions=COMPASS_DIRECTIONS, workers=1)
    r = Relighter.from_checkpoint(BUNDLED_MODEL, device="cpu", precision="fp32")
    plain, balanced = [], []
    for _name, src, gui, sd, gd, tgt in eval_pairs(str(tmp_path / "pairs"), 6):
        out = r.relight(src, gui, sd, gd, mode="full").image
        plain.append(chroma(out) / chroma(tgt))
        balanced.append(chroma(grey_world(out)) / chroma(grey_world(tgt)))
    assert 0.8 < geometric_mean(plain) < 1.25 and 0.8 < geometric_mean(balanced) < 1.25, (plain, balanced)
