"""The colour-true, edge-aware composition (core.engine.compose): analytic cases with known answers."""

import cv2
import numpy as np
import pytest

from core.base.errors import RelightError
from core.engine.compose import (
    WARM_AXIS,
    ComposeSettings,
    compose,
    light_colour,
    linear_to_srgb,
    settings_for,
    srgb_to_linear,
)
from core.render.color import kelvin_to_linear_rgb
from core.train.metrics import colour_ratio, detail_correlation, detail_ratio, exposure_ratio

LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def _textured(h=128, w=128, seed=0):
    """A red object beside a blue one, with a fine texture (reflectance, linear light)."""
    rng = np.random.default_rng(seed)
    base = np.zeros((h, w, 3), np.float32)
    base[:, : w // 2] = (0.6, 0.08, 0.05)
    base[:, w // 2 :] = (0.05, 0.15, 0.6)
    return base * (0.7 + 0.6 * rng.random((h, w, 1), dtype=np.float32))


def _lit(reflectance, shading):
    return linear_to_srgb(reflectance * shading[..., None])


def _net(img, side=64, grey=0.0):
    """What a small network gives for an image: its working size, blurred, optionally greyed."""
    small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    small = (1 - grey) * small + grey * (small @ LUMA)[..., None]
    return cv2.GaussianBlur(small, (0, 0), 1.2)


def test_srgb_round_trip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=2e-6)


def test_unchanged_light_gives_the_source_back():
    src = _lit(_textured(), np.full((128, 128), 0.8, np.float32))
    np.testing.assert_allclose(compose(src, src, src, reference_work=src), src, atol=2e-3)
    # a blurring, greying network: its image of the source under its own light is the reference
    work = cv2.resize(src, (64, 64), interpolation=cv2.INTER_AREA)
    ref = _net(src, grey=0.5)
    np.testing.assert_allclose(compose(src, work, ref, reference_work=ref), src, atol=2e-3)


def test_a_uniform_change_of_light_keeps_every_colour():
    refl = _textured()
    src = _lit(refl, np.full((128, 128), 0.8, np.float32))
    truth = _lit(refl, np.full((128, 128), 0.4, np.float32))  # half the light, in linear light
    work = cv2.resize(src, (64, 64), interpolation=cv2.INTER_AREA)
    # the network's own images: the right brightness but greyed and blurred (what S3Net does to photos)
    out = compose(src, work, _net(truth, grey=0.5), reference_work=_net(src, grey=0.5))
    assert np.abs(out - truth).mean() < 0.02
    assert 0.95 < colour_ratio(out, truth) < 1.05  # the greyed network output did not grey the result
    assert detail_correlation(out, truth) > 0.97  # the texture is the source's, untouched by the blur


def test_an_old_shadow_is_removed_along_its_own_edge_without_an_outline():
    refl = _textured()
    shadow = np.full((128, 128), 0.8, np.float32)
    shadow[:, 40:90] = 0.1  # a hard old shadow band, its edges off the colour edge at x = 64
    src = _lit(refl, shadow)
    truth = _lit(refl, np.full((128, 128), 0.8, np.float32))  # the same scene without the shadow
    work = cv2.resize(src, (64, 64), interpolation=cv2.INTER_AREA)
    out = compose(src, work, _net(truth), reference_work=_net(src))
    err = np.abs(out - truth).mean(axis=(0, 2))  # per column
    before = np.abs(src - truth).mean(axis=(0, 2))
    # the shadow is gone and at its old edges (x = 40, 90) at most a faint trace is left: under 40 % of
    # the error the shadow made (a blurred gain would leave a dark outline of about half of it)
    assert before[40:90].min() > 0.25 and err.max() < 0.1, err.round(3)
    assert 0.6 < detail_ratio(out, truth) < 1.4  # texture beside the old edge is partly flattened


def test_a_new_shadow_keeps_the_edge_the_network_gives_it():
    refl = _textured()
    src = _lit(refl, np.full((128, 128), 0.8, np.float32))
    shade = np.full((128, 128), 0.8, np.float32)
    shade[:, 64:] = 0.05  # a new shadow over the right half
    truth = _lit(refl, shade)
    work = cv2.resize(src, (64, 64), interpolation=cv2.INTER_AREA)
    out = compose(src, work, _net(truth), reference_work=_net(src))
    y = srgb_to_linear(out) @ LUMA
    ys = srgb_to_linear(src) @ LUMA
    ratio = y / ys
    assert np.median(ratio[:, :56]) > 0.9 and np.median(ratio[:, 72:]) < 0.1  # dark, 4 px from the edge on


def test_the_light_colour_is_global_and_on_the_black_body_axis():
    refl = _textured()
    src_lin = refl * 0.6
    warm = kelvin_to_linear_rgb(3500) / kelvin_to_linear_rgb(6500)
    warm = warm / float(warm @ LUMA)
    # the network warmed the light but also greyed the picture and tinted it green
    relit_lin = (0.5 * src_lin + 0.5 * (src_lin @ LUMA)[..., None]) * warm * np.array([0.9, 1.15, 0.9], np.float32)
    c = light_colour(src_lin, relit_lin)
    # the green tint is not a black body's change: the change lies on the warm/cool axis alone
    d = np.log(c) - np.log(c).mean()
    np.testing.assert_allclose(d, float(d @ WARM_AXIS) * WARM_AXIS, atol=1e-5)
    assert c[0] > 1.05 and c[2] < 0.95  # warmer
    src = linear_to_srgb(src_lin)
    grey_ref = linear_to_srgb(0.5 * src_lin + 0.5 * (src_lin @ LUMA)[..., None])  # the network greys both
    relit = linear_to_srgb((0.5 * src_lin + 0.5 * (src_lin @ LUMA)[..., None]) * warm)
    out = compose(src, src, relit, reference_work=grey_ref)
    # the red and the blue object both keep their own colour, warmed
    lin = srgb_to_linear(out)
    assert lin[:, :64, 0].mean() > lin[:, :64, 2].mean() * 4 and lin[:, 64:, 2].mean() > lin[:, 64:, 0].mean() * 3
    assert 0.8 < colour_ratio(out, src) < 1.3


def test_neutral_light_keeps_a_red_cup_red():
    cup = np.zeros((64, 64, 3), np.float32)
    cup[:] = (0.7, 0.05, 0.04)
    src = linear_to_srgb(cup)
    # a network that greys everything: the cup under the new light, and under its own, both grey
    grey = linear_to_srgb(np.repeat((cup @ LUMA)[..., None], 3, 2))
    out = compose(src, src, linear_to_srgb(srgb_to_linear(grey) * 1.3), reference_work=grey)
    assert colour_ratio(out, src) > 0.97
    # without the reference the greying would read as a change of the light's colour
    assert colour_ratio(compose(src, src, grey), src) < 0.9


def test_a_compass_temperature_warms_or_cools_a_white_balanced_photo():
    refl = _textured()
    src = _lit(refl, np.full((128, 128), 0.6, np.float32))
    warm = compose(src, src, src, ComposeSettings(light_kelvin=2500), reference_work=src)
    cool = compose(src, src, src, ComposeSettings(light_kelvin=12000), reference_work=src)
    same = compose(src, src, src, ComposeSettings(light_kelvin=6500), reference_work=src)
    rb = lambda im: float(srgb_to_linear(im)[..., 0].mean() / srgb_to_linear(im)[..., 2].mean())  # noqa: E731
    assert rb(warm) > 1.5 * rb(src) and rb(cool) < 0.9 * rb(src)
    np.testing.assert_allclose(same, src, atol=3e-3)


def test_keep_exposure_and_exposure_offset():
    refl = _textured()
    src = _lit(refl, np.full((128, 128), 0.6, np.float32))
    dark = _lit(refl, np.full((128, 128), 0.05, np.float32))  # light from behind: a dark frame
    out = compose(src, src, dark, ComposeSettings(keep_exposure=True))
    assert abs(exposure_ratio(out, src) - 1) < 0.02  # the displayed brightness is kept
    y = lambda im: float((srgb_to_linear(im) @ LUMA).mean())  # noqa: E731
    up = compose(src, src, dark, ComposeSettings(keep_exposure=True, exposure_ev=1.0))
    assert abs(y(up) / y(out) - 2) < 0.03  # +1 EV: twice the light
    assert exposure_ratio(compose(src, src, dark), src) < 0.5  # off: the network's (dark) exposure


def test_defaults_follow_the_kind_of_target():
    assert settings_for(3500).keep_exposure and not settings_for(None).keep_exposure
    assert settings_for(3500).light_kelvin == 3500 and settings_for(None).light_kelvin is None
    assert settings_for(None, keep_exposure=True).keep_exposure
    with pytest.raises(RelightError, match="exposure"):
        settings_for(3500, exposure_ev=float("nan"))


def test_brightened_highlights_roll_off_with_their_gradation_and_hue():
    from core.engine.compose import HIGHLIGHT_KNEE, roll_off_highlights

    # a warm highlight ramp that a relight pushed up to 1.6x over range, beside a mid-grey
    ramp = np.linspace(0.2, 1.6, 400, dtype=np.float32)
    lin = np.stack([ramp, 0.8 * ramp, 0.6 * ramp], -1)[None].repeat(4, 0)
    out = roll_off_highlights(lin)
    assert out.max() <= 1.0 + 1e-6
    red = out[0, :, 0]
    # every step of the ramp still brighter than the last (the brightest 0.1 % meet at 1): no flat patch
    assert np.all(np.diff(red[: int(len(red) * 0.995)]) > 0)
    assert (red >= 1.0 - 1e-6).mean() < 0.01  # was a third of the ramp clipped at 1
    below = ramp <= HIGHLIGHT_KNEE
    np.testing.assert_allclose(out[0, below], lin[0, below], rtol=1e-6)  # below the knee: untouched
    np.testing.assert_allclose(out[0, :, 1] / out[0, :, 0], 0.8, rtol=1e-5)  # hue kept
    # an image already in range is left exactly as it is
    inside = lin / lin.max()
    assert roll_off_highlights(inside) is inside
