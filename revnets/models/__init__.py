"""Segmentation networks built from the reversible engine, each in the three forms of :class:`~revnets.core.Form`.

Every model satisfies :class:`SegmentationModel` (see :mod:`revnets.models.protocol`).
"""

from revnets.models.invres import InvResUNet
from revnets.models.phiseg import PHiSeg, RevPHiSeg
from revnets.models.protocol import LatentNoiseModel, Sampling, SegmentationModel, TrainingLoss
from revnets.models.revmbconv import RevMBConvUNet

__all__ = [
    "InvResUNet",
    "LatentNoiseModel",
    "PHiSeg",
    "RevMBConvUNet",
    "RevPHiSeg",
    "Sampling",
    "SegmentationModel",
    "TrainingLoss",
]
