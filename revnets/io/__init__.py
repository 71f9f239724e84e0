"""Reading scans as clinicians have them: DICOM series, NRRD and MetaImage (NIfTI is read by MONAI directly)."""

from revnets.io.dicom import DicomSeries, find_dicom_series, is_dicom_file
from revnets.io.dicom_writer import new_uid, write_dicom_series
from revnets.io.errors import DicomSeriesError, ScanFormatError
from revnets.io.reader import ITK_SUFFIXES, ScanHeader, ScanReader, is_itk_scan, scan_header

__all__ = [
    "ITK_SUFFIXES",
    "DicomSeries",
    "DicomSeriesError",
    "ScanFormatError",
    "ScanHeader",
    "ScanReader",
    "find_dicom_series",
    "is_dicom_file",
    "is_itk_scan",
    "new_uid",
    "scan_header",
    "write_dicom_series",
]
