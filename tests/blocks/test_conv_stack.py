"""ConvStack's fused upsampling and concatenation give the unfused results and store less for backward."""

from __future__ import annotations

import copy

import pytest
import torch

from revnets.blocks.conv_stack import ConvStack, upsample
from revnets.core import Form
from revnets.core.memory import saved_bytes


def _grads(stack: ConvStack, run, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = run(stack, inputs)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)
    (out * weight).sum().backward()
    return [out.detach(), *(t.grad for t in inputs), *(p.grad for p in stack.parameters())]


@pytest.mark.parametrize("spatial_dims", [2, 3])
@pytest.mark.parametrize("in_channels, out_channels", [(16, 4), (8, 8)], ids=["reducing", "equal"])
def test_projection_before_upsampling_gives_the_same_gradients_and_saves_the_coarse_input(
    spatial_dims: int, in_channels: int, out_channels: int
) -> None:
    torch.manual_seed(0)
    stack = ConvStack(
        spatial_dims, in_channels, out_channels, 2, norm="instance", couplings=True, form=Form.REVERSIBLE
    ).double()
    x = torch.randn(2, in_channels, *([6] * spatial_dims), dtype=torch.float64)
    fused = _grads(copy.deepcopy(stack), lambda s, t: s.forward_upsampled(t[0]), [x])
    unfused = _grads(copy.deepcopy(stack), lambda s, t: s(upsample(t[0])), [x])
    for a, b in zip(fused, unfused):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    # The projection stores x where the unfused stack stores its upsampled copy; nothing else differs.
    x.requires_grad_(True)
    difference = saved_bytes(lambda t: stack(upsample(t)), x) - saved_bytes(stack.forward_upsampled, x)
    assert difference == (2**spatial_dims - 1) * x.numel() * x.element_size()


def test_projection_per_part_gives_the_concatenations_gradients_and_saves_less() -> None:
    torch.manual_seed(0)
    stack = ConvStack(2, 6, 8, 2, norm="batch", couplings=True, form=Form.REVERSIBLE).double()
    a, b = torch.randn(2, 2, 8, 8, dtype=torch.float64), torch.randn(2, 4, 8, 8, dtype=torch.float64)
    fused = _grads(copy.deepcopy(stack), lambda s, t: s.forward_concatenated(t), [a, b])
    unfused = _grads(copy.deepcopy(stack), lambda s, t: s(torch.cat(t, dim=1)), [a, b])
    for x, y in zip(fused, unfused):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)
    # As in the network, the parts are outputs their producers keep for backward (exp saves its output):
    # the fused form adds no copy of them.
    a.requires_grad_(True)
    b.requires_grad_(True)
    fused_bytes = saved_bytes(lambda u, v: stack.forward_concatenated([u.exp(), v.exp()]), a, b)
    unfused_bytes = saved_bytes(lambda u, v: stack(torch.cat([u.exp(), v.exp()], dim=1)), a, b)
    assert unfused_bytes - fused_bytes == (a.numel() + b.numel()) * a.element_size()


def test_stacks_without_couplings_upsample_first() -> None:
    torch.manual_seed(0)
    stack = ConvStack(2, 4, 2, 1, norm="batch")
    x = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(stack.forward_upsampled(x), stack(upsample(x)))
