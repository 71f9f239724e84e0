"""Data: example data on the real MNI anatomy, tumour phantoms, dataset layouts."""

from revnets.data.brats import MODALITIES, BratsLoadd, brats_case_files, brats_datalist
from revnets.data.ct_phantom import ChestCase, lidc_crops, phantom_lidc_pickle, simulate_chest_ct, write_lidc_pickle
from revnets.data.decathlon import decathlon_datalist
from revnets.data.errors import DataError
from revnets.data.example import write_brats_dataset, write_example_scans, write_multirater_set
from revnets.data.mni import Anatomy, mni_anatomy, tissue_raters
from revnets.data.multirater import LIDCDataset, load_lidc_pickle, multirater_datalist
from revnets.data.multirater_benchmark import RATERS, RaterModel, synthetic_subject, write_multirater_benchmark
from revnets.data.phantom import simulate_tumour_case
from revnets.data.validation import CheckLabelValuesd, LoadAlignedImaged

__all__ = [
    "MODALITIES",
    "RATERS",
    "Anatomy",
    "BratsLoadd",
    "ChestCase",
    "CheckLabelValuesd",
    "DataError",
    "LIDCDataset",
    "LoadAlignedImaged",
    "RaterModel",
    "brats_case_files",
    "brats_datalist",
    "decathlon_datalist",
    "lidc_crops",
    "load_lidc_pickle",
    "mni_anatomy",
    "multirater_datalist",
    "phantom_lidc_pickle",
    "simulate_chest_ct",
    "simulate_tumour_case",
    "synthetic_subject",
    "tissue_raters",
    "write_brats_dataset",
    "write_example_scans",
    "write_lidc_pickle",
    "write_multirater_benchmark",
    "write_multirater_set",
]
