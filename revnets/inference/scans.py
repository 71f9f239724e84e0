"""Finding and checking the scans given to ``revnets predict``, before any heavy work starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.data.brats import brats_case_files
from revnets.errors import UserInputError
from revnets.files import AFFINE_TOLERANCE, NIFTI_SUFFIX, open_nifti
from revnets.io import ITK_SUFFIXES, is_itk_scan, scan_header


@dataclass(frozen=True)
class Scan:
    """One case to segment.

    Attributes:
        path: what the user gave: a NIfTI, NRRD or MetaImage file, a DICOM series folder, or a BraTS case folder.
        files: the files read (one; the four BraTS modalities in channel order; or a DICOM series' slices,
            sorted by position and read as one volume by :class:`revnets.io.ScanReader`).
        stem: output name prefix: the file name without its suffix, or the folder name.
        reference: a NIfTI image (header only) in the input's physical space: outputs take its shape, affine
            and orientation (for a DICOM, NRRD or MetaImage input, made from that file's geometry).
    """

    path: Path
    files: tuple[Path, ...]
    stem: str
    reference: nib.Nifti1Image

    @property
    def input_files(self) -> tuple[Path, ...]:
        """Every file of this input, never to be replaced: the files read and, for a case folder, every other
        file in it (such as its ground truth ``<case>_seg.nii.gz``)."""
        if not self.path.is_dir():
            return self.files
        return tuple(dict.fromkeys((*self.files, *sorted(p for p in self.path.iterdir() if p.is_file()))))

    @property
    def loader_input(self) -> str | list[str]:
        """What MONAI's ``LoadImaged`` takes: one path, a list stacked as channels, or a DICOM series' slices."""
        return str(self.files[0]) if len(self.files) == 1 else [str(f) for f in self.files]


def find_scan(path: Path, in_channels: int, series_uid: str | None = None) -> Scan:
    """Check ``path`` against a model taking ``in_channels``.

    ``path`` is a NIfTI file, an NRRD or MetaImage file, a DICOM series folder (or one file of the series;
    ``series_uid`` chooses among several series in one folder) or a BraTS case folder. A multi-channel
    scan is one 4D NIfTI with channels in the 4th dimension, or a BraTS case folder (``<case>/<case>_t1.nii.gz``,
    ``_t1ce``, ``_t2``, ``_flair``) stacked in that order.

    Raises:
        UserInputError: missing or unreadable files, wrong dimensionality, wrong channel count, or
            modalities whose shapes or affines disagree.
        revnets.io.DicomSeriesError: no usable DICOM series (see :func:`revnets.io.find_dicom_series`).
    """
    if is_itk_scan(path):
        return _itk_scan(path, in_channels, series_uid)
    if path.is_dir():
        files = brats_case_files(path)[0]
        stem = path.name
    else:
        files = (path,)
        stem = NIFTI_SUFFIX.sub("", path.name)
    images = [open_nifti(f) for f in files]
    for file, image in zip(files[1:], images[1:]):
        if image.shape != images[0].shape:
            raise UserInputError(f"{file} has shape {image.shape}, but {files[0]} has {images[0].shape}.")
        if not np.allclose(image.affine, images[0].affine, atol=AFFINE_TOLERANCE):
            raise UserInputError(f"{file} has a different affine (voxel-to-world matrix) from {files[0]}.")
    shape = images[0].shape
    if len(shape) not in (3, 4) or (len(shape) == 4 and len(files) > 1):
        raise UserInputError(f"{files[0]} has shape {shape}: expected a 3D volume (or 4D with channels last).")
    channels = len(files) if len(files) > 1 else (shape[3] if len(shape) == 4 else 1)
    _check_channels(path, channels, in_channels)
    return Scan(path=path, files=files, stem=stem, reference=images[0])


def _itk_scan(path: Path, in_channels: int, series_uid: str | None) -> Scan:
    header = scan_header(path, series_uid)
    _check_channels(path, header.channels, in_channels)
    shape = header.shape if header.channels == 1 else (*header.shape, header.channels)
    reference = nib.Nifti1Image(np.broadcast_to(np.zeros((), np.float32), shape), header.affine)
    reference.header.set_xyzt_units("mm")
    if path.is_dir():
        stem = path.name
    elif path.name.lower().endswith(ITK_SUFFIXES):
        stem = path.name[: path.name.rindex(".")]
    else:
        stem = path.parent.name
    return Scan(path=path, files=header.files, stem=stem, reference=reference)


def _check_channels(path: Path, channels: int, in_channels: int) -> None:
    if channels != in_channels:
        expected = "a 3D volume" if in_channels == 1 else (
            f"{in_channels} channels: a 4D NIfTI with channels last or a BraTS case folder"
        )
        raise UserInputError(f"{path} has {channels} channel(s), but the model takes {expected}.")

