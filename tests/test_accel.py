"""The fast path's model transforms keep the network's arithmetic: BatchNorm folding, the zero-padded
full-resolution head, the zero-padded Res2Net splits and the space-to-depth output layer give the
eager model's output (exactly, up to float64 rounding)."""

import pytest
import torch
from torch import nn

from conftest import randomize
from core.engine.accel import (
    RESHAPE_STEPS,
    SpaceToDepthConv,
    fold_batchnorm,
    pad_head_channels,
    pad_res2net_widths,
    reshaped_copy,
)
from core.model import create_model


@pytest.mark.parametrize("preset", ["s3net-lite", "s3net"])
@pytest.mark.slow
def test_folded_and_padded_models_give_the_eager_output(preset):
    model = randomize(create_model(preset), 3).eval()
    x = torch.rand(1, 8, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model.forward_packed(x)
        folded = fold_batchnorm(model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        out_folded = folded.forward_packed(x)
        padded = pad_head_channels(fold_batchnorm(model))
        out_padded = padded.forward_packed(x)
    torch.testing.assert_close(out_folded, ref, atol=2e-3, rtol=0)  # float rounding through 30+ folded layers
    torch.testing.assert_close(out_padded, out_folded, atol=1e-5, rtol=0)
    assert padded.head_padding > 0
    # every full-resolution convolution now has channel counts tensor cores take as they are
    e = padded.enhancer
    for conv in (e.refine1, e.refine2, e.refine3):
        assert conv.in_channels % 8 == 0 and conv.out_channels % 8 == 0, conv
    assert padded.tail[1].in_channels % 8 == 0
    assert model.head_padding == 0  # the original model is untouched


@pytest.mark.slow
def test_padding_a_half_precision_channels_last_copy_as_the_compiled_path_does():
    import copy

    folded = (
        fold_batchnorm(randomize(create_model("s3net-lite"), 4).eval()).half().to(memory_format=torch.channels_last)
    )
    padded = pad_head_channels(copy.deepcopy(folded)).to(memory_format=torch.channels_last)
    assert padded.enhancer.refine1.weight.dtype == torch.float16 and folded.head_padding == 0
    x = torch.rand(1, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = folded.float().forward_packed(x)
        b = padded.float().forward_packed(x)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_the_compiled_path_pads_its_own_copy_and_the_cuda_graph_keeps_the_plain_head():
    from core.engine.accel import CompiledS3Net, GraphedS3Net

    graphed = GraphedS3Net(randomize(create_model("s3net-lite"), 5).eval(), torch.device("cpu"))
    compiled = CompiledS3Net(graphed)  # compiling itself waits for the first CUDA call
    assert graphed.model.head_padding == 0 and compiled.model.head_padding > 0
    assert isinstance(compiled.model.tail[0], SpaceToDepthConv) and isinstance(graphed.model.tail[1], nn.Conv2d)
    assert {b.width % 8 for b in compiled.model.encoder.modules() if hasattr(b, "convs")} == {0}
    assert compiled.model.tail[0].conv.weight.dtype == torch.float16
    assert compiled.model.tail[0].conv.weight.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("preset", ["s3net-lite", "s3net", "s3net-lite-colour"])
@pytest.mark.slow
def test_every_reshaping_step_keeps_the_output_in_float64(preset):
    model = randomize(create_model(preset), 6).eval().double()
    folded = fold_batchnorm(model)
    x = torch.rand(1, 8, 64, 96, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ref = folded.forward_packed(x)
        for steps, multiple in [((s,), 8) for s in RESHAPE_STEPS] + [(RESHAPE_STEPS, 8), (RESHAPE_STEPS, 32)]:
            out = reshaped_copy(folded, steps, multiple).forward_packed(x)
            torch.testing.assert_close(out, ref, atol=1e-9, rtol=0, msg=f"{steps} x{multiple}")
    assert folded.enhancer.refine1.in_channels % 8 != 0  # the folded model itself is untouched


@pytest.mark.slow
def test_padded_splits_have_tensor_core_widths_and_keep_each_split_in_place():
    folded = fold_batchnorm(randomize(create_model("s3net"), 7).eval())
    widths = sorted({b.width for b in folded.encoder.modules() if hasattr(b, "convs")})
    assert widths == [26, 52, 104]
    padded = pad_res2net_widths(fold_batchnorm(randomize(create_model("s3net"), 7).eval()))
    blocks = [b for b in padded.encoder.modules() if hasattr(b, "convs")]
    assert sorted({b.width for b in blocks}) == [32, 56, 104]
    b = padded.encoder.layer1[1]
    # conv1's output channels 26..31 (the first split's padding) are zero filters with zero bias
    assert b.conv1.weight[26:32].abs().sum() == 0 and b.conv1.bias[26:32].abs().sum() == 0
    assert b.conv1.weight[32:58].abs().sum() > 0  # the second split starts at 32
    assert b.conv3.weight[:, 26:32].abs().sum() == 0
    with pytest.raises(ValueError, match="fold"):
        pad_res2net_widths(create_model("s3net-lite"))


def test_space_to_depth_convolution_is_the_same_convolution_on_2x2_blocks():
    torch.manual_seed(0)
    tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(5, 3, 7))
    s2d = SpaceToDepthConv(tail[0], tail[1])
    assert (s2d.conv.in_channels, s2d.conv.out_channels, s2d.conv.kernel_size) == (20, 12, (4, 4))
    # each of the 3 x 4 output phases holds all 7 x 7 x 5 taps once: 49 x 5 nonzero weights per row
    assert ((s2d.conv.weight != 0).sum(dim=(1, 2, 3)) == 49 * 5).all()
    same = nn.Conv2d(6, 4, 3, padding=1)
    s2d_same = SpaceToDepthConv.same(same)
    assert s2d_same.conv.kernel_size == (2, 2)  # a 3x3 "same" convolution needs only 2x2 blocks
    assert ((s2d_same.conv.weight != 0).sum(dim=(1, 2, 3)) == 9 * 6).all()
    x = torch.rand(2, 5, 18, 26)
    torch.testing.assert_close(s2d(x), tail(x), atol=1e-5, rtol=0)
    x = torch.rand(2, 6, 18, 26)
    torch.testing.assert_close(s2d_same(x), same(x), atol=1e-5, rtol=0)


def test_unknown_reshaping_step_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        reshaped_copy(fold_batchnorm(create_model("s3net-lite").eval()), ("pad_everything",))


@pytest.mark.slow
def test_the_background_compile_has_a_handle_that_joins_and_cancels_it():
    from core.engine.accel import CompiledS3Net, GraphedS3Net

    compiled = CompiledS3Net(GraphedS3Net(randomize(create_model("s3net-lite"), 5).eval(), torch.device("cpu")))
    shape = (1, 8, 64, 64)
    compiled.prepare(shape)  # on the CPU the build fails at once: the graphed path stays, the error is kept
    assert compiled.background.join(60) and compiled.background.alive == 0
    assert not compiled.pending and not compiled.ready and compiled.error
    compiled.background.cancel()  # closing: no new compile starts
    compiled.prepare((1, 8, 32, 32))
    assert compiled.background.alive == 0 and not compiled.pending


@pytest.mark.gpu
def test_the_compiled_path_on_the_gpu_gives_the_eager_fp32_output():
    """The fast path as the engine builds it (reshaped copy, inductor, CUDA graph) against the plain
    network in fp32, on a GPU."""
    from core.engine.accel import CompiledS3Net, GraphedS3Net

    dev = torch.device("cuda")
    model = randomize(create_model("s3net-lite-colour"), 8).eval().to(dev)
    x = torch.rand(1, 8, 128, 192, device=dev, generator=torch.Generator(dev).manual_seed(3))
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        ref = model.forward_packed(x)
    compiled = CompiledS3Net(GraphedS3Net(model, dev))
    compiled.prepare(tuple(x.shape), wait=True)
    assert compiled.error is None and tuple(x.shape) in compiled.ready, compiled.error
    out = compiled(x.half())
    assert out.dtype == torch.float32 and out.shape == ref.shape
    err = (out - ref).abs()
    print("compiled vs eager fp32: max", err.max().item(), "mean", err.mean().item())
    # fp16 weights and activations through ~40 layers of random weights; measured on an H200: max 0.17, mean 0.0043
    assert err.mean() < 1e-2 and err.max() < 0.5


def test_a_convolution_as_one_matrix_product_is_the_same_convolution():
    from core.engine.accel import GemmConv

    torch.manual_seed(1)
    x = torch.rand(2, 6, 9, 13, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    for conv in (nn.Conv2d(6, 5, 1), nn.Conv2d(6, 4, 3, padding=1, bias=False), nn.Conv2d(6, 3, 5, padding=2)):
        conv = conv.double()
        g = GemmConv(conv)
        assert g.weight.shape == (conv.out_channels, conv.in_channels * conv.kernel_size[0] ** 2)
        torch.testing.assert_close(g(x), conv(x), atol=1e-12, rtol=0)
    for bad in (
        nn.Conv2d(6, 5, 3, stride=2, padding=1),
        nn.Conv2d(6, 5, 3),
        nn.Conv2d(6, 6, 3, padding=1, groups=2),
        nn.Conv2d(6, 5, 2, padding=1),  # 10x14 out of 9x13: it gave a 9x13 map of other numbers
    ):
        with pytest.raises(ValueError, match="stride-1 'same'"):
            GemmConv(bad)
