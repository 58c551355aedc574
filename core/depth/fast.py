"""Depth Anything V2 made faster for inference, without changing its arithmetic beyond rounding.

``prepare_for_inference(model)`` rewrites a loaded ``DepthAnythingForDepthEstimation`` in place:

* each DINOv2 block's layer scales are folded into the linear layer before them
  (``(x W^T + b) * g == x (g W)^T + g b``), two elementwise passes fewer per block;
* the query, key and value projections of each block become one linear layer (one matrix product
  of three times the width instead of three), attention through ``scaled_dot_product_attention``;
* on the CPU, every linear layer of the backbone runs through oneDNN's linear kernel
  (``torch.ops.mkldnn._linear_pointwise``), with the MLP's GELU fused into the first layer: on an
  AMD EPYC with PyTorch's bundled MKL this is about 2x faster than ``nn.Linear`` at the backbone's
  shapes. Used only where the kernel exists and agrees with ``nn.Linear`` on a probe;
* on the CPU too, the DPT neck and head run in channels_last (oneDNN's convolutions without layout
  reorders), their 1x1 convolutions as oneDNN linear layers over the channels.

Each step checks the structure it rewrites (names, classes, activation) and leaves a block as it is
when anything differs (another transformers version), so the model stays correct either way.
``tests/test_depth_fast.py`` compares the rewritten model with the original in fp32.
"""

from __future__ import annotations

from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn


def _mkldnn_linear_ok() -> bool:
    """oneDNN's fused linear exists here and gives nn.Linear's result (with and without GELU)."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        g = torch.Generator().manual_seed(0)
        x = torch.randn(2, 5, 16, generator=g)
        w, b = torch.randn(24, 16, generator=g), torch.randn(24, generator=g)
        with torch.inference_mode():
            plain = op(x, w, b, "none", [], "")
            gelu = op(x, w, b, "gelu", [], "none")
            ref = F.linear(x, w, b)
        return bool(
            torch.allclose(plain, ref, rtol=1e-4, atol=1e-4) and torch.allclose(gelu, F.gelu(ref), rtol=1e-4, atol=1e-4)
        )
    except Exception:  # no oneDNN in this build, or the private op changed
        return False


class MkldnnLinear(nn.Module):
    """nn.Linear through oneDNN on the CPU (float32), optionally followed by the exact (erf) GELU."""

    def __init__(self, linear: nn.Linear, gelu: bool = False):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().contiguous(), requires_grad=False)
        bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features)
        self.bias = nn.Parameter(bias.detach().contiguous(), requires_grad=False)
        self.gelu = gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":  # moved or cast after preparing: the plain way
            y = F.linear(x, self.weight.to(x.dtype), self.bias.to(x.dtype))
            return F.gelu(y) if self.gelu else y
        if self.gelu:
            return cast(torch.Tensor, torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none"))
        return cast(torch.Tensor, torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], ""))


class Conv1x1AsLinear(nn.Module):
    """A 1x1 convolution (stride 1, no padding, one group) on a channels_last map as oneDNN's linear
    over the channels: PyTorch sends channels_last 1x1 convolutions to a slow GEMM path on the CPU."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.weight = nn.Parameter(conv.weight.detach()[:, :, 0, 0].contiguous(), requires_grad=False)
        bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
        self.bias = nn.Parameter(bias.detach().contiguous(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.float32 or x.device.type != "cpu":
            return F.conv2d(x, self.weight[:, :, None, None].to(x.dtype), self.bias.to(x.dtype))
        nhwc = x.permute(0, 2, 3, 1)  # a view when x is channels_last
        out = cast(torch.Tensor, torch.ops.mkldnn._linear_pointwise(nhwc, self.weight, self.bias, "none", [], ""))
        return out.permute(0, 3, 1, 2)  # channels_last (N, C, H, W)


def _is_1x1(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
    )


def _channels_last_head(model: nn.Module) -> int:
    """The neck and head (convolutions) in channels_last, their 1x1 convolutions through oneDNN's linear."""
    n = 0
    for part in (getattr(model, "neck", None), getattr(model, "head", None)):
        if part is None:
            continue
        part.to(memory_format=torch.channels_last)
        for parent in list(part.modules()):
            for name, child in list(parent.named_children()):
                if _is_1x1(child):
                    setattr(parent, name, Conv1x1AsLinear(child))
                    n += 1
    return n


class FusedAttention(nn.Module):
    """DINOv2 self-attention with the query, key and value projections in one linear layer."""

    def __init__(self, att: Any):
        super().__init__()
        q, k, v = att.q_proj, att.k_proj, att.v_proj
        self.heads, self.head_dim = int(att.num_attention_heads), int(att.head_dim)
        self.scaling = float(att.scaling)
        self.qkv: nn.Module = nn.Linear(q.in_features, q.out_features * 3, bias=True).to(
            q.weight.device, q.weight.dtype
        )
        with torch.no_grad():
            self.qkv.weight.copy_(torch.cat([q.weight, k.weight, v.weight]))
            zeros = torch.zeros(q.out_features, device=q.weight.device, dtype=q.weight.dtype)
            self.qkv.bias.copy_(torch.cat([p.bias if p.bias is not None else zeros for p in (q, k, v)]))
        self.o_proj: nn.Module = att.o_proj

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any
    ) -> tuple[torch.Tensor, None]:
        b, n, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask, scale=self.scaling)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, -1)), None


class FastMLP(nn.Module):
    """DINOv2's MLP (linear, exact GELU, linear) with the GELU inside the first layer where it can be."""

    def __init__(self, activation: nn.Module, fc1: nn.Module, fc2: nn.Module, fused_gelu: bool):
        super().__init__()
        self.fc1, self.fc2 = fc1, fc2
        self.activation_fn: nn.Module = nn.Identity() if fused_gelu else activation

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return cast(torch.Tensor, self.fc2(self.activation_fn(self.fc1(hidden_states))))


def _activation(mlp: Any) -> nn.Module | None:
    """The MLP's activation: transformers names it `activation_fn` in some releases, `activation` in others."""
    for name in ("activation_fn", "activation"):
        act = getattr(mlp, name, None)
        if isinstance(act, nn.Module):
            return act
    return None


def _exact_gelu(act: nn.Module) -> bool:
    from transformers.activations import GELUActivation

    return type(act) is GELUActivation and getattr(act, "act", None) is F.gelu


def _fold_scale(linear: Any, scale: Any) -> bool:
    gamma = getattr(scale, "lambda1", None)
    if (
        not isinstance(linear, nn.Linear)
        or not isinstance(gamma, torch.Tensor)
        or gamma.shape != (linear.out_features,)
    ):
        return False
    with torch.no_grad():
        linear.weight.mul_(gamma[:, None].to(linear.weight.dtype))
        if getattr(linear, "bias", None) is None:
            linear.bias = nn.Parameter(torch.zeros_like(linear.weight[:, 0]))
        linear.bias.mul_(gamma.to(linear.bias.dtype))
    return True


def prepare_for_inference(
    model: nn.Module, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> dict[str, int]:
    """Rewrite a loaded Depth Anything model in place for inference on `device` in `dtype` (where and
    how it is now when None; best called on the fp32 model before it is cast, so that folding rounds
    once); -> how many blocks each step changed (for logs and tests)."""
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    dtype = dtype or next(model.parameters()).dtype
    mkldnn = dev.type == "cpu" and dtype == torch.float32 and _mkldnn_linear_ok()
    done = {"blocks": 0, "layer_scale": 0, "qkv": 0, "mkldnn_linear": 0, "conv1x1": 0}
    layers: Any = getattr(getattr(getattr(model, "backbone", None), "encoder", None), "layer", None) or []
    for layer in layers:
        done["blocks"] += 1
        att: Any = getattr(layer, "attention", None)
        mlp: Any = getattr(layer, "mlp", None)
        plain = all(isinstance(getattr(att, n, None), nn.Linear) for n in ("q_proj", "k_proj", "v_proj", "o_proj"))
        plain = plain and all(
            isinstance(getattr(att, n, None), (int, float)) for n in ("num_attention_heads", "head_dim", "scaling")
        )
        act = _activation(mlp)
        mlp_ok = (
            type(mlp).__name__ == "Dinov2MLP" and isinstance(getattr(mlp, "fc1", None), nn.Linear) and act is not None
        )
        # layer scales into the layers before them
        if plain and _fold_scale(att.o_proj, layer.layer_scale1):
            layer.layer_scale1 = nn.Identity()
            done["layer_scale"] += 1
        if mlp_ok and _fold_scale(mlp.fc2, layer.layer_scale2):
            layer.layer_scale2 = nn.Identity()
        if plain:
            att = FusedAttention(att)
            layer.attention = att
            done["qkv"] += 1
        if mkldnn:
            if isinstance(att, FusedAttention):
                att.qkv, att.o_proj = MkldnnLinear(cast(nn.Linear, att.qkv)), MkldnnLinear(cast(nn.Linear, att.o_proj))
            if mlp_ok and isinstance(mlp.fc2, nn.Linear):
                fuse = _exact_gelu(cast(nn.Module, act))
                layer.mlp = FastMLP(cast(nn.Module, act), MkldnnLinear(mlp.fc1, gelu=fuse), MkldnnLinear(mlp.fc2), fuse)
                done["mkldnn_linear"] += 1
    if mkldnn:
        done["conv1x1"] = _channels_last_head(model)
    return done
