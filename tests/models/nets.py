"""Small networks of every U-Net and form, shared by the model tests (the forms come from revnets' catalog)."""

from __future__ import annotations

from revnets.core import Form
from revnets.models.catalog import MODEL_FORMS, build
from revnets.models.protocol import SegmentationModel

NETS = ("invres", "invres-full", "revmbconv")
NET_FORMS = [(net, form) for net, form in MODEL_FORMS if net in NETS]

IN_CHANNELS, OUT_CHANNELS = 2, 3
SMALL = {"channels": (8, 16, 32), "blocks": 1}


def small_net(
    net: str, spatial_dims: int, form: Form | str = Form.REVERSIBLE, out_channels: int = OUT_CHANNELS, **kwargs
) -> SegmentationModel:
    """A 3-level net (sizes divisible by 4) with one coupling per level, in the given form."""
    return build(net, form, spatial_dims, IN_CHANNELS, out_channels, **{**SMALL, **kwargs})
