"""A stack of conv-norm-ReLU units (PHiSeg's building block) and its reversible form (RevPHiSeg's).

PHiSeg (Baumgartner et al., 2019) builds every encoder level, latent block and decoder step from ``depth``
3x3(x3) convolutions, each followed by a norm and a ReLU. RevPHiSeg (Gantenbein et al., 2020) replaces such a
stack by a 1x1 convolution that changes the channel count, followed by ``depth`` additive couplings whose
``f`` and ``g`` are the same conv-norm-ReLU units on half the channels. :class:`ConvStack` is both, switched
by ``couplings``; its ``form`` (:class:`~revnets.core.Form`) says how the couplings run in backward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from revnets.blocks.norm import norm_layer
from revnets.core import AdditiveCoupling, Form, ReversibleSequence

UPSAMPLE_MODES = {2: "bilinear", 3: "trilinear"}


class ConvUnit(nn.Sequential):
    """conv (``kernel_size``, same padding) -> norm -> ReLU: ``(B, in_channels, *S) -> (B, out_channels, *S)``."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, norm: str, kernel_size: int = 3) -> None:
        super().__init__(
            Conv[Conv.CONV, spatial_dims](in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
            norm_layer(norm, spatial_dims, out_channels),
            nn.ReLU(inplace=True),
        )


class ConvStack(nn.Module):
    """``depth`` conv-norm-ReLU units, or a 1x1 channel change plus ``depth`` reversible couplings.

    ``(B, in_channels, *S) -> (B, out_channels, *S)``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels.
        out_channels: output channels (even with ``couplings``).
        depth: number of units, or of couplings.
        norm: ``"batch"`` (as in PHiSeg), ``"instance"`` or ``"group"``.
        couplings: RevPHiSeg's architecture (1x1 channel change + additive couplings) instead of PHiSeg's.
        form: reversible (the couplings' activations reconstructed in backward; needs ``couplings``), plain
            (ordinary autograd over the same modules: the exact twin) or checkpointed (the whole stack
            recomputed in backward from its input, ``torch.utils.checkpoint``). Default: reversible with
            couplings, else plain.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int,
        norm: str = "batch",
        couplings: bool = False,
        form: Form | str | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"ConvStack depth must be >= 1, got {depth}.")
        self.form = Form.of(form) if form is not None else (Form.REVERSIBLE if couplings else Form.PLAIN)
        if self.form is Form.REVERSIBLE and not couplings:
            raise ValueError("ConvStack: a stack of conv units has no reversible form; pass couplings=True.")
        if couplings:
            if out_channels % 2:
                raise ValueError(f"A reversible ConvStack needs an even out_channels, got {out_channels}.")
            half = out_channels // 2

            def unit() -> ConvUnit:
                return ConvUnit(spatial_dims, half, half, norm)

            self.project: nn.Module = Conv[Conv.CONV, spatial_dims](in_channels, out_channels, 1)
            self.units: nn.Module = ReversibleSequence(
                *(AdditiveCoupling(unit(), unit()) for _ in range(depth)),
                form=Form.REVERSIBLE if self.form is Form.REVERSIBLE else Form.PLAIN,
            )
        else:
            self.project = nn.Identity()
            self.units = nn.Sequential(
                *(
                    ConvUnit(spatial_dims, in_channels if i == 0 else out_channels, out_channels, norm)
                    for i in range(depth)
                )
            )

        self.couplings = couplings
        self.spatial_dims = spatial_dims

    def _run(self, x: Tensor) -> Tensor:
        return self.units(self.project(x))

    def forward(self, x: Tensor) -> Tensor:
        if self.form is Form.CHECKPOINTED and torch.is_grad_enabled():
            return checkpoint(self._run, x, use_reentrant=False)
        return self._run(x)

    def forward_upsampled(self, x: Tensor) -> Tensor:
        """The stack on ``x`` upsampled by 2 (:func:`upsample`): ``(B, in_channels, *S) -> (B, out_channels, *2S)``.

        With couplings, a 1x1 projection that does not widen the channels runs before the upsampling: both are
        linear and the interpolation weights of every output voxel sum to 1, so the order changes only float
        rounding, while the input is never upsampled, stored for backward or given a gradient at the fine size
        (the projection stores the coarse input instead of its upsampled copy, ``2**spatial_dims`` times larger).
        """
        if self.couplings and self.form is not Form.CHECKPOINTED and not self._widens_channels():
            return self.units(upsample(self.project(x)))
        return self(upsample(x))

    def forward_concatenated(self, parts: Sequence[Tensor]) -> Tensor:
        """The stack on ``torch.cat(parts, dim=1)``, each ``(B, C_k, *S)`` with ``sum(C_k) == in_channels``.

        With couplings, the 1x1 projection runs on each part with its slice of the weights and sums the
        results, so the concatenation (a copy of every part, stored for backward) is never made.
        """
        if not (self.couplings and self.form is not Form.CHECKPOINTED):
            return self(torch.cat(list(parts), dim=1))
        conv = cast(nn.Conv2d, self.project)
        weights = torch.split(conv.weight, [part.shape[1] for part in parts], dim=1)
        projected = self._conv(parts[0], weights[0], conv.bias)
        for part, weight in zip(parts[1:], weights[1:]):
            projected = projected + self._conv(part, weight, None)
        return self.units(projected)

    def _widens_channels(self) -> bool:
        conv = cast(nn.Conv2d, self.project)
        return conv.out_channels > conv.in_channels

    def _conv(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return (F.conv2d if self.spatial_dims == 2 else F.conv3d)(x, weight, bias)


def upsample(x: Tensor, factor: int = 2) -> Tensor:
    """``(B, C, *S) -> (B, C, *S * factor)``, (bi/tri)linear, ``align_corners=False``."""
    return F.interpolate(x, scale_factor=factor, mode=UPSAMPLE_MODES[x.dim() - 2], align_corners=False)
