"""sample(): (N, B, C, *spatial) probabilities from MC dropout and test-time flips, reproducible by seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from revnets.models.sampling import flip_cycle, sample_probabilities
from tests.models.nets import IN_CHANNELS, NETS, OUT_CHANNELS, small_net


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("net", NETS)
def test_softmax_samples_are_probabilities_and_reproducible_with_a_seed(net: str, spatial_dims: int) -> None:
    model = small_net(net, spatial_dims, dropout=0.5, norm="batch")
    x = torch.randn(2, IN_CHANNELS, *[8] * spatial_dims)
    torch.manual_seed(1)
    samples = model.sample(x, 5)
    torch.manual_seed(1)
    again = model.sample(x, 5)
    assert samples.shape == (5, 2, OUT_CHANNELS, *[8] * spatial_dims)
    assert torch.allclose(samples.sum(dim=2), torch.ones(()), atol=1e-6)
    assert torch.equal(samples, again)
    assert model.training and all(m.training for m in model.modules())


@pytest.mark.parametrize("net", NETS)
def test_mc_dropout_samples_differ_and_norms_use_running_statistics(net: str) -> None:
    model = small_net(net, 3, dropout=0.5, norm="batch").eval()
    x = torch.randn(1, IN_CHANNELS, 8, 8, 8)
    samples = model.sample(x, 3, flips=False)
    assert not torch.allclose(samples[0], samples[1])
    assert not model.training and all(not m.training for m in model.modules())
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            assert int(module.num_batches_tracked) == 0


def test_without_dropout_the_first_sample_is_the_evaluation_prediction() -> None:
    model = small_net("invres", 3).eval()
    x = torch.randn(1, IN_CHANNELS, 8, 8, 8)
    with torch.no_grad():
        expected = torch.softmax(model(x), dim=1)
    assert torch.allclose(model.sample(x, 2)[0], expected)


def test_sigmoid_output_gives_independent_label_probabilities() -> None:
    model = small_net("revmbconv", 3, output_activation="sigmoid")
    samples = model.sample(torch.randn(1, IN_CHANNELS, 8, 8, 8), 2)
    assert samples.shape == (2, 1, OUT_CHANNELS, 8, 8, 8)
    assert ((samples > 0) & (samples < 1)).all()
    assert not torch.allclose(samples.sum(dim=2), torch.ones(()))


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_flips_cycle_through_every_axis_subset_and_are_undone(spatial_dims: int) -> None:
    cycle = flip_cycle(spatial_dims)
    assert len(cycle) == 2**spatial_dims and cycle[0] == () and len(set(cycle)) == len(cycle)
    x = torch.randn(1, 3, *[4, 5, 6][:spatial_dims])
    samples = sample_probabilities(nn.Identity(), x, 2**spatial_dims, "softmax")
    assert torch.allclose(samples, torch.softmax(x, dim=1).expand_as(samples))


def test_num_samples_must_be_positive() -> None:
    with pytest.raises(ValueError, match="num_samples must be positive"):
        sample_probabilities(nn.Identity(), torch.randn(1, 2, 4, 4), 0, "softmax")
