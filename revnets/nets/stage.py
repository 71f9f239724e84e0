"""A stage of a twin: MONAI's ordinary layers that change shape, then reversible couplings that keep it.

In the reversible form a stage keeps, for backward, only its inputs and the output of its couplings: the
couplings reconstruct their input from their output (:class:`~revnets.core.ReversibleSequence`) and the
ordinary layers in front of them (a strided or channel-changing convolution, an upsampling merged with a
skip) are recomputed from the stage's input. Without the recompute the ordinary layers would keep their
activations and decide the memory. Instance norms inside a stage run as group norms with one channel per
group (:func:`revnets.blocks.norm.as_group_norm`): the same function, without the copies autograd makes when an
in-place activation follows PyTorch's instance norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from revnets.blocks.norm import instance_norms_as_group_norms
from revnets.core import AdditiveCoupling, Form, ReversibleSequence


class Stage(nn.Module):
    """``entry(*inputs)`` (ordinary layers) followed by a reversible sequence of ``couplings``.

    Args:
        entry: the ordinary layers; takes the stage's inputs, returns ``(B, C, *S)``.
        couplings: same-shape couplings on ``C`` channels (none: the stage is its entry).
        form: reversible (couplings reconstructed from their output, entry recomputed from its inputs),
            plain (ordinary autograd over both) or checkpointed (entry and each coupling under
            ``torch.utils.checkpoint``).
    """

    def __init__(self, entry: nn.Module, couplings: Sequence[AdditiveCoupling], form: Form | str) -> None:
        super().__init__()
        self.form = Form.of(form)
        self.entry = entry
        self.couplings = ReversibleSequence(*couplings, form=self.form) if couplings else None
        instance_norms_as_group_norms(self)

    def forward(self, *inputs: Tensor) -> Tensor:
        if self.form is not Form.PLAIN and torch.is_grad_enabled():
            x = checkpoint(self.entry, *inputs, use_reentrant=False)
        else:
            x = self.entry(*inputs)
        return x if self.couplings is None else self.couplings(x)


class ShortcutStage(nn.Module):
    """A stage plus a shortcut from its input added to its output (MONAI's residual units and ``res_block``).

    Args:
        stage: the stage, ``(B, C_in, *S) -> (B, C, *S')``.
        shortcut: ``(B, C_in, *S) -> (B, C, *S')``: identity or a projection (strided / 1x1 convolution).
    """

    def __init__(self, stage: Stage, shortcut: nn.Module) -> None:
        super().__init__()
        self.stage = stage
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        return self.stage(x) + self.shortcut(x)
