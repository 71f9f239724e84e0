"""PHiSeg-type models sample whole volumes coherently: every window of one sample reads the same noise field."""

from __future__ import annotations

import torch

from revnets.inference import SamplingInferer
from revnets.inference.samplers import LatentNoiseSampler, window_sampler
from revnets.models import InvResUNet, RevPHiSeg


class _NoiseEcho(torch.nn.Module):
    """Stands in for PHiSeg: returns the finest noise level, upsampled to the window, as its 'sample'."""

    latent_scales = [4, 8]
    latent_channels = 2

    def sample(self, x: torch.Tensor, num_samples: int, noise: list[torch.Tensor]) -> torch.Tensor:
        assert [n.shape[0] for n in noise] == [num_samples] * 2
        assert [tuple(n.shape[3:]) for n in noise] == [tuple(s // f for s in x.shape[2:]) for f in self.latent_scales]
        echo = noise[0].flatten(0, 1).repeat_interleave(4, 2).repeat_interleave(4, 3).repeat_interleave(4, 4)
        return echo.unflatten(0, noise[0].shape[:2])


def test_windows_of_one_sample_read_one_noise_field() -> None:
    volume = (32, 48, 32)
    sampler = LatentNoiseSampler(_NoiseEcho(), volume, (16, 16, 16), seed=3)
    inferer = SamplingInferer((16, 16, 16), size_divisor=8, overlap=0.5, mode="constant", samples_per_pass=2)
    chunks = []

    class Collect:
        def update(self, samples: torch.Tensor) -> None:
            chunks.append(samples)

    inferer.stream(torch.zeros(1, 1, *volume), sampler, num_samples=3, num_classes=2, consumer=Collect())
    stitched = torch.cat(chunks)  # (3, 1, 2, *volume): windows averaged where they overlap
    for i in range(3):
        field = sampler.noise(i)[0]  # (2, 8, 12, 8)
        expected = field.repeat_interleave(4, 1).repeat_interleave(4, 2).repeat_interleave(4, 3)
        torch.testing.assert_close(stitched[i, 0], expected)  # averaging identical values changes nothing
    assert not torch.allclose(stitched[0], stitched[1])
    again = LatentNoiseSampler(_NoiseEcho(), volume, (16, 16, 16), seed=3)
    torch.testing.assert_close(again.noise(2)[1], sampler.noise(2)[1])
    assert not torch.allclose(
        LatentNoiseSampler(_NoiseEcho(), volume, (16, 16, 16), seed=4).noise(2)[1], sampler.noise(2)[1]
    )


def test_window_sampler_picks_latent_noise_for_phiseg_and_dropout_for_the_others() -> None:
    phiseg = RevPHiSeg(3, channels=(4, 8, 8), latent_levels=2)
    assert isinstance(window_sampler(phiseg, (32, 32, 32), (16, 16, 16), 0), LatentNoiseSampler)
    invres = InvResUNet(3, 1, 2, channels=(4, 8), blocks=1)
    assert not isinstance(window_sampler(invres, (32, 32, 32), (16, 16, 16), 0), LatentNoiseSampler)


def test_real_phiseg_volume_samples_are_probabilities() -> None:
    torch.manual_seed(0)
    model = RevPHiSeg(3, out_channels=3, channels=(4, 8, 8), latent_levels=2, norm="instance").eval()
    volume = (24, 40, 24)
    inferer = SamplingInferer((16, 16, 16), size_divisor=model.size_divisor, overlap=0.25)
    sampler = window_sampler(model, volume, inferer.window(volume), seed=0)
    chunks = []

    class Collect:
        def update(self, samples: torch.Tensor) -> None:
            chunks.append(samples)

    inferer.stream(torch.randn(1, 1, *volume), sampler, num_samples=4, num_classes=3, consumer=Collect())
    samples = torch.cat(chunks)
    assert samples.shape == (4, 1, 3, *volume)
    torch.testing.assert_close(samples.sum(2), torch.ones(4, 1, *volume))
    assert not torch.allclose(samples[0], samples[1])
