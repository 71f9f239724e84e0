"""Every model of :mod:`revnets.models` by name, and the forms each can be built in: the one table that tests,
benchmarks and tools iterate over."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from revnets.core.form import Form
from revnets.models.invres import InvResUNet
from revnets.models.phiseg import PHiSeg, RevPHiSeg
from revnets.models.protocol import SegmentationModel
from revnets.models.revmbconv import RevMBConvUNet

MODELS: dict[str, Callable[..., SegmentationModel]] = {
    "invres": partial(InvResUNet, variant="partial"),
    "invres-full": partial(InvResUNet, variant="full"),
    "revmbconv": RevMBConvUNet,
    "phiseg": PHiSeg,
    "revphiseg": RevPHiSeg,
}
"""Constructors by name; each takes ``(spatial_dims, in_channels, out_channels, ..., form=...)``."""

WITHOUT_COUPLINGS = {"phiseg"}
"""Models built of ordinary conv stacks: they have a plain and a checkpointed form, no reversible one."""


def forms_of(name: str) -> tuple[Form, ...]:
    """The forms model ``name`` can be built in."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {sorted(MODELS)}.")
    if name in WITHOUT_COUPLINGS:
        return (Form.PLAIN, Form.CHECKPOINTED)
    return tuple(Form)


MODEL_FORMS: list[tuple[str, Form]] = [(name, form) for name in MODELS for form in forms_of(name)]
"""Every (model name, form) pair that can be built."""


def build(name: str, form: Form | str, *args: Any, **kwargs: Any) -> SegmentationModel:
    """Model ``name`` in ``form`` with the constructor's other arguments."""
    return MODELS[name](*args, form=form, **kwargs)
