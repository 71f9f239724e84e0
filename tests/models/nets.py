"""Small networks of every model and form, shared by the model tests."""

from __future__ import annotations

from torch import nn

from revnets.core import ReversibleSequence
from revnets.models import InvResUNet, RevMBConvUNet

NETS = {"invres": InvResUNet, "revmbconv": RevMBConvUNet}

FORMS = {
    "invres": {
        "reversible": {"mode": "partial"},
        "full": {"mode": "full"},
        "plain": {"mode": "plain"},
        "checkpointed": {"mode": "plain", "checkpointing": True},
    },
    "revmbconv": {
        "reversible": {"reversible": True},
        "plain": {"reversible": False},
        "checkpointed": {"reversible": False, "checkpointing": True},
    },
}

NET_FORMS = [(net, form) for net, forms in FORMS.items() for form in forms]

IN_CHANNELS, OUT_CHANNELS = 2, 3
SMALL = {"channels": (8, 16, 32), "blocks": 1}


def small_net(
    net: str, spatial_dims: int, form: str = "reversible", out_channels: int = OUT_CHANNELS, **kwargs
) -> nn.Module:
    """A 3-level net (sizes divisible by 4) with one coupling per level, in the given form."""
    options = {**SMALL, **FORMS[net][form], **kwargs}
    return NETS[net](spatial_dims, IN_CHANNELS, out_channels, **options)


def set_memory_saving(model: nn.Module, memory_saving: bool) -> nn.Module:
    """Switch every sequence of ``model`` between the memory-saving backward and plain autograd."""
    for module in model.modules():
        if isinstance(module, ReversibleSequence):
            module.memory_saving = memory_saving
    return model
