"""Writing results as NIfTI in the input's space."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np


def write_nifti(array: np.ndarray, reference: nib.Nifti1Image, path: Path, compressed: bool = True) -> None:
    """Write ``array`` (``(*spatial)`` or ``(*spatial, N)``) with ``reference``'s affine and orientation.

    The format does not depend on ``path``'s name (gzip-compressed NIfTI-1 unless ``compressed`` is off),
    so it can be a temporary name of a :class:`revnets.files.OutputUnit`, which moves it into place.
    """
    header = reference.header.copy()
    header.set_data_dtype(array.dtype)
    header.set_data_shape(array.shape)
    image = nib.Nifti1Image(array, reference.affine, header)
    if not compressed:
        with open(path, "wb") as stream:
            image.to_stream(stream)
        return
    with gzip.open(path, "wb", compresslevel=1) as stream:
        image.to_stream(stream)
