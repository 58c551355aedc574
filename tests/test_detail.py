"""The detail-preserving output: the network's lighting on the source's own detail."""
import cv2
import numpy as np

from core.gainmap import carry_detail
from core.metrics import detail_ratio


def _textured(h=96, w=96, seed=0):
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), np.float32)
    base[:, : w // 2] = (0.8, 0.2, 0.1)  # a red object beside a blue one: a colour edge
    base[:, w // 2:] = (0.1, 0.3, 0.8)
    return np.clip(base * (0.8 + 0.4 * rng.random((h, w, 1), dtype=np.float32)), 0, 1)


def test_identity_and_uniform_gain():
    src = _textured()
    np.testing.assert_allclose(carry_detail(src, src, src), src, atol=1e-5)
    relit = (src + 0.02) * 0.5 - 0.02  # a uniform gain of 0.5 in the offset domain
    np.testing.assert_allclose(carry_detail(src, src, np.clip(relit, 0, 1)), np.clip(relit, 0, 1), atol=1e-4)


def test_new_shadow_stays_dark_and_edges_get_no_colour_fringe():
    src = _textured()
    gain = np.ones((96, 96, 1), np.float32)
    gain[:, 40:60] = 0.0  # a new shadow across the colour edge
    relit = np.clip((src + 0.02) * gain - 0.02, 0, 1)
    out = carry_detail(src, src, relit)
    inside = out[:, 44:56]  # inside the shadow, away from its border: dark (lit pixels are 0.1-1)
    assert inside.max() < 0.06 and inside.mean() < 0.01
    # wherever the network's gain is the same for all channels, the carried gain is too: the
    # output's channel ratios are the source's (no colour fringe), also beside the colour edge at x = 48
    gain[:, 40:60] = 0.3  # a half shadow across the colour edge (no clipping)
    out = carry_detail(src, src, (src + 0.02) * gain - 0.02)
    g = (out + 0.02) / (src + 0.02)
    assert g[:, 48].max() < 0.31 and g[:, 20].min() > 0.99
    assert np.abs(g[..., 0] - g[..., 2]).max() < 1e-4 and np.abs(g[..., 0] - g[..., 1]).max() < 1e-4


def test_blurred_network_output_gets_the_source_detail_back_at_any_size():
    src = _textured(256, 256)
    truth = np.clip((src + 0.02) * 0.7 - 0.02, 0, 1)
    work = cv2.resize(src, (128, 128), interpolation=cv2.INTER_AREA)
    blurry = cv2.GaussianBlur(np.clip((work + 0.02) * 0.7 - 0.02, 0, 1), (0, 0), 3)  # a soft network output
    out = carry_detail(src, work, blurry)
    assert out.shape == src.shape
    assert detail_ratio(cv2.resize(blurry, (256, 256)), truth) < 0.1
    assert 0.8 < detail_ratio(out, truth) < 1.25
    assert np.abs(out - truth).mean() < 0.02
