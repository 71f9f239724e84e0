"""Small configurations of each twin's MONAI arguments, 2D and 3D, and the two networks built from them."""

from __future__ import annotations

from monai.networks import nets as monai_nets
from torch import nn

from revnets import nets

NAMES = ("SegResNet", "DynUNet", "UNet")


def config(name: str, spatial_dims: int) -> dict:
    """MONAI constructor arguments of a small ``name`` with dropout (so samples differ), 3 classes."""
    strides = [1, 2, 2, 2]
    return {
        "SegResNet": {"spatial_dims": spatial_dims, "init_filters": 8, "in_channels": 2, "out_channels": 3,
                      "blocks_down": (1, 2, 2), "blocks_up": (1, 1), "dropout_prob": 0.2},
        "DynUNet": {"spatial_dims": spatial_dims, "in_channels": 2, "out_channels": 3, "kernel_size": [3] * 4,
                    "strides": strides, "upsample_kernel_size": strides[1:], "filters": [8, 16, 16, 24],
                    "dropout": 0.1, "deep_supervision": True, "deep_supr_num": 2, "res_block": True},
        "UNet": {"spatial_dims": spatial_dims, "in_channels": 2, "out_channels": 3, "channels": (8, 16, 24),
                 "strides": (2, 2), "num_res_units": 3, "dropout": 0.1},
    }[name]


def twin(name: str, spatial_dims: int = 3, **kwargs) -> nn.Module:
    """``revnets.nets.<name>`` at :func:`config`, ``kwargs`` added (e.g. ``form``)."""
    return getattr(nets, name)(**config(name, spatial_dims), **kwargs)


def monai_net(name: str, spatial_dims: int = 3) -> nn.Module:
    """``monai.networks.nets.<name>`` at :func:`config`."""
    return getattr(monai_nets, name)(**config(name, spatial_dims))


DEFAULTS_3D = {
    "SegResNet": {"spatial_dims": 3, "init_filters": 8, "in_channels": 1, "out_channels": 3,
                  "blocks_down": (1, 2, 2, 4), "blocks_up": (1, 1, 1)},
    "DynUNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "kernel_size": [[3, 3, 3]] * 5,
                "strides": [[1, 1, 1]] + [[2, 2, 2]] * 4, "upsample_kernel_size": [[2, 2, 2]] * 4},
    "UNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": (16, 32, 64, 128, 256),
             "strides": (2, 2, 2, 2), "num_res_units": 2},
}
"""The 3D configurations of scripts/benchmark_monai_twins.py: MONAI's SegResNet defaults, an nnU-Net-style
DynUNet (five levels, filters 32 to 320), MONAI's tutorial UNet."""
