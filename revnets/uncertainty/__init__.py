"""Uncertainty from samples ``(N, B, C, *spatial)``: per-voxel maps, streamed aggregation, metrics, calibration."""

from revnets.uncertainty.calibration import (
    ReliabilityDiagram,
    brier_score,
    expected_calibration_error,
    reliability_diagram,
)
from revnets.uncertainty.disagreement import (
    auroc,
    boundary_proximity,
    rater_disagreement,
    rater_soft_labels,
    spearman,
    tissue_neighbourhood,
)
from revnets.uncertainty.maps import (
    class_argmax,
    expected_cross_entropy,
    mutual_information,
    predictive_entropy,
    sample_variance,
)
from revnets.uncertainty.metrics import (
    dice,
    generalized_energy_distance,
    hungarian_matched_iou,
    mean_pairwise_distance,
    ncc,
)
from revnets.uncertainty.streaming import StreamingUncertainty

__all__ = [
    "ReliabilityDiagram",
    "StreamingUncertainty",
    "auroc",
    "boundary_proximity",
    "brier_score",
    "class_argmax",
    "dice",
    "expected_calibration_error",
    "expected_cross_entropy",
    "generalized_energy_distance",
    "hungarian_matched_iou",
    "mean_pairwise_distance",
    "mutual_information",
    "ncc",
    "predictive_entropy",
    "rater_disagreement",
    "rater_soft_labels",
    "reliability_diagram",
    "sample_variance",
    "spearman",
    "tissue_neighbourhood",
]
