"""Errors about scan files, reported to users as one sentence naming the file or folder."""

from revnets.errors import InputError


class ScanFormatError(InputError):
    """A scan (DICOM series, NRRD, MetaImage) is unreadable, or not the 3D volume it should be."""


class DicomSeriesError(ScanFormatError):
    """A DICOM folder holds no usable image series: none, several without a choice, or one that is not a
    regular 3D grid (gantry tilt, missing or irregular slices, mixed orientations or sizes)."""
