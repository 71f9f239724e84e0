"""Uncertainty from samples ``(N, B, C, *spatial)``: per-voxel maps, streamed aggregation, metrics."""

from revnets.uncertainty.maps import (
    expected_cross_entropy,
    mutual_information,
    predictive_entropy,
    sample_variance,
)
from revnets.uncertainty.metrics import dice, generalized_energy_distance, hungarian_matched_iou, ncc
from revnets.uncertainty.streaming import StreamingUncertainty

__all__ = [
    "StreamingUncertainty",
    "dice",
    "expected_cross_entropy",
    "generalized_energy_distance",
    "hungarian_matched_iou",
    "mutual_information",
    "ncc",
    "predictive_entropy",
    "sample_variance",
]
