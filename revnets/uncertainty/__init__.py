"""Uncertainty from samples: per-voxel maps, streamed aggregation, metrics."""

from revnets.uncertainty.streaming import StreamingUncertainty

__all__ = ["StreamingUncertainty"]
