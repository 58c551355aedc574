"""The fast path's model transforms keep the network's arithmetic: BatchNorm folding and the
zero-padded full-resolution head give the eager model's output."""
import pytest
import torch
from conftest import randomize
from torch import nn

from core.accel import fold_batchnorm, pad_head_channels
from core.model import create_model


@pytest.mark.parametrize("preset", ["s3net-lite", "s3net"])
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


def test_padding_a_half_precision_channels_last_copy_as_the_compiled_path_does():
    import copy

    folded = fold_batchnorm(randomize(create_model("s3net-lite"), 4).eval()).half().to(memory_format=torch.channels_last)
    padded = pad_head_channels(copy.deepcopy(folded)).to(memory_format=torch.channels_last)
    assert padded.enhancer.refine1.weight.dtype == torch.float16 and folded.head_padding == 0
    x = torch.rand(1, 8, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = folded.float().forward_packed(x)
        b = padded.float().forward_packed(x)
    torch.testing.assert_close(b, a, atol=1e-5, rtol=0)


def test_the_compiled_path_pads_its_own_copy_and_the_cuda_graph_keeps_the_plain_head():
    from core.accel import CompiledS3Net, GraphedS3Net

    graphed = GraphedS3Net(randomize(create_model("s3net-lite"), 5).eval(), torch.device("cpu"))
    compiled = CompiledS3Net(graphed)  # compiling itself waits for the first CUDA call
    assert graphed.model.head_padding == 0 and compiled.model.head_padding > 0
    assert compiled.model.enhancer.refine1.weight.dtype == torch.float16
    assert compiled.model.enhancer.refine1.weight.is_contiguous(memory_format=torch.channels_last)
