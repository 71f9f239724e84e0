"""revnets: memory-efficient reversible networks for 3D medical image segmentation with uncertainty."""

__version__ = "0.1.0"
