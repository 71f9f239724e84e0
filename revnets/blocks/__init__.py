"""Residual functions used as f and g inside couplings, spatial_dims-generic."""

from revnets.blocks.norm import NORMS, norm_layer
from revnets.blocks.residual import ResidualFunction

__all__ = ["NORMS", "ResidualFunction", "norm_layer"]
