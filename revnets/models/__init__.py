"""Segmentation networks built from the reversible engine, each with a reversible form and its plain twin."""

from revnets.models.invres import InvResUNet
from revnets.models.phiseg import PHiSeg, RevPHiSeg
from revnets.models.revmbconv import RevMBConvUNet

__all__ = ["InvResUNet", "PHiSeg", "RevMBConvUNet", "RevPHiSeg"]
