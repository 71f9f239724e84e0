"""The scans an inference run segments, as a MONAI datalist: from a folder (``dataset_dir``) or a list of paths."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from revnets.data.brats import brats_case_files
from revnets.errors import InputError, RevnetsError
from revnets.files import NIFTI_SUFFIX
from revnets.inference.scans import Scan, find_scan
from revnets.io import ITK_SUFFIXES, is_itk_scan


def list_inputs(dataset_dir: str | Path | None, in_channels: int) -> list[Path]:
    """The scans in ``dataset_dir``, sorted by name: NIfTI, NRRD and MetaImage files, DICOM series folders, and
    for a multi-channel model also BraTS case folders. Hidden files and other folders are skipped.

    Raises:
        InputError: ``dataset_dir`` is not set, not a folder, or holds no scan.
    """
    if dataset_dir is None or not str(dataset_dir).strip():
        raise InputError("no scans to segment: dataset_dir is not set (a folder of NIfTI scans is expected).")
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise InputError(f"no scans to segment: dataset_dir {folder} is not a folder.")
    found = [
        path
        for path in sorted(folder.iterdir())
        if not path.name.startswith(".")
        and (
            (path.is_file() and (NIFTI_SUFFIX.search(path.name) or path.name.lower().endswith(ITK_SUFFIXES)))
            or (path.is_dir() and is_itk_scan(path))
            or (in_channels > 1 and _is_case(path))
        )
    ]
    if not found:
        kinds = "scans (NIfTI, NRRD, MetaImage, DICOM series folders)" + (
            " or BraTS case folders" if in_channels > 1 else ""
        )
        raise InputError(f"no scans to segment: {folder} holds no {kinds}.")
    return found


def find_scans(inputs: Sequence[str | Path], in_channels: int, series_uid: str | None = None) -> list[Scan]:
    """Check every input (see :func:`revnets.inference.scans.find_scan`) before any heavy work; ``series_uid``
    chooses the series of a DICOM folder that holds several.

    Raises:
        InputError: no input, or an input that is missing, unreadable or of the wrong shape.
    """
    if not inputs:
        raise InputError("no scans to segment: the list of inputs is empty.")
    return [find_scan(Path(path), in_channels, series_uid) for path in inputs]


def scan_datalist(scans: Sequence[Scan]) -> list[dict[str, str | list[str]]]:
    """One MONAI data dict per scan: ``image`` (what ``LoadImaged`` reads), ``scan`` (the input's path, which
    keys its outputs) and ``stem`` (the outputs' name prefix)."""
    return [{"image": scan.loader_input, "scan": str(scan.path), "stem": scan.stem} for scan in scans]


def _is_case(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        brats_case_files(path)
    except RevnetsError:
        return False
    return True
