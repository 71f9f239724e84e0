"""Invertible down- and upsampling by a factor 2 per spatial axis.

Downsampling moves each 2x2(x2) patch of a channel into ``2**spatial_dims`` channels (squeeze, pixel
unshuffle); upsampling is its exact inverse (pixel shuffle). The learnable variant (as in iUNets) mixes
the ``channels * 2**spatial_dims`` values of a patch by an orthogonal matrix ``exp(A - A^T)``: a strided
convolution whose transpose is its inverse. It starts as the fixed squeeze (``A = 0``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from revnets.core.invertible import InvertibleModule

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def squeeze(x: Tensor, spatial_dims: int) -> Tensor:
    """``(B, C, *spatial) -> (B, C * 2**spatial_dims, *spatial / 2)``, channel ``c * 2**d + patch offset``."""
    b, c, *size = x.shape
    split = [v for s in size for v in (s // 2, 2)]
    x = x.reshape(b, c, *split)
    order = [0, 1, *range(3, 2 + 2 * spatial_dims, 2), *range(2, 2 + 2 * spatial_dims, 2)]
    return x.permute(order).reshape(b, c * 2**spatial_dims, *(s // 2 for s in size))


def unsqueeze(y: Tensor, spatial_dims: int) -> Tensor:
    """Inverse of :func:`squeeze`: ``(B, C * 2**d, *spatial) -> (B, C, *spatial * 2)``."""
    b, ck, *size = y.shape
    c = ck // 2**spatial_dims
    y = y.reshape(b, c, *([2] * spatial_dims), *size)
    order = [0, 1, *(v for i in range(spatial_dims) for v in (2 + spatial_dims + i, 2 + i))]
    return y.permute(order).reshape(b, c, *(s * 2 for s in size))


class _OrthogonalResampling(InvertibleModule):
    """Shared parametrisation of :class:`InvertibleDownsample` and :class:`InvertibleUpsample`.

    Args:
        channels: channels on the high-resolution side.
        spatial_dims: 1, 2 or 3.
        learnable: mix each patch by a learnable orthogonal matrix instead of the fixed squeeze.
    """

    def __init__(self, channels: int, spatial_dims: int, learnable: bool = False) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}.")
        if channels < 1:
            raise ValueError(f"channels must be positive, got {channels}.")
        self.channels = channels
        self.spatial_dims = spatial_dims
        self.learnable = learnable
        n = channels * 2**spatial_dims
        self.skew = nn.Parameter(torch.zeros(n, n)) if learnable else None

    def _kernel(self) -> Tensor:
        """The orthogonal patch transform as a convolution kernel ``(C * 2**d, C, 2, ..., 2)``."""
        assert self.skew is not None, "only the learnable resampling has a kernel"
        matrix = torch.linalg.matrix_exp(self.skew - self.skew.T)
        return matrix.reshape(-1, self.channels, *([2] * self.spatial_dims))

    def _down(self, x: Tensor) -> Tensor:
        size = tuple(x.shape[2:])
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.channels or any(s % 2 for s in size):
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.channels}, *spatial) with {self.spatial_dims} even "
                f"spatial sizes, got {tuple(x.shape)}."
            )
        if self.skew is None:
            return squeeze(x, self.spatial_dims)
        return _CONV[self.spatial_dims](x, self._kernel().to(x.dtype), stride=2)

    def _up(self, y: Tensor) -> Tensor:
        low = self.channels * 2**self.spatial_dims
        if y.dim() != self.spatial_dims + 2 or y.shape[1] != low:
            raise ValueError(f"{type(self).__name__} expects (B, {low}, *spatial), got {tuple(y.shape)}.")
        if self.skew is None:
            return unsqueeze(y, self.spatial_dims)
        return _CONV_TRANSPOSE[self.spatial_dims](y, self._kernel().to(y.dtype), stride=2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, spatial_dims={self.spatial_dims}, learnable={self.learnable}"


class InvertibleDownsample(_OrthogonalResampling):
    """``(B, C, *spatial) -> (B, C * 2**spatial_dims, *spatial / 2)``, exactly invertible.

    Args:
        channels: input channels ``C``.
        spatial_dims: 1, 2 or 3.
        learnable: learnable orthogonal mixing of each patch (iUNets); False is the fixed squeeze.
    """

    def forward(self, x: Tensor) -> Tensor:
        return self._down(x)

    def inverse(self, y: Tensor) -> Tensor:
        return self._up(y)


class InvertibleUpsample(_OrthogonalResampling):
    """``(B, C, *spatial) -> (B, C / 2**spatial_dims, *spatial * 2)``, exactly invertible.

    Args:
        channels: input channels ``C``, a multiple of ``2**spatial_dims``.
        spatial_dims: 1, 2 or 3.
        learnable: learnable orthogonal mixing of each patch (iUNets); False is the fixed pixel shuffle.
    """

    def __init__(self, channels: int, spatial_dims: int, learnable: bool = False) -> None:
        factor = 2 ** spatial_dims if spatial_dims in _CONV else 1
        if channels % factor:
            raise ValueError(f"InvertibleUpsample needs channels divisible by {factor}, got {channels}.")
        super().__init__(channels // factor, spatial_dims, learnable)

    def forward(self, x: Tensor) -> Tensor:
        return self._up(x)

    def inverse(self, y: Tensor) -> Tensor:
        return self._down(y)
