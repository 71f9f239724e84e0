"""A few dozen steps on a tiny synthetic volume (a bright sphere to segment) reduce the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from revnets.models.invres import InvResOutput
from tests.models.nets import small_net


def _sphere(size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy ``(1, 2, size, size, size)`` image of a bright sphere and its ``(1, size, size, size)`` mask."""
    grid = torch.stack(torch.meshgrid(*[torch.arange(size, dtype=torch.float32)] * 3, indexing="ij"))
    mask = ((grid - size / 2 + 0.5).square().sum(0) < (size / 4) ** 2).long()[None]
    image = mask.float()[:, None].repeat(1, 2, 1, 1, 1) + 0.3 * torch.randn(1, 2, size, size, size)
    return image, mask


def _losses(model: torch.nn.Module, loss_fn, steps: int = 30) -> list[float]:
    image, mask = _sphere()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn(model(image), mask, image)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


def _cross_entropy(logits: torch.Tensor, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, mask)


@pytest.mark.parametrize("net", ["invres", "invres-full", "revmbconv"])
def test_training_steps_on_a_sphere_reduce_the_loss(net: str) -> None:
    losses = _losses(small_net(net, 3, out_channels=2), _cross_entropy)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


def test_training_with_the_vae_branch_reduces_the_combined_loss() -> None:
    model = small_net("invres", 3, out_channels=2, vae=True)

    def vae_loss(output: InvResOutput, mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return model.loss_of_output(output, image, mask[:, None], lambda lg, y: F.cross_entropy(lg, y[:, 0])).total

    losses = _losses(model, vae_loss)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


def test_vae_forward_returns_all_terms_in_training_and_logits_in_evaluation() -> None:
    model = small_net("invres", 3, vae=True, vae_latent_channels=4)
    x = torch.randn(2, 2, 8, 12, 16)
    output = model(x)
    assert isinstance(output, InvResOutput)
    assert output.logits.shape == (2, 3, 8, 12, 16)
    assert output.reconstruction.shape == x.shape
    assert output.mu.shape == output.logvar.shape == (2, 4, 2, 3, 4)
    model.eval()
    assert model(x).shape == (2, 3, 8, 12, 16)


def test_vae_loss_is_segmentation_loss_plus_weighted_reconstruction_and_kl() -> None:
    model = small_net("invres", 2, vae=True, vae_weights=(0.5, 0.25))
    logits, target, image = torch.randn(1, 3, 4, 4), torch.randint(0, 3, (1, 1, 4, 4)), torch.randn(1, 2, 4, 4)
    reconstruction, mu, logvar = torch.randn(1, 2, 4, 4), torch.randn(1, 4, 2, 2), torch.randn(1, 4, 2, 2)

    def ce(lg: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(lg, y[:, 0])

    loss = model.loss_of_output(InvResOutput(logits, reconstruction, mu, logvar), image, target, ce)
    kl = 0.5 * (mu.square() + logvar.exp() - 1 - logvar).mean()
    expected = ce(logits, target) + 0.5 * F.mse_loss(reconstruction, image) + 0.25 * kl
    assert torch.allclose(loss.total, expected)
    assert set(loss.terms) == {"segmentation", "reconstruction", "kl"}
    assert torch.allclose(model.loss_of_output(logits, image, target, ce).total, ce(logits, target))
