"""DICOM series as clinicians export them: one folder, one image series chosen, its slices checked and sorted.

Only headers are read here (GDCM through SimpleITK, pixel data skipped); the voxels are read by ITK through
:class:`revnets.io.ScanReader`, which applies the rescale slope and intercept (Hounsfield units for CT).

A series is accepted when its slices form one regular 3D grid: the same orientation, size and pixel spacing
in every slice, slice positions along the slice normal (no gantry tilt) and equally spaced (no missing or
doubled slices). Anything else is refused with one sentence naming the folder and the problem, because ITK
would read it anyway and silently give a distorted volume.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from revnets.io.errors import DicomSeriesError

# The header fields read from every file, by tag.
_SOP_CLASS = "0008|0016"
_MODALITY = "0008|0060"
_SERIES_UID = "0020|000e"
_POSITION = "0020|0032"
_ORIENTATION = "0020|0037"
_PIXEL_SPACING = "0028|0030"
_ROWS = "0028|0010"
_COLUMNS = "0028|0011"
_FRAMES = "0028|0008"
_TILT = "0018|1120"
_POSITION_TOLERANCE = 1e-3  # mm
_SPACING_TOLERANCE = 0.01  # relative difference between slice steps accepted as regular
_TILT_TOLERANCE = 0.05  # degrees

# Storage classes that hold no image volume (structure sets, reports, plans, presentation states, ...).
_NON_IMAGE_NAMES = {
    "1.2.840.10008.1.3.10": "DICOMDIR",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan",
    "1.2.840.10008.5.1.4.1.1.11.1": "Presentation State",
    "1.2.840.10008.5.1.4.1.1.66": "Raw Data",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.88.11": "Basic Text SR",
    "1.2.840.10008.5.1.4.1.1.88.22": "Enhanced SR",
    "1.2.840.10008.5.1.4.1.1.88.33": "Comprehensive SR",
}
_HEADER_BYTES = 1 << 16


@dataclass(frozen=True)
class DicomSlice:
    """The header of one DICOM file: where its slice lies, or why it is not an image slice."""

    path: Path
    series_uid: str
    kind: str
    position: np.ndarray | None = None
    orientation: np.ndarray | None = None
    pixel_spacing: tuple[float, float] | None = None
    size: tuple[int, int] | None = None
    tilt: float = 0.0
    frames: int = 1

    @property
    def is_image(self) -> bool:
        return self.position is not None


@dataclass(frozen=True)
class DicomSeries:
    """One regular 3D image series.

    Attributes:
        uid: SeriesInstanceUID.
        files: the slices' files, sorted by position along the slice normal (ascending).
        shape: ``(columns, rows, slices)``: voxel counts along the row direction, the column direction and the
            slice normal (ITK's, and MONAI's, index order).
        affine: voxel index ``(i, j, k)`` to RAS millimetres, as NIfTI and MONAI's readers give it.
    """

    uid: str
    files: tuple[Path, ...]
    shape: tuple[int, int, int]
    affine: np.ndarray


def is_dicom_file(path: Path) -> bool:
    """True if ``path`` is a file with the DICOM preamble (``DICM`` at byte 128)."""
    try:
        with path.open("rb") as stream:
            stream.seek(128)
            return stream.read(4) == b"DICM"
    except OSError:
        return False


def dicom_files(folder: Path) -> list[Path]:
    """The DICOM files directly in ``folder`` (other files, such as a README, are ignored), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and is_dicom_file(p))


def read_slice(path: Path) -> DicomSlice:
    """The header of one DICOM file (pixel data not read); a file GDCM reads no image from is a non-image object."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:  # GDCM finds no image in it: name what it is from its raw header
        sop_class = _raw_uid(path, b"\x08\x00\x16\x00")
        kind = _NON_IMAGE_NAMES.get(sop_class, "unknown object")
        return DicomSlice(path, _raw_uid(path, b"\x20\x00\x0e\x00"), kind)

    def tag(key: str) -> str:
        return reader.GetMetaData(key).strip(" \0") if reader.HasMetaDataKey(key) else ""

    def numbers(key: str) -> list[float]:
        return [float(v) for v in tag(key).split("\\") if v.strip()]

    sop_class = tag(_SOP_CLASS)
    series_uid = tag(_SERIES_UID)
    if sop_class in _NON_IMAGE_NAMES:
        return DicomSlice(path, series_uid, _NON_IMAGE_NAMES[sop_class])
    position, orientation, spacing = numbers(_POSITION), numbers(_ORIENTATION), numbers(_PIXEL_SPACING)
    if len(position) != 3 or len(orientation) != 6 or len(spacing) != 2:
        return DicomSlice(path, series_uid, f"{tag(_MODALITY) or 'object'} without an image plane")
    return DicomSlice(
        path,
        series_uid,
        tag(_MODALITY) or "image",
        position=np.asarray(position),
        orientation=np.asarray(orientation),
        pixel_spacing=(spacing[0], spacing[1]),
        size=(int(tag(_ROWS)), int(tag(_COLUMNS))),
        tilt=float(tag(_TILT) or 0.0),
        frames=int(tag(_FRAMES) or 1),
    )


def _raw_uid(path: Path, tag: bytes) -> str:
    """A UID element (little-endian ``tag``, explicit or implicit VR) from the start of a file; "" if absent."""
    with path.open("rb") as stream:
        head = stream.read(_HEADER_BYTES)
    at = head.find(tag + b"UI")
    if at >= 0:
        length = int.from_bytes(head[at + 6 : at + 8], "little")
        return head[at + 8 : at + 8 + length].rstrip(b"\0 ").decode("ascii", "replace")
    at = head.find(tag)
    if at >= 0:
        length = int.from_bytes(head[at + 4 : at + 8], "little")
        if length <= 64:
            return head[at + 8 : at + 8 + length].rstrip(b"\0 ").decode("ascii", "replace")
    return ""


def find_dicom_series(path: Path, series_uid: str | None = None) -> DicomSeries:
    """The image series in a DICOM folder (or the series of one DICOM file in it), checked and sorted.

    Args:
        path: a folder of DICOM files, or one DICOM file of the wanted series.
        series_uid: the SeriesInstanceUID to use when the folder holds several image series.

    Raises:
        DicomSeriesError: no DICOM files; only non-image objects; several image series and no (or an unknown)
            ``series_uid``; a series that is not one regular grid (mixed orientation or size, gantry tilt,
            missing, doubled or irregularly spaced slices, multi-frame files).
    """
    folder = path if path.is_dir() else path.parent
    if path.is_file():
        chosen = read_slice(path)
        if series_uid is not None and series_uid != chosen.series_uid:
            raise DicomSeriesError(f"{path} belongs to series {chosen.series_uid}, not {series_uid}.")
        series_uid = chosen.series_uid
    files = dicom_files(folder)
    if not files:
        raise DicomSeriesError(f"{folder} holds no DICOM files.")
    by_series: dict[str, list[DicomSlice]] = defaultdict(list)
    for file in files:
        header = read_slice(file)
        by_series[header.series_uid].append(header)
    images = {uid: slices for uid, slices in by_series.items() if all(s.is_image for s in slices)}
    if series_uid is None:
        if not images:
            kinds = sorted({s.kind for slices in by_series.values() for s in slices})
            raise DicomSeriesError(
                f"{folder} holds no DICOM image series, only non-image objects ({', '.join(kinds)})."
            )
        if len(images) > 1:
            listing = "; ".join(f"{uid} ({len(slices)} files)" for uid, slices in sorted(images.items()))
            raise DicomSeriesError(
                f"{folder} holds {len(images)} DICOM image series, choose one by its series UID: {listing}."
            )
        series_uid = next(iter(images))
    if series_uid not in by_series:
        raise DicomSeriesError(f"{folder} has no DICOM series {series_uid}; it holds: {', '.join(sorted(by_series))}.")
    slices = by_series[series_uid]
    not_images = [s for s in slices if not s.is_image]
    if not_images:
        raise DicomSeriesError(
            f"series {series_uid} in {folder} is not an image series: {not_images[0].path.name} is not an image "
            f"({not_images[0].kind})."
        )
    return _regular_series(folder, series_uid, slices)


def _image_plane(where: str, s: DicomSlice) -> tuple[np.ndarray, np.ndarray, tuple[float, float], tuple[int, int]]:
    """A slice's position, orientation, pixel spacing and size, which every image slice has."""
    if s.position is None or s.orientation is None or s.pixel_spacing is None or s.size is None:
        raise DicomSeriesError(f"{where}: {s.path.name} is not an image ({s.kind}).")
    return s.position, s.orientation, s.pixel_spacing, s.size


def _regular_series(folder: Path, uid: str, slices: list[DicomSlice]) -> DicomSeries:
    where = f"DICOM series {uid} in {folder}"
    planes = [_image_plane(where, s) for s in slices]
    _, first_orientation, first_spacing, first_size = planes[0]
    if any(s.frames > 1 for s in slices):
        raise DicomSeriesError(f"{where} has multi-frame files; export it as one file per slice.")
    if any(size != first_size or not np.allclose(orientation, first_orientation, atol=1e-4)
           for _, orientation, _, size in planes):
        raise DicomSeriesError(f"{where} mixes slices of different orientation or size.")
    if any(not np.allclose(spacing, first_spacing, rtol=1e-4) for _, _, spacing, _ in planes):
        raise DicomSeriesError(f"{where} mixes slices of different pixel spacing.")
    if len(slices) < 2:
        raise DicomSeriesError(f"{where} has a single slice; a 3D volume needs at least two.")
    row, column = first_orientation[:3], first_orientation[3:]
    normal = np.cross(row, column)
    order = sorted(range(len(slices)), key=lambda i: float(planes[i][0] @ normal))  # stable, as sorting slices
    slices = [slices[i] for i in order]
    positions = np.stack([planes[i][0] for i in order])
    steps = np.diff(positions, axis=0)
    along = steps @ normal
    if np.any(along < _POSITION_TOLERANCE):
        doubled = slices[int(np.argmin(along))].path.name
        raise DicomSeriesError(f"{where} has two slices at the same position ({doubled}).")
    across = np.linalg.norm(steps - along[:, None] * normal, axis=1)
    tilt = max(float(np.degrees(np.arctan2(across.max(), along.min()))), *(abs(s.tilt) for s in slices))
    if tilt > _TILT_TOLERANCE:
        raise DicomSeriesError(
            f"{where} was acquired with gantry tilt ({tilt:.1f} degrees): its slices are sheared, not a regular "
            "grid; resample it to an untilted grid first."
        )
    step = float(np.median(along))
    if np.any(np.abs(along - step) > _SPACING_TOLERANCE * step):
        gap = int(np.argmax(np.abs(along - step)))
        missing = along[gap] / step
        what = f"about {round(missing) - 1} slice(s) missing" if missing > 1.5 else "irregular slice spacing"
        raise DicomSeriesError(
            f"{where} has {what}: the step between {slices[gap].path.name} and {slices[gap + 1].path.name} is "
            f"{along[gap]:.3g} mm where the others are {step:.3g} mm."
        )
    row_spacing, column_spacing = first_spacing  # DICOM: between rows, between columns
    lps = np.eye(4)
    lps[:3, 0] = row * column_spacing
    lps[:3, 1] = column * row_spacing
    lps[:3, 2] = normal * step
    lps[:3, 3] = positions[0]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    rows, columns = first_size
    return DicomSeries(
        uid=uid,
        files=tuple(s.path for s in slices),
        shape=(columns, rows, len(slices)),
        affine=ras,
    )
