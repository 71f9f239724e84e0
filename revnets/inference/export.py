"""One deterministic forward pass of a revnets model, in the form TorchScript tracing and ONNX export accept.

An exported model is not the sampling: it is one pass in evaluation mode (dropout off, no flips; for a
PHiSeg-type model the prior's mean, zero latent noise) giving logits ``(B, out_channels, *spatial)``.

The reversible engine is Python (an autograd ``Function`` that rebuilds activations, random-state replay,
shape checks that name the offending module), so the networks are not TorchScript-scriptable; tracing is the
export route. The wrapper runs the model with gradients enabled but none required, which takes the
out-of-place code paths (the no-grad fast path writes into views of one output buffer, which the ONNX
exporter does not follow). Shapes are traced as sizes, so the exported model runs at other sizes (multiples
of ``size_divisor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import Tensor, nn

from revnets.models.phiseg import PHiSeg
from revnets.models.protocol import Sampling


class DeterministicPass(nn.Module):
    """Wraps ``network`` for export: ``forward(x)`` is one deterministic pass, ``(B, C_in, *spatial)`` to logits
    ``(B, out_channels, *spatial)``. Weights load into the wrapped network (``load_state_dict`` takes the
    network's own state dict, as ``models/model.pt`` holds it), so MONAI's ``ckpt_export`` can load a bundle's
    checkpoint into it.

    Args:
        network: a :class:`~revnets.models.SegmentationModel`; it is put in evaluation mode and its parameters
            stop requiring gradients.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network.eval().requires_grad_(False)
        self.latent_levels = len(network.latent_scales) if network.sampling is Sampling.LATENT_NOISE else 0

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        return self.network.load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, x: Tensor) -> Tensor:
        with torch.enable_grad():
            if self.latent_levels:
                zero_noise = [x.new_zeros(1)] * self.latent_levels  # broadcast: every latent at its mean
                phiseg = cast(PHiSeg, self.network)
                return phiseg.decode_prior(phiseg.encode_prior(x), zero_noise)
            return self.network(x)
