"""Writing results as NIfTI in the input's space, atomically: nothing half-written is ever left behind."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.files import atomic_output


def write_nifti(array: np.ndarray, reference: nib.Nifti1Image, path: Path) -> None:
    """Write ``array`` (``(*spatial)`` or ``(*spatial, N)``) with ``reference``'s affine and orientation.

    The file is written under a temporary name in the same folder and renamed into place, so a crash or
    a cancelled run leaves either the complete file or none.
    """
    header = reference.header.copy()
    header.set_data_dtype(array.dtype)
    header.set_data_shape(array.shape)
    image = nib.Nifti1Image(array, reference.affine, header)
    with atomic_output(path, ".nii.gz") as temporary:
        nib.save(image, temporary)
