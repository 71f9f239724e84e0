"""A stack of conv-norm-ReLU units (PHiSeg's building block) and its reversible form (RevPHiSeg's).

PHiSeg (Baumgartner et al., 2019) builds every encoder level, latent block and decoder step from ``depth``
3x3(x3) convolutions, each followed by a norm and a ReLU. RevPHiSeg (Gantenbein et al., 2020) replaces such a
stack by a 1x1 convolution that changes the channel count, followed by ``depth`` additive couplings whose
``f`` and ``g`` are the same conv-norm-ReLU units on half the channels. :class:`ConvStack` is both, switched
by ``couplings``; its ``form`` (:class:`~revnets.core.Form`) says how the couplings run in backward.
"""

from __future__ import annotations

import torch
from monai.networks.layers.factories import Conv
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from revnets.blocks.norm import norm_layer
from revnets.core import AdditiveCoupling, Form, ReversibleSequence


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
                *(ConvUnit(spatial_dims, in_channels if i == 0 else out_channels, out_channels, norm) for i in range(depth))
            )

    def _run(self, x: Tensor) -> Tensor:
        return self.units(self.project(x))

    def forward(self, x: Tensor) -> Tensor:
        if self.form is Form.CHECKPOINTED and torch.is_grad_enabled():
            return checkpoint(self._run, x, use_reentrant=False)
        return self._run(x)
