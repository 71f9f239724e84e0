"""Instance norm computed as group norm with one channel per group: the same function, without a view.

PyTorch computes ``InstanceNorm1d/2d/3d`` without running statistics as a batch norm over a reshaped input
and returns a view of its result. An in-place activation after it (MONAI's default in ``DynUNet``: leaky ReLU
with ``inplace=True``; ``UNet``'s PReLU is not in place) makes autograd copy the whole tensor in backward
(``CopySlices``): three full-size tensors per layer, which at full resolution set the peak of a twin's
training step. ``GroupNorm(C, C)`` normalises each channel of each sample over its spatial extent, which is
instance norm, with the same ``weight`` and ``bias`` (for ``affine=True``) and the same ``eps``, and returns a
tensor of its own.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.instancenorm import _InstanceNorm


def as_group_norm(norm: _InstanceNorm) -> nn.GroupNorm:
    """``GroupNorm(C, C)`` computing the same function as instance norm ``norm`` (which keeps no running
    statistics), sharing its affine parameters."""
    if norm.track_running_stats:
        raise ValueError("an instance norm with running statistics is not a group norm; keep it as it is.")
    group = nn.GroupNorm(norm.num_features, norm.num_features, eps=norm.eps, affine=norm.affine)
    if norm.affine:
        group.weight = norm.weight
        group.bias = norm.bias
    return group


def instance_norms_as_group_norms(module: nn.Module) -> nn.Module:
    """``module`` with every instance norm inside it that keeps no running statistics replaced, in place, by
    :func:`as_group_norm`; returns ``module``."""
    for name, child in module.named_children():
        if isinstance(child, _InstanceNorm) and not child.track_running_stats:
            setattr(module, name, as_group_norm(child))
        else:
            instance_norms_as_group_norms(child)
    return module
