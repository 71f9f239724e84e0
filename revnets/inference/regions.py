"""Nested-region probabilities (BraTS TC / WT / ET) as exclusive class probabilities, for uncertainty maps."""

from __future__ import annotations

import torch
from torch import Tensor

BRATS_CLASS_LABELS = (0, 1, 2, 4)
"""BraTS label of each class :func:`nested_regions_to_classes` returns: background, necrotic core, edema,
enhancing tumour."""


def nested_regions_to_classes(samples: Tensor) -> Tensor:
    """Sigmoid probabilities of nested regions to a distribution over exclusive classes.

    Args:
        samples: ``(N, B, 3, *spatial)`` probabilities of tumour core (TC), whole tumour (WT) and enhancing
            tumour (ET), in that order (MONAI's ``ConvertToMultiChannelBasedOnBratsClasses`` order).

    Returns:
        ``(N, B, 4, *spatial)`` probabilities of background, necrotic core, edema and enhancing tumour
        (labels :data:`BRATS_CLASS_LABELS`), summing to 1. Nesting is enforced (ET <= TC <= WT) by
        taking minima, so the classes are never negative.
    """
    if samples.dim() < 4 or samples.shape[2] != 3:
        raise ValueError(f"samples must be (N, B, 3, *spatial) TC/WT/ET probabilities, got {tuple(samples.shape)}.")
    whole = samples[:, :, 1]
    core = torch.minimum(samples[:, :, 0], whole)
    enhancing = torch.minimum(samples[:, :, 2], core)
    return torch.stack((1 - whole, core - enhancing, whole - core, enhancing), dim=2)
