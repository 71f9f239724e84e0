"""Writing results as NIfTI in the input's space."""

from __future__ import annotations

import gzip
from io import BufferedIOBase
from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.inference.label_volumes import LabelVolumes


def write_nifti(
    array: np.ndarray | LabelVolumes, reference: nib.Nifti1Image, path: Path, compressed: bool = True
) -> None:
    """Write ``array`` (``(*spatial)`` or ``(*spatial, N)``) with ``reference``'s affine and orientation.

    The format does not depend on ``path``'s name (gzip-compressed NIfTI-1 unless ``compressed`` is off),
    so it can be a temporary name of a :class:`revnets.files.OutputUnit`, which moves it into place.
    :class:`~revnets.inference.label_volumes.LabelVolumes` are written one volume at a time (the same bytes as
    the whole array), so only one sample's map is in memory.
    """
    header = reference.header.copy()
    header.set_data_dtype(array.dtype)
    header.set_data_shape(array.shape)
    with gzip.open(path, "wb", compresslevel=1) if compressed else open(path, "wb") as stream:
        if isinstance(array, LabelVolumes):
            _stream_volumes(array, reference.affine, header, stream)
        else:
            nib.Nifti1Image(array, reference.affine, header).to_stream(stream)


def _stream_volumes(
    volumes: LabelVolumes, affine: np.ndarray, header: nib.Nifti1Header, stream: BufferedIOBase
) -> None:
    """The header nibabel writes for ``volumes`` with ``affine``, then each volume's voxels in NIfTI's order."""
    header = nib.Nifti1Image(np.empty((0,) * volumes.ndim, volumes.dtype), affine, header).header
    header.set_data_shape(volumes.shape)
    header.set_slope_inter(1.0, 0.0)
    header.write_to(stream)
    stream.write(b"\0" * (int(header.get_data_offset()) - stream.tell()))
    for volume in volumes:
        stream.write(volume.tobytes(order="F"))
