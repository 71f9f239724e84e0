"""SegResNetVAE's twin: MONAI's outputs in both modes, exact gradients of segmentation plus VAE loss."""

from __future__ import annotations

import pytest
import torch
from monai.networks import nets as monai_nets

from revnets import nets
from revnets.models import SegmentationModel

ARGUMENTS = {"input_image_size": (16, 16, 16), "spatial_dims": 3, "init_filters": 8, "in_channels": 2,
             "out_channels": 3, "blocks_down": (1, 2, 2), "blocks_up": (1, 1), "vae_nz": 32,
             "vae_estimate_std": True, "dropout_prob": 0.1}


def test_outputs_are_monais_in_training_and_evaluation_mode() -> None:
    x = torch.randn(2, 2, 16, 16, 16)
    ours, theirs = nets.SegResNetVAE(**ARGUMENTS), monai_nets.SegResNetVAE(**ARGUMENTS)
    (logits, vae), (monai_logits, monai_vae) = ours(x), theirs(x)
    assert logits.shape == monai_logits.shape and vae.shape == monai_vae.shape == ()
    assert ours.eval()(x)[1] is None and ours(x)[0].shape == theirs.eval()(x)[0].shape
    ratio = sum(p.numel() for p in ours.parameters()) / sum(p.numel() for p in theirs.parameters())
    assert abs(ratio - 1) <= 0.05


@pytest.mark.parametrize("form", ["reversible", "checkpointed"])
def test_gradients_of_segmentation_and_vae_loss_equal_the_plain_form(form: str) -> None:
    plain = nets.SegResNetVAE(**ARGUMENTS, form="plain").double()
    other = nets.SegResNetVAE(**ARGUMENTS, form=form).double()
    other.load_state_dict(plain.state_dict())
    x = torch.randn(2, 2, 16, 16, 16, dtype=torch.float64)
    labels = torch.randint(0, 3, (2, 1, 16, 16, 16))

    def gradients(net: torch.nn.Module) -> torch.Tensor:
        torch.manual_seed(1)
        net.training_loss(x, labels).total.backward()
        return torch.cat([p.grad.flatten() for p in net.parameters()])

    expected, actual = gradients(plain), gradients(other)
    assert ((actual - expected).norm() / expected.norm()).item() <= 1e-9


def test_is_a_segmentation_model_whose_samples_are_segmentations() -> None:
    net = nets.SegResNetVAE(**ARGUMENTS)
    assert isinstance(net, SegmentationModel)
    samples = net.sample(torch.randn(1, 2, 16, 16, 16), num_samples=2)
    assert samples.shape == (2, 1, 3, 16, 16, 16)
    assert net.training  # sampling leaves the mode as it was
