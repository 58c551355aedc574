import numpy as np
import pytest
import pywt
import torch
from skimage.metrics import structural_similarity

from core.train.losses import (
    VGG_SLICES,
    VGG_WEIGHTS,
    LossWeights,
    RelightLoss,
    VGGPerceptual,
    charbonnier,
    dwt_haar,
    haar_filters,
    ssim_map,
    wssim_loss,
    wssim_weights,
)


def test_haar_filters_come_from_pywt():
    w = pywt.Wavelet("haar")
    lo, hi = np.array(w.dec_lo[::-1]), np.array(w.dec_hi[::-1])
    ref = np.stack([np.outer(lo, lo), np.outer(hi, lo), np.outer(lo, hi), np.outer(hi, hi)])
    np.testing.assert_allclose(haar_filters()[:, 0].numpy(), ref, atol=1e-7)


def test_dwt_equals_pywt_band_by_band():
    x = torch.rand(2, 3, 16, 22, dtype=torch.float64)
    ll, lh, hl, hh = dwt_haar(x)
    for n in range(2):
        for c in range(3):
            ca, (ch, cv, cd) = pywt.dwt2(x[n, c].numpy(), "haar")
            # order LL, LH, HL, HH == pywt's cA, cH, cV, cD, same signs
            for ours, ref in zip((ll, lh, hl, hh), (ca, ch, cv, cd)):
                np.testing.assert_allclose(ours[n, c].numpy(), ref, atol=1e-12)
    # LL ranges as stated: level 1 spans [0, 2], level 2 spans [0, 4]
    ones = torch.ones(1, 1, 8, 8)
    l1 = dwt_haar(ones)[0]
    assert torch.allclose(l1, torch.full_like(l1, 2.0)) and torch.allclose(
        dwt_haar(l1)[0], torch.full((1, 1, 2, 2), 4.0)
    )


def test_ssim_map_matches_skimage_away_from_borders():
    rng = np.random.default_rng(0)
    a = rng.random((48, 40))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    _, ref = structural_similarity(
        a, b, full=True, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    ours = ssim_map(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(ours[5:-5, 5:-5], ref[5:-5, 5:-5], atol=1e-4)


def test_ssim_map_equals_the_two_dimensional_window_at_the_borders_too():
    """The separable blur is the 11x11 window's convolution exactly, zero-padded borders included."""
    import torch.nn.functional as F

    from core.train.losses import gaussian_kernel

    x = torch.rand(2, 3, 23, 17, dtype=torch.float64)
    y = (x + 0.2 * torch.rand_like(x)).clamp(0, 1)
    g = gaussian_kernel(11, 1.5).double()
    w = (g[:, None] * g[None, :])[None, None].expand(3, 1, 11, 11)

    def blur(t):
        return F.conv2d(t, w, padding=5, groups=3)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    ref = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    torch.testing.assert_close(ssim_map(x, y), ref, rtol=0, atol=1e-12)


def test_wssim_weights_and_extremes():
    w = wssim_weights(2, 0.7)
    r = 0.7
    assert w[0] == pytest.approx((r * r, r * (1 - r), (1 - r) ** 2))
    assert w[1] == pytest.approx((r**4, r**3 * (1 - r), r**2 * (1 - r) ** 2))
    band_total = sum(2 * m + h for _, m, h in w) + w[-1][0]
    assert band_total == pytest.approx(1.0)
    x = torch.rand(1, 3, 32, 32)
    assert float(wssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)  # 2 - (1 + 1)
    y = torch.rand(1, 3, 32, 32)
    assert 0.5 < float(wssim_loss(x, y)) < 2.5
    assert float(wssim_loss(x, (x + 0.05 * y).clamp(0, 1))) < float(wssim_loss(x, y))


def test_charbonnier_by_hand():
    p, t = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.0])
    assert float(charbonnier(p, t)) == pytest.approx((1e-3 + (1 + 1e-6) ** 0.5) / 2, rel=1e-6)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / "vgg19-dcbb9e9d.pth"
    torch.save(vgg19(weights=None).state_dict(), path)
    return path


@pytest.mark.slow
def test_perceptual_uses_stated_slices_and_weights(vgg_file):
    from torchvision.models import vgg19

    loss = VGGPerceptual(vgg_file)
    full = vgg19(weights=None)
    full.load_state_dict(torch.load(vgg_file, weights_only=True))
    feats = full.features.eval()
    assert VGG_SLICES == ((0, 2), (2, 7), (7, 12)) and VGG_WEIGHTS == (1 / 32, 1 / 16, 1 / 8)
    assert (
        isinstance(feats[1], torch.nn.ReLU)
        and isinstance(feats[6], torch.nn.ReLU)
        and isinstance(feats[11], torch.nn.ReLU)
    )
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = sum(
            w * torch.nn.functional.l1_loss(feats[:e](a), feats[:e](b)) for w, (_, e) in zip(VGG_WEIGHTS, VGG_SLICES)
        )
    assert float(loss(a, b)) == pytest.approx(float(ref), rel=1e-5)
    assert all(not p.requires_grad for p in loss.parameters())
    # gradients flow to the prediction only
    a.requires_grad_(True)
    b.requires_grad_(True)
    loss(a, b).backward()
    assert a.grad is not None and b.grad is None


def test_total_loss_weights_and_perceptual_switch(vgg_file):
    p, t = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    off = RelightLoss(LossWeights(), None)
    assert off.perceptual is None and "OFF" in off.perceptual_off_reason
    total, terms = off(p, t)
    assert float(total) == pytest.approx(float(terms["charbonnier"]) + 1.1 * float(terms["wssim"]), rel=1e-6)
    on = RelightLoss(LossWeights(1.0, 1.1, 0.1), vgg_file)
    total, terms = on(p, t)
    terms = {k: float(v) for k, v in terms.items()}
    assert terms["perceptual"] > 0
    assert float(total) == pytest.approx(
        terms["charbonnier"] + 1.1 * terms["wssim"] + 0.1 * terms["perceptual"], rel=1e-5
    )
    custom = RelightLoss(LossWeights(2.0, 0.0, 0.0), None)
    assert custom.perceptual_off_reason is None
    assert float(custom(p, t)[0]) == pytest.approx(2 * float(terms["charbonnier"]), rel=1e-6)


def test_metrics_against_hand_values_and_skimage():
    from core.train.metrics import psnr, ssim

    a = np.full((40, 50, 3), 0.5)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)  # mse 0.01
    assert psnr(a, a) == float("inf")
    rng = np.random.default_rng(1)
    x = rng.random((48, 56, 3))
    y = np.clip(x + rng.normal(0, 0.08, x.shape), 0, 1)
    ref = structural_similarity(
        x, y, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert ssim(y, x) == pytest.approx(ref, abs=1e-4)
    nchw = torch.from_numpy(x.transpose(2, 0, 1))[None], torch.from_numpy(y.transpose(2, 0, 1))[None]
    assert ssim(nchw[1], nchw[0]) == pytest.approx(ref, abs=1e-4)


def test_detail_ratio_against_hand_values():
    from core.train.metrics import detail_ratio, laplacian_variance

    # one bright pixel in a 5x5 grey image: the 3x3 interior Laplacian holds -4, four 1s and four 0s
    img = np.zeros((5, 5), np.float64)
    img[2, 2] = 1.0
    assert laplacian_variance(img) == pytest.approx(20 / 9)
    rgb = np.repeat(img[:, :, None], 3, axis=2)  # luminance weights sum to 1
    assert laplacian_variance(rgb) == pytest.approx(20 / 9)
    rng = np.random.default_rng(0)
    sharp = rng.random((64, 64, 3))
    assert detail_ratio(sharp, sharp) == pytest.approx(1.0)
    assert detail_ratio(0.5 * sharp, sharp) == pytest.approx(0.25)  # variance scales with the square
    import cv2

    assert detail_ratio(cv2.GaussianBlur(sharp, (0, 0), 2), sharp) < 0.05
