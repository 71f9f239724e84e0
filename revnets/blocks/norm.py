"""Normalisation layers by name, spatial_dims-generic, through MONAI's factories; instance norm as group norm.

PyTorch computes ``InstanceNorm1d/2d/3d`` without running statistics as a batch norm over a reshaped input
and returns a view of its result. An in-place activation after it (MONAI's ``DynUNet`` default, leaky ReLU
with ``inplace=True``) makes autograd copy the whole tensor in backward (``CopySlices``): three extra
full-size tensors per layer, which at full resolution set the peak of the reversible twins' training step.
``GroupNorm(C, C)`` normalises each channel of each sample over its spatial extent, which is instance norm,
with the same ``weight`` and ``bias`` (names and values) and the same ``eps``, and returns a tensor of its own:
:func:`as_group_norm`, used by the twins (:mod:`revnets.nets`); revnets' own models keep PyTorch's instance
norm.
"""

from __future__ import annotations

from monai.networks.layers.utils import get_norm_layer
from torch import nn
from torch.nn.modules.instancenorm import _InstanceNorm

NORMS = ("instance", "group", "batch")


def norm_layer(norm: str, spatial_dims: int, channels: int, max_groups: int = 8) -> nn.Module:
    """A norm layer for ``(B, channels, *spatial)``.

    Args:
        norm: ``"instance"`` (affine), ``"group"`` (the largest group count <= ``max_groups`` that divides
            ``channels``) or ``"batch"``.
        spatial_dims: 1, 2 or 3.
        channels: number of channels normalised.
        max_groups: upper bound on the group count for ``"group"``.
    """
    if norm == "group":
        groups = max(g for g in range(1, max_groups + 1) if channels % g == 0)
        return get_norm_layer(("group", {"num_groups": groups}), spatial_dims, channels)
    if norm == "instance":
        return get_norm_layer(("instance", {"affine": True}), spatial_dims, channels)
    if norm == "batch":
        return get_norm_layer("batch", spatial_dims, channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}.")


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
