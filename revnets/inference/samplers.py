"""Window samplers: how each kind of model draws samples for one sliding window of a volume."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from revnets.inference.inferer import WindowSampler
from revnets.models.protocol import LatentNoiseModel, Sampling, SegmentationModel
from revnets.models.sampling import sample_probabilities


class DropoutFlipSampler:
    """Samples of a deterministic network by MC dropout and test-time flips (sample ``i`` uses flip ``i``).

    Args:
        network: a :class:`~revnets.models.SegmentationModel` sampled by dropout and flips.
        flips: cycle through the flips of the spatial axes.
    """

    def __init__(self, network: SegmentationModel, flips: bool = True) -> None:
        self.network = network
        self.flips = flips

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor:
        """``(b, C_in, *roi) -> (count, b, C, *roi)``."""
        return sample_probabilities(
            cast(nn.Module, self.network), patch, count, self.network.output_activation, flips=self.flips, first=first
        )


class LatentNoiseSampler:
    """Samples of a PHiSeg-type model whose latent noise is drawn once per sample for the whole volume.

    Sample ``i`` uses one standard normal field per latent level, at that level's resolution and covering the
    whole (padded) volume, seeded by ``(seed, i)``; each window reads the part of it under the window. So one
    sample is one coherent segmentation: overlapping windows draw the same latent values and do not disagree
    at their seams. A window whose start is not on a level's grid reads the cells it starts in (the
    preprocessing should pad the volume to a multiple of the network's ``size_divisor``, which puts every
    window on the grid when the window step is a multiple of it too).

    Per window and pass, the prior's encoder runs once and only its latent blocks and the likelihood run
    per sample (:meth:`~revnets.models.PHiSeg.sample`).

    Args:
        network: a :class:`~revnets.models.LatentNoiseModel`.
        volume_shape: spatial shape of the preprocessed volume.
        roi_size: window size (MONAI pads a volume smaller than the window up to it).
        seed: seed of the noise.
    """

    def __init__(
        self, network: LatentNoiseModel, volume_shape: Sequence[int], roi_size: Sequence[int], seed: int
    ) -> None:
        self.network = network
        self.seed = seed
        padded = [max(v, r) for v, r in zip(volume_shape, roi_size)]
        self.grids = [[math.ceil(p / scale) for p in padded] for scale in network.latent_scales]
        self._noise: dict[int, list[Tensor]] = {}

    def noise(self, index: int) -> list[Tensor]:
        """Whole-volume noise of sample ``index``: per level ``(latent_channels, *grid)``."""
        if index not in self._noise:
            state = np.random.SeedSequence([self.seed, index]).generate_state(1)[0]
            generator = torch.Generator().manual_seed(int(state))
            self._noise[index] = [
                torch.randn((self.network.latent_channels, *grid), generator=generator) for grid in self.grids
            ]
        return self._noise[index]

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor:
        """``(b, C_in, *roi) -> (count, b, C, *roi)``."""
        starts = [s.start or 0 for s in location[-len(self.grids[0]) :]]
        batch = patch.shape[0]
        noise = []
        for level, scale in enumerate(self.network.latent_scales):
            size = [r // scale for r in patch.shape[2:]]
            corner = [min(s // scale, g - n) for s, g, n in zip(starts, self.grids[level], size)]
            window = tuple(slice(c, c + n) for c, n in zip(corner, size))
            fields = torch.stack([self.noise(i)[level][(slice(None), *window)] for i in range(first, first + count)])
            noise.append(fields[:, None].expand(count, batch, *fields.shape[1:]).to(patch))
        return self.network.sample(patch, count, noise=noise)


class SliceWiseSampler:
    """Samples of a 2D model over a 3D volume, slice by slice along the last spatial axis.

    A window ``(b, C_in, h, w, d)`` becomes ``b * d`` images ``(b * d, C_in, h, w)`` for the 2D model's own
    sampler, built for the volume's in-plane shape. Its latent noise depends on the in-plane position and the
    sample index only, so sample ``i`` draws the same noise on every slice: neighbouring slices of one sample
    come from the same latent, and one sample is one coherent segmentation of the volume rather than a stack
    of independent draws.

    Args:
        inner: the 2D model's window sampler.
    """

    def __init__(self, inner: WindowSampler) -> None:
        self.inner = inner

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor:
        """``(b, C_in, h, w, d) -> (count, b, C, h, w, d)``."""
        b, c, h, w, d = patch.shape
        slices = patch.permute(0, 4, 1, 2, 3).reshape(b * d, c, h, w)
        samples = self.inner(slices, location[:-1], first, count)
        return samples.reshape(count, b, d, -1, h, w).permute(0, 1, 3, 4, 5, 2)


def window_sampler(
    network: SegmentationModel, volume_shape: Sequence[int], roi_size: Sequence[int], seed: int
) -> WindowSampler:
    """The sampler that fits ``network``'s declared :attr:`~revnets.models.SegmentationModel.sampling`.

    A 2D model over a 3D volume samples slice by slice along the last axis (:class:`SliceWiseSampler`).

    Args:
        network: a :class:`~revnets.models.SegmentationModel`.
        volume_shape: spatial shape of the whole (preprocessed) volume.
        roi_size: sliding-window size.
        seed: seed of the per-sample latent noise.
    """
    if not isinstance(network, SegmentationModel):
        raise TypeError(f"{type(network).__name__} is not a revnets SegmentationModel.")
    if network.spatial_dims == len(volume_shape) - 1:
        return SliceWiseSampler(window_sampler(network, volume_shape[:-1], roi_size[:-1], seed))
    if network.sampling is Sampling.LATENT_NOISE:
        if not isinstance(network, LatentNoiseModel):
            raise TypeError(f"{type(network).__name__} declares latent-noise sampling but is not a LatentNoiseModel.")
        return LatentNoiseSampler(network, volume_shape, roi_size, seed)
    return DropoutFlipSampler(network)
