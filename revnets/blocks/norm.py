"""Normalisation layers by name, spatial_dims-generic, through MONAI's factories."""

from __future__ import annotations

from monai.networks.layers.utils import get_norm_layer
from torch import nn

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

