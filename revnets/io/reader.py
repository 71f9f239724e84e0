"""Scans as clinicians have them: DICOM series folders, NRRD (3D Slicer's format) and MetaImage, read by ITK.

:class:`ScanReader` is a MONAI ``ImageReader``: a bundle's ``LoadImaged`` takes it as
``"reader": "revnets.io.ScanReader"`` and keeps MONAI's own readers for everything else (NIfTI stays with
``NibabelReader``). :func:`scan_header` gives the geometry of such a scan without reading its voxels, so the
outputs can be written as NIfTI in the input's physical space (same direction, origin and spacing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from monai.config import PathLike
from monai.data import ITKReader
from monai.utils import ensure_tuple

from revnets.io.dicom import find_dicom_series, is_dicom_file
from revnets.io.errors import ScanFormatError

ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_itk_scan(path: str | Path) -> bool:
    """True for what :class:`ScanReader` reads: a DICOM folder or file, or an NRRD / MetaImage file."""
    path = Path(path)
    if path.is_dir():
        return any(is_dicom_file(p) for p in path.iterdir() if p.is_file())
    return path.name.lower().endswith(ITK_SUFFIXES) or (path.is_file() and is_dicom_file(path))


@dataclass(frozen=True)
class ScanHeader:
    """What a scan is, before its voxels are read.

    Attributes:
        files: the files holding the voxels (a DICOM series' slices, sorted by position; an NRRD or
            MetaImage header with its data file, if separate).
        shape: spatial shape ``(X, Y, Z)`` in MONAI's index order.
        channels: components per voxel.
        affine: voxel index to RAS millimetres.
        loader_input: what :class:`ScanReader` (through ``LoadImaged``) is given: the series' files, or the file.
    """

    files: tuple[Path, ...]
    shape: tuple[int, int, int]
    channels: int
    affine: np.ndarray
    loader_input: str | list[str]


def scan_header(path: Path, series_uid: str | None = None) -> ScanHeader:
    """The geometry of a DICOM series (folder or one of its files), NRRD or MetaImage file at ``path``.

    Args:
        path: the scan.
        series_uid: which series of a DICOM folder holding several.

    Raises:
        DicomSeriesError: see :func:`revnets.io.find_dicom_series`.
        ScanFormatError: a missing or unreadable file, or not a 3D image.
    """
    if path.is_dir() or is_dicom_file(path):
        series = find_dicom_series(path, series_uid)
        return ScanHeader(series.files, series.shape, 1, series.affine, [str(f) for f in series.files])
    if not path.is_file():
        raise ScanFormatError(f"{path}: no such file.")
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise ScanFormatError(f"{path} is not a readable NRRD or MetaImage file.") from error
    if reader.GetDimension() != 3:
        raise ScanFormatError(f"{path} has {reader.GetDimension()} dimensions: expected a 3D volume.")
    direction = np.asarray(reader.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag(reader.GetSpacing())
    lps[:3, 3] = reader.GetOrigin()
    return ScanHeader(
        files=(path,),
        shape=_shape3(reader.GetSize()),
        channels=int(reader.GetNumberOfComponents()),
        affine=_LPS_TO_RAS @ lps,
        loader_input=str(path),
    )


def _shape3(size: Sequence[int]) -> tuple[int, int, int]:
    """A 3D image's size as ``(X, Y, Z)``."""
    x, y, z = (int(s) for s in size)
    return (x, y, z)


class ScanReader(ITKReader):
    """MONAI's ``ITKReader`` for DICOM series (checked first: one regular series), NRRD and MetaImage.

    A folder is read as the DICOM series it holds (``series_uid`` chooses among several); a list of DICOM
    files is read as one series, and must be a whole series as :func:`scan_header` lists it. Slices are
    ordered by position and the rescale slope and intercept are applied (CT in Hounsfield units).
    ``verify_suffix`` is False for other files, so ``LoadImaged(reader="revnets.io.ScanReader")`` leaves NIfTI to
    MONAI's ``NibabelReader``. The affine is RAS, as ``NibabelReader`` gives it.

    Args:
        series_uid: the DICOM series to read from a folder holding several.
        kwargs: passed to MONAI's ``ITKReader``.
    """

    def __init__(self, series_uid: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.series_uid = series_uid

    def verify_suffix(self, filename: Sequence[PathLike] | PathLike) -> bool:
        return all(is_itk_scan(Path(name)) for name in ensure_tuple(filename))

    def read(self, data: Sequence[PathLike] | PathLike, **kwargs):
        if not self.verify_suffix(data):
            # MONAI's LoadImage calls a reader it was given by name on every file and moves on to its other
            # readers when it raises: NIfTI goes to NibabelReader, as revnets reads and writes NIfTI everywhere
            # (ITK would read NaN voxels as zero and judge sforms differently).
            raise ValueError(f"{data} is not a DICOM, NRRD or MetaImage scan.")
        import itk

        names = [Path(name) for name in ensure_tuple(data)]
        if not (names[0].is_dir() or is_dicom_file(names[0])):
            return super().read(data, **kwargs)
        series = find_dicom_series(names[0], self.series_uid)
        if len(names) > 1 and sorted(names) != sorted(series.files):
            raise ScanFormatError(f"the DICOM files given are not the whole series {series.uid} of {names[0].parent}.")
        return itk.imread([str(f) for f in series.files], **{**self.kwargs, **kwargs})
