"""Writing a volume as a DICOM series (one CT Image Storage file per slice), for example data and tests."""

from __future__ import annotations

import locale
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_UID_ROOT = "1.2.826.0.1.3680043.10.1447"  # a private root for revnets' generated objects


@contextmanager
def _locale_kept() -> Iterator[None]:
    """Restore the process's locale afterwards: SimpleITK's DICOM writer (GDCM) sets it to ``C``, which turns
    Python's default text encoding into ASCII for everything the process reads or writes later."""
    saved = locale.setlocale(locale.LC_ALL)
    try:
        yield
    finally:
        locale.setlocale(locale.LC_ALL, saved)


def new_uid(rng: np.random.Generator) -> str:
    """A DICOM UID under revnets' root (at most 64 characters)."""
    return f"{_UID_ROOT}.{rng.integers(10**15, 10**16)}.{rng.integers(10**15, 10**16)}"


def _decimal(value: float) -> str:
    """A DICOM decimal string (at most 16 characters)."""
    return f"{value:.10g}"[:16]


def write_dicom_series(
    volume: np.ndarray,
    affine: np.ndarray,
    folder: Path,
    series_uid: str | None = None,
    description: str = "revnets phantom",
    rescale_slope: float = 1.0,
    rescale_intercept: float = -1024.0,
    prefix: str = "slice",
    seed: int = 0,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``volume`` ``(X, Y, Z)`` (Hounsfield units) as ``folder/<prefix>_0000.dcm``... , one file per ``Z``.

    Voxel ``(i, j, k)`` of ``volume`` lies at ``affine @ (i, j, k, 1)`` (RAS millimetres, as in NIfTI). The
    first two axes must be orthogonal (the slice plane); slice ``k`` lies at ``k`` times the third axis, so an
    affine whose third axis is not normal to the plane writes a gantry-tilted series. Slice ``k`` stores
    column ``i`` and row ``j`` as ``round((HU - intercept) / slope)`` in unsigned 16 bits, with the rescale
    slope and intercept in its header.

    Args:
        volume: the voxel values, in Hounsfield units.
        affine: voxel index to RAS millimetres.
        folder: the series folder (created).
        series_uid: the SeriesInstanceUID (default: drawn from ``seed``).
        description: SeriesDescription.
        rescale_slope, rescale_intercept: how stored values map to Hounsfield units.
        prefix: file name prefix.
        seed: seeds the UIDs, so the same call writes the same files.
        overwrite: replace existing files of the same names.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False.
        ValueError: ``volume`` is not 3D, the slice plane's axes are not orthogonal, or a value does not fit
            16 bits with this slope and intercept.
    """
    import SimpleITK as sitk

    if volume.ndim != 3:
        raise ValueError(f"a DICOM series is written from a 3D volume, got shape {volume.shape}.")
    lps = _RAS_TO_LPS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :2], axis=0)
    row, column = (lps[:3, :2] / spacing).T
    if abs(row @ column) > 1e-6:
        raise ValueError("the slice plane's axes must be orthogonal to be written as DICOM slices.")
    stored = np.round((volume.astype(np.float64) - rescale_intercept) / rescale_slope)
    if stored.min() < 0 or stored.max() > 65535:
        raise ValueError("the volume does not fit unsigned 16 bits with this rescale slope and intercept.")
    folder = Path(folder)
    paths = [folder / f"{prefix}_{k:04d}.dcm" for k in range(volume.shape[2])]
    if not overwrite and any(p.exists() for p in paths):
        raise FileExistsError(f"{folder} already holds {prefix}_*.dcm files.")
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study_uid, frame_uid = new_uid(rng), new_uid(rng)
    series_uid = series_uid or new_uid(rng)
    normal = np.cross(row, column)
    tilt = np.degrees(np.arccos(np.clip(abs(lps[:3, 2] @ normal) / np.linalg.norm(lps[:3, 2]), 0, 1)))
    series_tags = {
        "0008|0016": _CT_IMAGE_STORAGE,
        "0008|0060": "CT",
        "0008|0008": "DERIVED\\SECONDARY\\AXIAL",
        "0010|0010": "Phantom^Revnets",
        "0010|0020": "revnets-phantom",
        "0020|000d": study_uid,
        "0020|000e": series_uid,
        "0020|0052": frame_uid,
        "0020|0011": "1",
        "0008|103e": description,
        "0020|0037": "\\".join(_decimal(v) for v in (*row, *column)),
        "0018|0050": _decimal(float(abs(lps[:3, 2] @ normal))),
        "0018|1120": _decimal(float(tilt)),
        "0028|1053": _decimal(rescale_slope),
        "0028|1052": _decimal(rescale_intercept),
        "0028|1054": "HU",
        "0028|0100": "16",
        "0028|0101": "16",
        "0028|0102": "15",
        "0028|0103": "0",
    }
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    with _locale_kept():
        for k, path in enumerate(paths):
            image = sitk.GetImageFromArray(volume[:, :, k].T.astype(np.float32))  # rows j, columns i
            image.SetSpacing((float(spacing[0]), float(spacing[1])))
            position = lps[:3, 3] + k * lps[:3, 2]
            for key, value in series_tags.items():
                image.SetMetaData(key, value)
            image.SetMetaData("0008|0018", new_uid(rng))
            image.SetMetaData("0020|0013", str(k + 1))
            image.SetMetaData("0020|0032", "\\".join(_decimal(v) for v in position))
            writer.SetFileName(str(path))
            writer.Execute(image)
    return paths
