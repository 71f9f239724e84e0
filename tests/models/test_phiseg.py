"""PHiSeg and RevPHiSeg: shapes, the exact reversible twin, the memory ratio, and learning a multi-rater task."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from revnets.core.memory import saved_bytes
from revnets.data.slices import mni_multirater_slices
from revnets.models import PHiSeg, RevPHiSeg
from revnets.models.phiseg import gaussian_kl

SMALL = dict(channels=(8, 16, 32, 32, 32), latent_levels=3)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("couplings", [False, True])
def test_shapes_of_forward_sample_reconstruct_and_loss(spatial_dims: int, couplings: bool) -> None:
    torch.manual_seed(0)
    model = PHiSeg(spatial_dims, in_channels=2, out_channels=3, couplings=couplings, **SMALL)
    size = (32,) * spatial_dims
    x, y = torch.randn(2, 2, *size), torch.randint(0, 3, (2, 4, *size))
    assert model(x).shape == (2, 3, *size)
    assert model.reconstruct(x, y[:, :1]).shape == (2, 3, *size)
    samples = model.eval().sample(x, 5, batch_size=2)
    assert samples.shape == (5, 2, 3, *size)
    torch.testing.assert_close(samples.sum(2), torch.ones(5, 2, *size))
    loss = model.train().training_loss(x, y)
    assert loss.terms["reconstruction"].shape == loss.terms["kl"].shape == (3,)
    assert loss.total.isfinite() and (loss.terms["kl"] >= 0).all()
    loss.total.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_latents_follow_the_reference_layout() -> None:
    model = PHiSeg(2, **SMALL)
    assert model.size_divisor == 16 and model.latent_scales == [4, 8, 16]
    noise = model.latent_noise(torch.zeros(3, 1, 64, 32), num_samples=2)
    assert [tuple(n.shape) for n in noise] == [(2, 3, 2, 16, 8), (2, 3, 2, 8, 4), (2, 3, 2, 4, 2)]
    assert RevPHiSeg(2).couplings and not PHiSeg(2).couplings
    assert RevPHiSeg(2).form == "reversible" and PHiSeg(2).form == "plain"
    assert PHiSeg().channels == (32, 64, 128, 192, 192, 192, 192) and PHiSeg().latent_levels == 5


def test_explicit_noise_fixes_the_samples_and_the_prior_encoder_runs_once() -> None:
    torch.manual_seed(0)
    model = RevPHiSeg(2, **SMALL).eval()
    x = torch.randn(1, 1, 32, 32)
    noise = model.latent_noise(x, 4)
    calls = []
    model.prior.encoder[0].register_forward_hook(lambda *_: calls.append(1))
    first, second = model.sample(x, 4, noise=noise, batch_size=3), model.sample(x, 4, noise=noise, batch_size=4)
    torch.testing.assert_close(first, second)
    assert len(calls) == 2  # once per call, not once per sample
    assert not torch.allclose(first[0], first[1])
    one = torch.softmax(model.decode_prior(model.encode_prior(x), [n[2] for n in noise]), dim=1)
    torch.testing.assert_close(one, first[2])


def _training_step(model: PHiSeg, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model.training_loss(x, y).total


@pytest.mark.parametrize(
    "spatial_dims, size, channels",
    [(2, 128, (32, 64, 128, 192, 192, 192, 192)), (3, 64, (8, 16, 32, 48, 48, 48, 48))],
    ids=["2d-128-reference-widths", "3d-64"],
)
def test_reversible_form_saves_at_most_0_6x_the_bytes_of_phiseg(spatial_dims: int, size: int, channels: tuple) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 1, *(size,) * spatial_dims)
    y = torch.randint(0, 2, (2, 1, *(size,) * spatial_dims))
    plain = saved_bytes(_training_step, PHiSeg(spatial_dims, channels=channels), x, y)
    reversible = saved_bytes(_training_step, RevPHiSeg(spatial_dims, channels=channels), x, y)
    assert reversible <= 0.6 * plain, f"{reversible / plain:.2f}x"


def test_gaussian_kl_matches_torch_distributions() -> None:
    mu_q, mu_p = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    sigma_q, sigma_p = torch.rand(2, 3, 4) + 0.1, torch.rand(2, 3, 4) + 0.1
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu_q, sigma_q), torch.distributions.Normal(mu_p, sigma_p)
    )
    torch.testing.assert_close(gaussian_kl(mu_q, sigma_q, mu_p, sigma_p), expected.sum(), rtol=1e-5, atol=1e-5)
    assert gaussian_kl(mu_q, sigma_q, mu_q, sigma_q).abs() < 1e-5


@pytest.mark.parametrize("couplings", [False, True])
def test_every_level_starts_at_the_standard_normal_so_the_kl_starts_at_zero(couplings: bool) -> None:
    torch.manual_seed(0)
    model = PHiSeg(2, channels=(8, 16, 32, 32, 64, 64), latent_levels=5, couplings=couplings)
    x, y = torch.rand(2, 1, 128, 128), (torch.rand(2, 1, 128, 128) > 0.9).long()
    prior = model.prior(x)
    for mu, sigma in zip(prior.mu, prior.sigma):
        torch.testing.assert_close(mu, torch.zeros_like(mu))
        torch.testing.assert_close(sigma, torch.ones_like(sigma))
    loss = model.training_loss(x, y)
    assert loss.terms["kl"].abs().max() < 1e-6
    loss.total.backward()
    assert all(head.weight.grad.abs().sum() > 0 for head in [*model.posterior.mu, *model.posterior.sigma])


def test_bad_inputs_are_named() -> None:
    model = PHiSeg(2, **SMALL)
    with pytest.raises(ValueError, match="divisible by 16"):
        model(torch.randn(1, 1, 40, 32))
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\)"):
        model(torch.randn(1, 2, 32, 32))
    with pytest.raises(ValueError, match="do not match"):
        model.training_loss(torch.randn(1, 1, 32, 32), torch.randint(0, 2, (1, 1, 16, 16)))
    with pytest.raises(ValueError, match="latent_levels"):
        PHiSeg(2, channels=(8, 16), latent_levels=3)


@pytest.mark.slow
@pytest.mark.parametrize("couplings", [False, True], ids=["phiseg", "revphiseg"])
def test_training_on_the_multirater_set_lowers_the_loss_and_samples_vary_where_raters_disagree(couplings: bool) -> None:
    torch.manual_seed(0)
    images, labels = mni_multirater_slices(size=64, spacing=3.0)
    model = PHiSeg(2, out_channels=3, couplings=couplings, **SMALL)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        batch = torch.randint(0, len(images), (8,))
        optimiser.zero_grad()
        loss = model.training_loss(images[batch], labels[batch]).total
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    samples = model.eval().sample(images[::2], 8)
    spread = samples.std(0).sum(1)
    raters = labels[::2]
    disagree = (raters != raters[:, :1]).any(1)
    assert spread[disagree].mean() > 1.5 * spread[~disagree].mean()
