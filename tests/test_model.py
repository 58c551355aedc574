import json
from pathlib import Path

import pytest
import torch

from conftest import randomize
from core.model import PRESETS, count_parameters, create_model
from core.model.encoder import widen_stem
from reference_s3net import RefDehaze3

# a copy of the official checkpoint's key/shape manifest, kept in the repository
MANIFEST = Path(__file__).resolve().parent / "data" / "s3net_official_state_dict.json"


def manifest():
    path = MANIFEST
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def s3net():
    return randomize(create_model("s3net"), 3).eval()


def test_parameter_count_matches_release(s3net):
    m = manifest()
    assert count_parameters(s3net) == 49_353_370 == m["total_parameters"]
    by_module = {}
    for name, p in s3net.named_parameters():
        by_module[name.split(".")[0]] = by_module.get(name.split(".")[0], 0) + p.numel()
    for mod, n in m["parameters_by_module"].items():
        assert by_module.get(mod, 0) == n, mod


def test_state_dict_keys_and_shapes_equal_official_manifest(s3net):
    ref = {k: tuple(s) for k, s, _ in manifest()["keys"]}
    ours = {k: tuple(v.shape) for k, v in s3net.state_dict().items()}
    assert list(ref) == list(ours)  # same order too, as torch.save of the release writes it
    assert ref == ours


@pytest.mark.slow
def test_output_equals_independent_transcription_of_release(s3net):
    ref = RefDehaze3().eval()
    ref.load_state_dict(s3net.state_dict(), strict=True)
    g = torch.Generator().manual_seed(0)
    src, gui = torch.rand(1, 3, 64, 96, generator=g), torch.rand(1, 3, 64, 96, generator=g)
    sd, gd = torch.rand(1, 1, 64, 96, generator=g), torch.rand(1, 1, 64, 96, generator=g)
    with torch.inference_mode():
        ours = s3net(src, gui, sd, gd)
        theirs = ref(torch.cat([src, gui, sd, gd], 1))
    assert ours.shape == (1, 3, 64, 96)
    assert ours.abs().max() > 0.01  # a non-trivial output
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2e-5)


@pytest.mark.slow
def test_input_order_matters(s3net):
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 64, 64, generator=g), torch.rand(1, 3, 64, 64, generator=g)
    da, db = torch.rand(1, 1, 64, 64, generator=g), torch.rand(1, 1, 64, 64, generator=g)
    with torch.inference_mode():
        assert not torch.allclose(s3net(a, b, da, db), s3net(b, a, db, da))


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.slow
def test_presets_run_on_odd_multiples_of_32(preset):
    m = create_model(preset).eval()
    x = torch.rand(2, 3, 32, 96)
    d = torch.rand(2, 1, 32, 96)
    with torch.inference_mode():
        y = m(x, x, d, d)
    assert y.shape == (2, 3, 32, 96)
    assert torch.isfinite(y).all() and y.abs().max() <= 1


def test_lite_is_much_smaller():
    n = count_parameters(create_model("s3net-lite"))
    assert 5_000_000 < n < 10_000_000  # fp16 weights fit a 20 MB bundle


def test_widen_stem_keeps_grey_response():
    w = torch.randn(32, 3, 3, 3)
    wide = widen_stem(w)
    assert wide.shape == (32, 8, 3, 3)
    x3 = torch.full((1, 3, 8, 8), 0.5)
    x8 = torch.full((1, 8, 8, 8), 0.5)
    torch.testing.assert_close(torch.nn.functional.conv2d(x8, wide), torch.nn.functional.conv2d(x3, w))
    torch.testing.assert_close(wide[:, 0:3], wide[:, 3:6])


def test_imagenet_encoder_init_from_local_file(tmp_path):
    """An ImageNet Res2Net-101 v1b file (3-channel stem, with fc) initialises the 8-channel encoder."""
    import timm

    from core.base.errors import RelightError
    from core.storage.weights import load_imagenet_encoder

    torch.manual_seed(0)
    rgb = timm.create_model("res2net101d", pretrained=False)  # same names as res2net101_v1b_26w_4s
    path = tmp_path / "res2net101_v1b_26w_4s-0812c246.pth"
    torch.save(rgb.state_dict(), path)
    model = create_model("s3net")
    missing = load_imagenet_encoder(model.encoder, path)
    assert missing == []
    own = model.encoder.state_dict()
    torch.testing.assert_close(own["layer3.22.conv3.weight"], rgb.state_dict()["layer3.22.conv3.weight"])
    torch.testing.assert_close(own["conv1.0.weight"], widen_stem(rgb.state_dict()["conv1.0.weight"]))
    with pytest.raises(RelightError, match="do not fit"):
        load_imagenet_encoder(create_model("s3net-lite").encoder, path)
