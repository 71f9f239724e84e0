"""Small coupling stacks with conv / norm / activation inside f and g, shared by the engine tests."""

from __future__ import annotations

import torch
from torch import nn

from revnets.core import AdditiveCoupling, AffineCoupling, Form, ReversibleSequence

CONV = {2: nn.Conv2d, 3: nn.Conv3d}
BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
DROPOUT = {2: nn.Dropout2d, 3: nn.Dropout3d}


def residual_function(
    channels: int, spatial_dims: int = 3, norm: str = "group", dropout: float = 0.0, out_factor: int = 1
) -> nn.Sequential:
    """conv -> norm -> LeakyReLU (-> dropout) -> conv: ``(B, c, *spatial) -> (B, c * out_factor, *spatial)``."""
    norm_layer = {
        "group": lambda: nn.GroupNorm(2, channels),
        "batch": lambda: BATCH_NORM[spatial_dims](channels),
        "none": nn.Identity,
    }[norm]()
    conv = CONV[spatial_dims](channels, channels, 3, padding=1, bias=norm == "none")
    layers: list[nn.Module] = [conv, norm_layer, nn.LeakyReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(CONV[spatial_dims](channels, channels * out_factor, 3, padding=1))
    return nn.Sequential(*layers)


def coupling_stack(
    depth: int,
    channels: int,
    spatial_dims: int = 3,
    coupling: str = "additive",
    form: Form = Form.REVERSIBLE,
    **kwargs,
) -> ReversibleSequence:
    cls, factor = {"additive": (AdditiveCoupling, 1), "affine": (AffineCoupling, 2)}[coupling]
    half = channels // 2
    blocks = [
        cls(
            residual_function(half, spatial_dims, out_factor=factor, **kwargs),
            residual_function(half, spatial_dims, out_factor=factor, **kwargs),
        )
        for _ in range(depth)
    ]
    return ReversibleSequence(*blocks, form=form)


def gradients(model: nn.Module, x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Output and the gradients of a fixed random projection of it w.r.t. the input and every parameter."""
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    out = model(x)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    (out * weight).sum().backward()
    return out.detach(), [x.grad, *(p.grad for p in model.parameters())]


def relative_error(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Largest over the tensors of ``|a - b| / |b|`` (max norms)."""
    return max(((u - v).abs().max() / v.abs().max().clamp_min(1e-30)).item() for u, v in zip(a, b))
