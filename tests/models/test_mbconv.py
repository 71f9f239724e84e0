"""The MBConv residual function: shapes, optional parts, and use as f / g of a coupling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from revnets.blocks.mbconv import MBConv, SqueezeExcitation
from revnets.core import AdditiveCoupling


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("expansion, squeeze_excitation, dropout", [(4, True, 0.1), (1, False, 0.0)])
def test_mbconv_keeps_spatial_size_and_maps_channels(
    spatial_dims: int, expansion: int, squeeze_excitation: bool, dropout: float
) -> None:
    block = MBConv(spatial_dims, 4, 6, expansion=expansion, squeeze_excitation=squeeze_excitation, dropout=dropout)
    x = torch.randn(2, 4, *[6] * spatial_dims)
    assert block(x).shape == (2, 6, *[6] * spatial_dims)
    assert any(isinstance(m, SqueezeExcitation) for m in block) == squeeze_excitation
    depthwise = [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d)) and m.groups > 1]
    assert len(depthwise) == 1 and depthwise[0].groups == 4 * expansion


def test_mbconv_coupling_is_invertible() -> None:
    coupling = AdditiveCoupling(MBConv(3, 4), MBConv(3, 4)).double().eval()
    x = torch.randn(1, 8, 6, 6, 6, dtype=torch.float64)
    assert torch.allclose(coupling.inverse(coupling(x)), x, atol=1e-12)


def test_expansion_must_be_positive() -> None:
    with pytest.raises(ValueError, match="expansion must be a positive integer"):
        MBConv(3, 4, expansion=0)
