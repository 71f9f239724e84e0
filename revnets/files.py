"""Reading and writing files safely: NIfTI opened with one clear error, outputs renamed into place whole.

This module imports neither torch nor MONAI, so light commands (``revnets overlay``) stay fast.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib

from revnets.errors import UserInputError

NIFTI_SUFFIX = re.compile(r"\.nii(\.gz)?$")


def open_nifti(path: Path) -> nib.Nifti1Image | nib.Nifti2Image:
    """The NIfTI image at ``path`` (header read, data not loaded).

    Raises:
        UserInputError: the file is missing, not named ``.nii`` / ``.nii.gz``, or not a readable NIfTI image.
    """
    if not path.is_file():
        raise UserInputError(f"{path}: no such file.")
    if not NIFTI_SUFFIX.search(path.name):
        raise UserInputError(f"{path} is not a NIfTI file (.nii or .nii.gz).")
    try:
        image = nib.load(path)
    except Exception as error:  # nibabel raises many types for garbage files
        raise UserInputError(f"{path} is not a readable NIfTI image ({type(error).__name__}).") from error
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise UserInputError(f"{path} is not a NIfTI image.")
    return image


@contextmanager
def atomic_output(path: Path, suffix: str) -> Iterator[str]:
    """A temporary file name next to ``path``, renamed to ``path`` if the block succeeds, removed if not.

    A crash or a cancelled run leaves either the complete file or none. The file gets the permissions a
    new file would get under the current umask (``mkstemp`` alone would give 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
