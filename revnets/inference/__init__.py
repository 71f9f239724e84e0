"""Whole-volume sampling inference as a MONAI workflow: the sampling inferer, the datalist of scans, the
post-processing that writes consensus, samples and maps in the input's space, and the Python front door."""

from revnets.inference.checks import CheckImaged
from revnets.inference.datalist import find_scans, list_inputs, scan_datalist
from revnets.inference.inferer import MAX_SAMPLES, SamplingInferer
from revnets.inference.postprocessing import (
    OPTIONAL_OUTPUTS,
    OUTPUTS,
    ConsensusLabelsd,
    InvertMapsd,
    InvertSamplesd,
    WriteOutputsd,
)
from revnets.inference.predictor import Predictor

__all__ = [
    "MAX_SAMPLES",
    "OPTIONAL_OUTPUTS",
    "OUTPUTS",
    "CheckImaged",
    "ConsensusLabelsd",
    "InvertMapsd",
    "InvertSamplesd",
    "Predictor",
    "SamplingInferer",
    "WriteOutputsd",
    "find_scans",
    "list_inputs",
    "scan_datalist",
]
