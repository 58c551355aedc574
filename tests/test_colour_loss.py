"""The colour term: cast and the objects' own colours, each seen separately."""

import torch

from core.train.losses import colour_loss


def _scene() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    albedo = torch.rand(1, 3, 16, 16, generator=g) * 0.8 + 0.1
    return albedo


def test_identical_images_cost_nothing():
    x = _scene()
    assert colour_loss(x, x, pool=1).item() < 1e-6


def test_brightness_alone_costs_nothing():
    x = _scene()
    assert colour_loss(0.5 * x, x, pool=1, floor=0).item() < 1e-5


def test_a_cast_costs_only_the_cast():
    x = _scene()
    warm = x * torch.tensor([1.2, 1.0, 0.7]).view(1, 3, 1, 1)
    cost = colour_loss(warm, x, pool=1, floor=0).item()
    # cast part by hand: mean chromaticity of both images, channel by channel
    cp = warm / warm.mean(1, keepdim=True)
    ct = x / x.mean(1, keepdim=True)
    cast = (cp.mean((2, 3)) - ct.mean((2, 3))).abs().mean().item()
    spatial = (cp / cp.mean((2, 3), keepdim=True) - ct / ct.mean((2, 3), keepdim=True)).abs().mean().item()
    assert abs(cost - (cast + spatial)) < 1e-6
    assert cast > 0.05 and spatial < 0.5 * cast  # a cast is mostly the cast


def test_a_greyed_image_with_the_wrong_cast_is_pushed_towards_the_objects_colours():
    # the failure the term exists for: a grey picture under the wrong light colour. A plain
    # chromaticity L1 only moves the cast (every pixel's gradient has the same sign); this one also
    # pulls each pixel towards its own colour.
    target = _scene()
    grey = target.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    pred = (grey * torch.tensor([0.8, 1.0, 1.3]).view(1, 3, 1, 1)).clone().requires_grad_(True)
    colour_loss(pred, target, pool=1).backward()
    step = -pred.grad
    # following the gradient raises the red of reddish pixels more than of the others
    red_excess = target[0, 0] - target[0].mean(0)
    reddest, bluest = red_excess.flatten().argsort()[[-1, 0]]
    r = step[0, 0].flatten()
    assert r[reddest] > r[bluest]


def test_near_black_pixels_do_not_dominate():
    x = _scene()
    y = x.clone()
    y[..., :4, :4] = torch.rand(1, 3, 4, 4) * 1e-3  # noise in a black corner
    z = x.clone()
    z[..., :4, :4] = torch.rand(1, 3, 4, 4) * 1e-3
    assert colour_loss(y, z, pool=1).item() < 0.05
