"""ReversibleSequence: exact gradients, O(1) saved memory, norm/dropout/autocast behaviour, misuse."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from revnets.core import AdditiveCoupling, Form, InvertibleDownsample, ReversibleSequence
from revnets.core.memory import saved_bytes
from tests.core.stacks import coupling_stack, gradients, relative_error, residual_function


def _twins(stack: ReversibleSequence) -> tuple[ReversibleSequence, ReversibleSequence]:
    plain = copy.deepcopy(stack)
    plain.form = Form.PLAIN
    return stack, plain


@pytest.mark.parametrize(
    "depth, size, coupling", [(16, 6, "additive"), (16, 6, "affine"), (64, 3, "additive")]
)
def test_float64_gradients_match_plain_autograd(depth: int, size: int, coupling: str) -> None:
    reversible, plain = _twins(coupling_stack(depth, 4, coupling=coupling).double())
    x = torch.randn(2, 4, size, size, size, dtype=torch.float64)
    out_rev, grads_rev = gradients(reversible, x)
    out_plain, grads_plain = gradients(plain, x)
    assert torch.equal(out_rev, out_plain)
    assert len(grads_rev) == 1 + len(list(plain.parameters()))
    assert relative_error(grads_rev, grads_plain) <= 1e-10


def test_float32_gradients_within_ten_times_plain_float32_rounding() -> None:
    reversible, plain = _twins(coupling_stack(16, 8))
    x = torch.randn(1, 8, 24, 24, 24)
    _, reference = gradients(copy.deepcopy(plain).double(), x.double())
    _, plain32 = gradients(plain, x)
    _, reversible32 = gradients(reversible, x)
    reference32 = [g.float() for g in reference]
    plain_error = relative_error(plain32, reference32)
    assert relative_error(reversible32, reference32) <= 10 * plain_error


@pytest.mark.parametrize("input_requires_grad", [True, False])
def test_saved_bytes_constant_in_depth_and_plain_grows_linearly(input_requires_grad: bool) -> None:
    x = torch.randn(1, 8, 16, 16, 16, requires_grad=input_requires_grad)
    measured = {}
    for depth in (4, 16):
        reversible, plain = _twins(coupling_stack(depth, 8))
        measured[depth] = (saved_bytes(reversible, x), saved_bytes(plain, x))
    (rev4, plain4), (rev16, plain16) = measured[4], measured[16]
    assert abs(rev16 - rev4) <= 0.05 * rev4
    assert plain16 >= 3.5 * plain4
    assert rev16 < plain4 / 4


def test_batch_norm_running_stats_update_once_per_training_forward() -> None:
    reversible, plain = _twins(coupling_stack(3, 4, norm="batch"))
    x = torch.randn(2, 4, 6, 6, 6)
    for model in (reversible, plain):
        model.train()
        model(x).sum().backward()
    for (name, a), b in zip(reversible.named_buffers(), plain.buffers()):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7), name
    tracked = [b for n, b in reversible.named_buffers() if n.endswith("num_batches_tracked")]
    assert tracked and all(int(t) == 1 for t in tracked)


def test_dropout_mask_reused_in_recompute() -> None:
    reversible, plain = _twins(coupling_stack(4, 4, dropout=0.5))
    x = torch.randn(2, 4, 6, 6, 6, dtype=torch.float64)
    reversible.double(), plain.double()
    torch.manual_seed(7)
    out_rev, grads_rev = gradients(reversible, x)
    torch.manual_seed(7)
    out_plain, grads_plain = gradients(plain, x)
    assert torch.equal(out_rev, out_plain)
    assert relative_error(grads_rev, grads_plain) <= 1e-10


def test_cpu_bfloat16_autocast_gradients_close_to_float32() -> None:
    reversible, plain = _twins(coupling_stack(4, 8))
    x = torch.randn(1, 8, 12, 12, 12)
    _, reference = gradients(plain, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, grads = gradients(reversible, x)
        _, plain_bf16 = gradients(plain, x)
    assert out.dtype == torch.float32
    assert all(torch.isfinite(g).all() for g in grads)
    assert relative_error(grads, reference) <= 2 * relative_error(plain_bf16, reference)


def test_two_sequences_inside_an_ordinary_network() -> None:
    def network(form: Form) -> nn.Sequential:
        torch.manual_seed(3)
        return nn.Sequential(
            nn.Conv3d(2, 4, 3, padding=1),
            coupling_stack(3, 4, form=form),
            coupling_stack(2, 4, form=form),
            nn.Conv3d(4, 4, 1),
            nn.ReLU(),
            coupling_stack(2, 4, form=form),
        ).double()

    x = torch.randn(2, 2, 6, 6, 6, dtype=torch.float64)
    out_rev, grads_rev = gradients(network(Form.REVERSIBLE), x)
    out_plain, grads_plain = gradients(network(Form.PLAIN), x)
    assert torch.equal(out_rev, out_plain)
    assert relative_error(grads_rev, grads_plain) <= 1e-10


def test_output_used_as_skip_connection_is_not_overwritten() -> None:
    reversible, plain = _twins(coupling_stack(3, 4).double())
    x = torch.randn(1, 4, 6, 6, 6, dtype=torch.float64)
    results = []
    for model in (reversible, plain):
        model.zero_grad()
        y = model(x)
        kept = y.detach().clone()
        (y * y.detach() + model(y)).sum().backward()
        assert torch.equal(y.detach(), kept)
        results.append([p.grad.clone() for p in model.parameters()])
    assert relative_error(*results) <= 1e-10


def test_gradient_accumulation_over_two_backward_passes() -> None:
    reversible, plain = _twins(coupling_stack(3, 4).double())
    a, b = torch.randn(2, 1, 4, 6, 6, 6, dtype=torch.float64)
    for model in (reversible, plain):
        model.zero_grad()
        model(a).square().sum().backward()
        model(b).sin().sum().backward()
    assert relative_error([p.grad for p in reversible.parameters()], [p.grad for p in plain.parameters()]) <= 1e-10


def test_autograd_grad_and_gradient_hooks_receive_parameter_gradients() -> None:
    reversible, plain = _twins(coupling_stack(3, 4).double())
    x = torch.randn(1, 4, 6, 6, 6, dtype=torch.float64)
    hooked = []
    for p in reversible.parameters():
        p.register_post_accumulate_grad_hook(lambda param: hooked.append(param))
    grads_rev = torch.autograd.grad(reversible(x).square().sum(), list(reversible.parameters()))
    grads_plain = torch.autograd.grad(plain(x).square().sum(), list(plain.parameters()))
    assert relative_error(list(grads_rev), list(grads_plain)) <= 1e-10
    assert not hooked and all(p.grad is None for p in reversible.parameters())
    reversible(x).square().sum().backward()
    assert len(hooked) == len(list(reversible.parameters()))


def test_no_grad_inference_runs_each_block_once_and_records_nothing() -> None:
    stack = coupling_stack(4, 4)
    calls = []
    for block in stack.blocks:
        block.g.register_forward_hook(lambda *args: calls.append(1))
    x = torch.randn(1, 4, 6, 6, 6)
    with torch.no_grad():
        out = stack(x)
    assert out.grad_fn is None and len(calls) == len(stack.blocks)


def test_invertible_resampling_inside_a_sequence() -> None:
    blocks = [
        AdditiveCoupling(residual_function(2), residual_function(2)),
        InvertibleDownsample(4, 3, learnable=True),
        AdditiveCoupling(residual_function(16), residual_function(16)),
    ]
    reversible, plain = _twins(ReversibleSequence(*blocks).double())
    with torch.no_grad():
        reversible.blocks[1].skew.normal_(std=0.1)
        plain.blocks[1].skew.copy_(reversible.blocks[1].skew)
    x = torch.randn(2, 4, 6, 6, 6, dtype=torch.float64)
    out_rev, grads_rev = gradients(reversible, x)
    out_plain, grads_plain = gradients(plain, x)
    assert out_rev.shape == (2, 32, 3, 3, 3)
    assert torch.allclose(out_rev, out_plain, atol=1e-13)
    assert relative_error(grads_rev, grads_plain) <= 1e-9


def test_checkpointing_form_matches_plain() -> None:
    stack = coupling_stack(3, 4).double()
    checkpointed = ReversibleSequence(*copy.deepcopy(stack).blocks, form=Form.CHECKPOINTED)
    plain = ReversibleSequence(*copy.deepcopy(stack).blocks, form=Form.PLAIN)
    x = torch.randn(1, 4, 6, 6, 6, dtype=torch.float64)
    assert relative_error(gradients(checkpointed, x)[1], gradients(plain, x)[1]) <= 1e-12
    assert saved_bytes(checkpointed, x) < saved_bytes(plain, x) / 2


def test_inverse_reconstructs_input() -> None:
    stack = coupling_stack(8, 4, coupling="affine").double().eval()
    x = torch.randn(2, 4, 6, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(stack.inverse(stack(x)), x, atol=1e-12)


def test_non_invertible_block_is_rejected() -> None:
    with pytest.raises(TypeError, match="block 1 \\(Conv3d\\) is not invertible"):
        ReversibleSequence(AdditiveCoupling(nn.Identity(), nn.Identity()), nn.Conv3d(2, 2, 1))
    with pytest.raises(TypeError, match="pass its blocks instead"):
        ReversibleSequence(coupling_stack(1, 4))
    with pytest.raises(ValueError, match="at least one block"):
        ReversibleSequence()


def test_odd_channel_count_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="even number of channels.*\\(1, 5, 4, 4, 4\\)"):
        coupling_stack(2, 4)(torch.randn(1, 5, 4, 4, 4))


def test_backward_twice_through_freed_activations_fails_clearly() -> None:
    stack = coupling_stack(2, 4)
    loss = stack(torch.randn(1, 4, 4, 4, 4)).sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_output_modified_in_place_before_backward_fails_clearly() -> None:
    stack = coupling_stack(2, 4)
    y = stack(torch.randn(1, 4, 4, 4, 4))
    loss = y.sum()
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
