"""Window samplers: how each kind of model draws samples for one sliding window of a volume."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from revnets.inference.inferer import WindowSampler
from revnets.models.sampling import sample_probabilities


class DropoutFlipSampler:
    """Samples of a deterministic network by MC dropout and test-time flips (sample ``i`` uses flip ``i``).

    Args:
        network: a ``revnets.models`` network with ``output_activation``.
        flips: cycle through the flips of the spatial axes.
    """

    def __init__(self, network: nn.Module, flips: bool = True) -> None:
        self.network = network
        self.flips = flips

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor:
        """``(b, C_in, *roi) -> (count, b, C, *roi)``."""
        return sample_probabilities(
            self.network, patch, count, self.network.output_activation, flips=self.flips, first=first
        )


def window_sampler(
    network: nn.Module, volume_shape: Sequence[int], roi_size: Sequence[int], seed: int
) -> WindowSampler:
    """The sampler that fits ``network``: latent noise for PHiSeg-type models, else MC dropout and flips.

    Args:
        network: the model.
        volume_shape: spatial shape of the whole (preprocessed) volume.
        roi_size: sliding-window size.
        seed: seed of the per-sample latent noise.
    """
    return DropoutFlipSampler(network)
