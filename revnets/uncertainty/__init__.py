"""Uncertainty from samples ``(N, B, C, *spatial)``: per-voxel maps, streamed aggregation, metrics."""

from revnets.uncertainty.maps import (
    expected_cross_entropy,
    mutual_information,
    predictive_entropy,
    sample_variance,
)
from revnets.uncertainty.streaming import StreamingUncertainty

__all__ = [
    "StreamingUncertainty",
    "expected_cross_entropy",
    "mutual_information",
    "predictive_entropy",
    "sample_variance",
]
