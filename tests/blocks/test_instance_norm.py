"""Instance norm inside the twins runs as group norm with one channel per group: the same function."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.modules.instancenorm import _InstanceNorm

from revnets.blocks.norm import as_group_norm, instance_norms_as_group_norms
from tests.nets.configs import twin


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("training", [True, False])
def test_group_norm_computes_instance_norm_and_its_gradients(affine: bool, training: bool) -> None:
    torch.manual_seed(0)
    instance = nn.InstanceNorm3d(6, affine=affine).train(training)
    if affine:
        nn.init.normal_(instance.weight)
        nn.init.normal_(instance.bias)
    group = as_group_norm(instance).train(training)
    x = (torch.randn(2, 6, 5, 4, 3, dtype=torch.float64) * 3 + 1).requires_grad_(True)
    weights = torch.randn(2, 6, 5, 4, 3, dtype=torch.float64)
    outputs, gradients = [], []
    for norm in (instance.double(), group.double()):
        y = norm(x)
        (dx,) = torch.autograd.grad((y * weights).sum(), x)
        outputs.append(y)
        gradients.append(dx)
    torch.testing.assert_close(outputs[1], outputs[0])
    torch.testing.assert_close(gradients[1], gradients[0])
    if affine:
        assert group.weight is instance.weight and group.bias is instance.bias


def test_an_instance_norm_with_running_statistics_is_kept() -> None:
    tracked = nn.InstanceNorm3d(4, track_running_stats=True)
    with pytest.raises(ValueError, match="running statistics"):
        as_group_norm(tracked)
    model = nn.Sequential(nn.InstanceNorm3d(4), tracked)
    instance_norms_as_group_norms(model)
    assert isinstance(model[0], nn.GroupNorm) and model[1] is tracked


@pytest.mark.parametrize("name", ["DynUNet", "UNet"])
def test_twins_compute_their_instance_norms_as_group_norms(name: str) -> None:
    net = twin(name, 3)
    assert not any(isinstance(m, _InstanceNorm) for m in net.modules())
    assert any(isinstance(m, nn.GroupNorm) for m in net.modules())
