"""Depth estimation's fast path (torch pre/post-processing on the device, the rewritten network, CUDA
graphs) against the first release's path: same depth in the same convention."""

import copy

import numpy as np
import pytest
import torch

from core.depth.estimation import (
    FAR,
    NEAR,
    DepthAnything,
    inverse_to_network_depth,
    inverse_to_network_depth_torch,
    preprocess_reference,
    preprocess_torch,
)
from core.depth.fast import prepare_for_inference

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ODD_SIZES = [
    ((37, 53), (42, 56)),
    ((101, 67), (98, 70)),
    ((518, 389), (518, 392)),
    ((61, 61), (28, 28)),
    ((9, 300), (14, 434)),
]


@pytest.mark.parametrize("shape,size", ODD_SIZES)
def test_torch_preprocessing_matches_the_opencv_one(shape, size):
    # values a little outside [0, 1] too: the clip after the resize must happen in both
    img = np.random.default_rng(sum(shape)).uniform(-0.05, 1.05, (*shape, 3)).astype(np.float32)
    ref = preprocess_reference(img, size, MEAN, STD)
    got = preprocess_torch(torch.from_numpy(img), size, torch.tensor(MEAN), torch.tensor(STD))
    assert got.shape == (1, 3, *size) and got.dtype == torch.float32
    # bicubic with a = -0.75 on pixel centres and repeated edges in both; OpenCV rounds its source
    # positions and cubic weights in float32 its own way (an odd column can differ by 1e-4 after
    # normalising): at most 5e-4 here, 1.2e-4 of the intensity (1/35 of an 8-bit step), ~1e-6 on average
    np.testing.assert_allclose(got[0].numpy(), ref, rtol=0, atol=5e-4)
    assert np.abs(got[0].numpy() - ref).mean() < 1e-5


def test_torch_preprocessing_at_the_networks_size_is_only_a_normalisation():
    img = np.random.default_rng(3).random((56, 70, 3), dtype=np.float32)
    got = preprocess_torch(torch.from_numpy(img), (56, 70), torch.tensor(MEAN), torch.tensor(STD))
    want = (img - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    np.testing.assert_allclose(got[0].permute(1, 2, 0).numpy(), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_torch_depth_conversion_matches_the_numpy_one(seed):
    rng = np.random.default_rng(seed)
    inv = (rng.random((37 + seed, 91)) ** 3 * rng.uniform(0.1, 50) + rng.uniform(-5, 5)).astype(np.float32)
    got = inverse_to_network_depth_torch(torch.from_numpy(inv)).numpy()
    want = inverse_to_network_depth(inv)
    assert got.dtype == np.float32 and got.shape == inv.shape
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=0)
    assert got.min() >= NEAR - 1e-6 and got.max() <= FAR + 1e-6


@pytest.mark.parametrize("by_sort", [False, True])  # selection (the CPU's way), one sort (a GPU's way)
@pytest.mark.parametrize("n", [1, 2, 3, 100, 101, 12345])
def test_percentiles_are_numpys(by_sort, n):
    from core.depth.estimation import _percentiles

    v = np.random.default_rng(n).normal(size=n).astype(np.float32)
    got = [float(t) for t in _percentiles(torch.from_numpy(v), (1.0, 50.0, 99.0), by_sort=by_sort)]
    np.testing.assert_allclose(got, np.percentile(v.astype(np.float64), [1.0, 50.0, 99.0]), rtol=1e-6, atol=1e-6)


def test_torch_depth_conversion_flat_and_non_finite_maps():
    np.testing.assert_allclose(inverse_to_network_depth_torch(torch.full((5, 7), 3.0)).numpy(), (NEAR + FAR) / 2)
    inv = np.linspace(0, 1, 400, dtype=np.float32).reshape(20, 20)
    inv[0, :3] = np.nan
    got = inverse_to_network_depth_torch(torch.from_numpy(inv)).numpy()
    assert np.isfinite(got).all()
    assert got[0, 0] == pytest.approx(FAR)  # NaN: the smallest inverse depth, the farthest point
    inv[1, 0], inv[1, 1] = np.inf, -np.inf  # +inf nearest, -inf farthest
    got = inverse_to_network_depth_torch(torch.from_numpy(inv)).numpy()
    assert got[1, 0] == pytest.approx(NEAR) and got[1, 1] == pytest.approx(FAR)
    nothing = inverse_to_network_depth_torch(torch.full((3, 3), float("nan"))).numpy()
    np.testing.assert_allclose(nothing, (NEAR + FAR) / 2)


def test_rewritten_network_gives_the_plain_networks_output(tiny_depth_model):
    from core.depth.network import build_model, check_model_folder

    model = build_model(check_model_folder(tiny_depth_model))
    for layer in model.backbone.encoder.layer:  # layer scales other than the initial 1.0, as trained models have
        layer.layer_scale1.lambda1.data.uniform_(0.1, 1.0)
        layer.layer_scale2.lambda1.data.uniform_(0.1, 1.0)
    fast = copy.deepcopy(model)
    done = prepare_for_inference(fast, "cpu")
    assert done["blocks"] == 4 and done["qkv"] == 4 and done["layer_scale"] == 4
    x = torch.randn(1, 3, 56, 84, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = model(pixel_values=x).predicted_depth
        got = fast(pixel_values=x).predicted_depth
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))


@pytest.mark.parametrize("shape", [(70, 90), (57, 133), (56, 56), (31, 17)])
def test_fast_estimate_matches_the_first_release_path(tiny_depth_model, shape):
    img = np.random.default_rng(shape[0]).random((*shape, 3), dtype=np.float32)
    old = DepthAnything(tiny_depth_model, "cpu", fast=False).estimate(img)
    new = DepthAnything(tiny_depth_model, "cpu").estimate(img)
    assert new.shape == shape == old.shape and new.data.dtype == np.float32
    assert new.scaling == old.scaling and new.origin == old.origin
    np.testing.assert_allclose(new.data, old.data, rtol=0, atol=2e-4)
    assert new.data.min() >= NEAR - 1e-6 and new.data.max() <= FAR + 1e-6


def test_fast_estimate_cache_tells_shapes_apart(tiny_depth_model):
    est = DepthAnything(tiny_depth_model, "cpu")
    img = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    a = est.estimate(img)
    assert est.estimate(img.copy()) is a  # the same pixels: from memory
    b = est.estimate(img.reshape(30, 20, 3))  # the same bytes, another image
    assert b.shape == (30, 20) and b is not a


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_fast_path_and_graphs_match_the_cpu(tiny_depth_model, precision):
    rng = np.random.default_rng(1)
    cpu = DepthAnything(tiny_depth_model, "cpu")
    gpu = DepthAnything(tiny_depth_model, "cuda", precision)
    for shape in [(70, 90), (70, 90), (70, 90), (45, 61)]:  # the second call of a shape captures its graph
        img = rng.random((*shape, 3), dtype=np.float32)
        want, got = cpu.estimate(img).data, gpu.estimate(img).data
        assert got.shape == shape
        if precision == "fp32":
            assert np.median(np.abs(got - want) / want) < 1e-4
        else:
            # This tiny random network is ill-conditioned in half precision (H200: median error 5.8 % of
            # the depth range); the 1 % claim is measured on the real architecture by bench/depth.py
            # (p99 0.56 %, docs/results/depth-h200.json). Here: the fp16 path runs, captures and agrees.
            span = float(want.max() - want.min())
            assert np.median(np.abs(got - want)) / span < 0.1, np.median(np.abs(got - want)) / span
    assert gpu._graphs and not gpu._graph_failed


def test_the_mlp_activation_is_found_under_either_name():
    from torch import nn

    from core.depth.fast import _activation

    gelu = nn.GELU()
    older, newer = nn.Module(), nn.Module()
    older.activation_fn = gelu
    newer.activation = gelu
    assert _activation(older) is gelu and _activation(newer) is gelu
    assert _activation(nn.Module()) is None
