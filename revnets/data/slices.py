"""The MNI multi-rater set as 2D axial slices, the LIDC-like setting of PHiSeg on the real template."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from revnets.data.mni import mni_anatomy, tissue_raters


def _centre(array: np.ndarray, size: int) -> np.ndarray:
    """``(..., X, Y, Z)`` cropped or zero-padded to ``size`` x ``size`` in X and Y about the centre."""
    out = np.zeros((*array.shape[:-3], size, size, array.shape[-1]), dtype=array.dtype)
    src: list[slice] = []
    dst: list[slice] = []
    for extent in array.shape[-3:-1]:
        lo = max((extent - size) // 2, 0)
        pad = max((size - extent) // 2, 0)
        length = min(extent, size)
        src.append(slice(lo, lo + length))
        dst.append(slice(pad, pad + length))
    target: tuple[Any, ...] = (Ellipsis, *dst, slice(None))
    source: tuple[Any, ...] = (Ellipsis, *src, slice(None))
    out[target] = array[source]
    return out


def mni_multirater_slices(
    size: int = 64, spacing: float = 3.0, min_brain_fraction: float = 0.1
) -> tuple[Tensor, Tensor]:
    """Axial slices of the MNI T1 and its four tissue raters, inferior to superior.

    Args:
        size: in-plane size of every slice (centre crop or zero pad), e.g. a multiple of the network's divisor.
        spacing: isotropic resampling of the template in mm before slicing.
        min_brain_fraction: keep only slices whose brain mask covers at least this fraction of the slice.

    Returns:
        Images ``(S, 1, size, size)`` float32, z-scored over all kept slices, and rater labels
        ``(S, 4, size, size)`` int64 (0 background, 1 grey matter, 2 white matter).
    """
    anatomy = mni_anatomy(spacing=spacing)
    image = _centre(anatomy.t1, size)
    raters = _centre(tissue_raters(anatomy), size)
    brain = _centre(anatomy.brain_mask.astype(np.uint8), size)
    keep = brain.mean(axis=(0, 1)) >= min_brain_fraction
    image, raters = image[..., keep], raters[..., keep]
    image = (image - image.mean()) / image.std()
    return (
        torch.from_numpy(np.moveaxis(image, -1, 0)[:, None].copy()).float(),
        torch.from_numpy(np.moveaxis(raters, -1, 0).copy()).long(),
    )
