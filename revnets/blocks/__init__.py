"""Building blocks, spatial_dims-generic: residual functions used as f and g inside couplings, conv stacks."""

from revnets.blocks.conv_stack import ConvStack, ConvUnit
from revnets.blocks.mbconv import MBConv, SqueezeExcitation
from revnets.blocks.norm import NORMS, norm_layer
from revnets.blocks.residual import ResidualFunction

__all__ = ["NORMS", "ConvStack", "ConvUnit", "MBConv", "ResidualFunction", "SqueezeExcitation", "norm_layer"]
