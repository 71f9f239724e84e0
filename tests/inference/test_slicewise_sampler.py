"""A 2D model over a 3D volume: slice by slice, with one latent noise per sample shared by every slice."""

from __future__ import annotations

import torch

from revnets.inference.samplers import SliceWiseSampler, window_sampler
from revnets.models import RevPHiSeg


def _network() -> RevPHiSeg:
    torch.manual_seed(0)
    network = RevPHiSeg(spatial_dims=2, in_channels=1, out_channels=2, channels=[4, 8, 8], latent_levels=2)
    return network.eval()


def test_a_2d_model_on_a_volume_samples_slice_wise() -> None:
    assert isinstance(window_sampler(_network(), (32, 32, 5), (32, 32, 5), seed=0), SliceWiseSampler)


def test_one_sample_uses_the_same_noise_on_every_slice_and_samples_differ() -> None:
    network = _network()
    sampler = window_sampler(network, (32, 32, 4), (32, 32, 4), seed=0)
    image = torch.rand(1, 1, 32, 32, 1).expand(1, 1, 32, 32, 4)  # four identical slices
    location = (slice(0, 1), slice(None), slice(0, 32), slice(0, 32), slice(0, 4))
    with torch.no_grad():
        samples = sampler(image, location, first=0, count=3)
    assert samples.shape == (3, 1, 2, 32, 32, 4)
    for slice_index in range(1, 4):
        torch.testing.assert_close(samples[..., slice_index], samples[..., 0])
    assert not torch.allclose(samples[0], samples[1])


def test_slice_wise_samples_are_those_of_the_2d_model_slice_by_slice() -> None:
    network = _network()
    volume = torch.rand(1, 1, 32, 32, 3)
    location = (slice(0, 1), slice(None), slice(0, 32), slice(0, 32), slice(0, 3))
    in_plane = window_sampler(network, (32, 32), (32, 32), seed=5)
    with torch.no_grad():
        samples = window_sampler(network, (32, 32, 3), (32, 32, 3), seed=5)(volume, location, first=2, count=2)
        for k in range(3):
            expected = in_plane(volume[..., k], location[:-1], first=2, count=2)
            torch.testing.assert_close(samples[..., k], expected)
