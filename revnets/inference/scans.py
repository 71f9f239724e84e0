"""Finding and checking the scans given to ``revnets predict``, before any heavy work starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.data.brats import brats_case_files
from revnets.errors import UserInputError
from revnets.files import NIFTI_SUFFIX, open_nifti



@dataclass(frozen=True)
class Scan:
    """One case to segment.

    Attributes:
        path: what the user gave: a NIfTI file or a BraTS case folder.
        files: the NIfTI files read (one, or the four BraTS modalities in channel order).
        stem: output name prefix: the file name without ``.nii(.gz)``, or the folder name.
        reference: the first file's NIfTI image (header only): outputs take its affine and orientation.
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
        """What MONAI's ``LoadImaged`` takes: one path, or a list stacked as channels."""
        return str(self.files[0]) if len(self.files) == 1 else [str(f) for f in self.files]


def find_scan(path: Path, in_channels: int) -> Scan:
    """Check ``path`` (a NIfTI file or a BraTS case folder) against a model taking ``in_channels``.

    A multi-channel scan is one 4D NIfTI with channels in the 4th dimension, or a BraTS case folder
    (``<case>/<case>_t1.nii.gz``, ``_t1ce``, ``_t2``, ``_flair``) stacked in that order.

    Raises:
        UserInputError: missing or unreadable files, wrong dimensionality, wrong channel count, or
            modalities whose shapes or affines disagree.
    """
    if path.is_dir():
        files = brats_case_files(path)[0]
        stem = path.name
    else:
        files = (path,)
        stem = NIFTI_SUFFIX.sub("", path.name)
    images = [open_nifti(f) for f in files]
    shapes = {img.shape for img in images}
    if len(shapes) > 1 or any(not np.allclose(img.affine, images[0].affine, atol=1e-4) for img in images):
        raise UserInputError(f"the modalities in {path} differ in shape or affine: {sorted(shapes)}.")
    shape = images[0].shape
    if len(shape) not in (3, 4) or (len(shape) == 4 and len(files) > 1):
        raise UserInputError(f"{files[0]} has shape {shape}: expected a 3D volume (or 4D with channels last).")
    channels = len(files) if len(files) > 1 else (shape[3] if len(shape) == 4 else 1)
    if channels != in_channels:
        expected = "a 3D volume" if in_channels == 1 else (
            f"{in_channels} channels: a 4D NIfTI with channels last or a BraTS case folder"
        )
        raise UserInputError(f"{path} has {channels} channel(s), but the model takes {expected}.")
    return Scan(path=path, files=files, stem=stem, reference=images[0])
