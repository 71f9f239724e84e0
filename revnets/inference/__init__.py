"""Whole-volume sampling inference: sliding windows, streamed uncertainty, outputs in the input's space."""

from revnets.inference.inferer import SamplingInferer
from revnets.inference.predictor import OUTPUTS, Predictor

__all__ = ["OUTPUTS", "Predictor", "SamplingInferer"]
