"""RevMBConv U-Net: Pendse et al., "Memory Efficient 3D U-Net with Reversible Mobile Inverted Bottlenecks for
Brain Tumor Segmentation" (BrainLes 2020, arXiv 2104.09648).

A U-Net whose every encoder and decoder level is a reversible sequence of additive couplings with mobile
inverted bottlenecks (:class:`~revnets.blocks.mbconv.MBConv`) as ``f`` and ``g``, joined by strided /
transposed convolutions with additive skips. ``form="plain"`` runs the same couplings under ordinary autograd
and ``form="checkpointed"`` checkpoints each coupling (interchangeable state dicts).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from revnets.blocks.mbconv import MBConv
from revnets.core.form import Form, resolve_form
from revnets.models.reversible_unet import ReversibleUNet, StridedConvTransition


class RevMBConvUNet(ReversibleUNet):
    """Reversible mobile-inverted-bottleneck U-Net.

    ``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits; every spatial size must be a
    multiple of ``2**(len(channels) - 1)`` (:attr:`size_divisor`), else a ValueError names the shape; pad
    first (``monai.transforms.DivisiblePad``).

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (4 for BraTS).
        out_channels: classes (softmax) or labels (sigmoid, e.g. BraTS TC/WT/ET).
        channels: width of each level, finest first, all even.
        blocks: MBConv couplings per level (int or one per level), in the encoder and again in the decoder.
        expansion: expansion ratio of the inverted bottlenecks.
        squeeze_excitation: squeeze-excitation inside every bottleneck.
        norm: ``"instance"``, ``"group"`` or ``"batch"``.
        dropout: dropout probability inside every bottleneck (used by :meth:`sample`).
        form: :class:`~revnets.core.Form` (default reversible).
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample`.
        reversible, checkpointing: the first release's keywords for ``form``; deprecated.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        blocks: int | Sequence[int] = 2,
        expansion: int = 4,
        squeeze_excitation: bool = True,
        norm: str = "group",
        dropout: float = 0.0,
        form: Form | str | None = None,
        output_activation: str = "softmax",
        reversible: bool | None = None,
        checkpointing: bool | None = None,
    ) -> None:
        super().__init__(
            spatial_dims,
            in_channels,
            out_channels,
            channels,
            blocks,
            residual_function=partial(
                MBConv,
                spatial_dims,
                expansion=expansion,
                norm=norm,
                squeeze_excitation=squeeze_excitation,
                dropout=dropout,
            ),
            transition=partial(StridedConvTransition, spatial_dims),
            form=resolve_form("RevMBConvUNet", form, reversible=reversible, checkpointing=checkpointing),
            output_activation=output_activation,
        )
