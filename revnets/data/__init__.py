"""Data: example data on the real MNI anatomy, tumour phantoms, dataset layouts."""

from revnets.data.errors import DataError
from revnets.data.example import write_brats_dataset, write_example_scans, write_multirater_set
from revnets.data.mni import Anatomy, mni_anatomy, tissue_raters
from revnets.data.phantom import MODALITIES, simulate_tumour_case

__all__ = [
    "MODALITIES",
    "Anatomy",
    "DataError",
    "mni_anatomy",
    "simulate_tumour_case",
    "tissue_raters",
    "write_brats_dataset",
    "write_example_scans",
    "write_multirater_set",
]
