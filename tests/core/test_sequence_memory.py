"""ReversibleSequence's backward reuses its output's memory only when nothing else can see it."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from revnets.core import AdditiveCoupling, Form, ReversibleSequence
from revnets.core.memory import allocated_peak_bytes
from revnets.core.random_state import may_draw_random_numbers
from tests.core.stacks import coupling_stack, gradients, relative_error


def _plain_twin(stack: ReversibleSequence) -> ReversibleSequence:
    plain = copy.deepcopy(stack)
    plain.form = Form.PLAIN
    return plain


def _parameter_grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_output_kept_as_detached_alias_is_not_written_over(coupling: str) -> None:
    stack = coupling_stack(3, 4, coupling=coupling).double()
    plain = _plain_twin(stack)
    x = torch.randn(1, 4, 5, 5, 5, dtype=torch.float64)
    grads = []
    for model in (stack, plain):
        y = model(x)
        alias = y.detach()  # shares y's memory without holding y itself
        kept = alias.clone()
        loss = y.square().sum()
        del y
        loss.backward()
        assert torch.equal(alias, kept)
        grads.append(_parameter_grads(model))
    assert relative_error(*grads) <= 1e-10


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_retained_graph_gives_the_same_gradients_twice(coupling: str) -> None:
    stack = coupling_stack(3, 4, coupling=coupling).double()
    x = torch.randn(1, 4, 5, 5, 5, dtype=torch.float64)
    loss = stack(x).square().sum()
    first = torch.autograd.grad(loss, list(stack.parameters()), retain_graph=True)
    second = torch.autograd.grad(loss, list(stack.parameters()))
    assert relative_error(list(second), list(first)) == 0.0


def test_gradient_shared_by_two_sequences_is_not_written_over() -> None:
    # y_a + y_b: both sequences receive the same gradient tensor from the addition.
    a, b = coupling_stack(2, 4).double(), coupling_stack(2, 4).double()
    plain_a, plain_b = _plain_twin(a), _plain_twin(b)
    x = torch.randn(1, 4, 5, 5, 5, dtype=torch.float64)
    (a(x) + b(x)).square().sum().backward()
    (plain_a(x) + plain_b(x)).square().sum().backward()
    grads = _parameter_grads(a) + _parameter_grads(b)
    plain_grads = _parameter_grads(plain_a) + _parameter_grads(plain_b)
    assert relative_error(grads, plain_grads) <= 1e-10


def _backward_peak(stack: ReversibleSequence, x: torch.Tensor, keep_output: bool) -> int:
    y = stack(x)
    loss = (y * torch.randn_like(y)).sum()  # its backward makes one full-size gradient and keeps no output
    kept = y if keep_output else None
    del y

    def step() -> None:
        loss.backward()

    peak = allocated_peak_bytes(step)
    del kept
    return peak


def test_backward_writes_over_an_unshared_output_and_gradient() -> None:
    # 1x1 convolutions: no workspace, so the peak of backward is the full-size tensors it allocates.
    torch.manual_seed(0)
    blocks = [AdditiveCoupling(nn.Conv3d(4, 4, 1), nn.Conv3d(4, 4, 1)) for _ in range(4)]
    stack = ReversibleSequence(*blocks)
    x = torch.randn(1, 8, 16, 16, 16, requires_grad=True)
    full = x.numel() * x.element_size()
    reusing = _backward_peak(stack, x, keep_output=False)
    allocating = _backward_peak(stack, x, keep_output=True)
    # Keeping the output costs the last block a new input and input gradient: two full-size tensors.
    assert allocating - reusing >= 1.9 * full
    # Reusing, backward allocates the incoming gradient and the transients of one half-step (f's output,
    # its input gradient and the convolution's), nothing more.
    assert reusing <= 2.6 * full


def test_stack_without_random_layers_records_no_random_state() -> None:
    assert not may_draw_random_numbers(coupling_stack(2, 4))
    assert may_draw_random_numbers(coupling_stack(2, 4, dropout=0.1))
    assert not may_draw_random_numbers(coupling_stack(2, 4, dropout=0.1).eval())

    class Custom(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return t

    assert may_draw_random_numbers(nn.Sequential(nn.Conv3d(2, 2, 1), Custom()))


def test_dropout_stack_leaves_the_callers_random_state_as_plain_autograd_does() -> None:
    stack = coupling_stack(3, 4, dropout=0.5).double()
    plain = _plain_twin(stack)
    x = torch.randn(1, 4, 5, 5, 5, dtype=torch.float64)
    after = []
    for model in (stack, plain):
        torch.manual_seed(11)
        gradients(model, x)
        after.append(torch.rand(4))
    assert torch.equal(*after)
