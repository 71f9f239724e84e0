"""ReversibleSequence: trains a stack of invertible blocks without storing their activations.

The forward pass runs the blocks without autograd and keeps only the sequence's output. The backward
pass walks the blocks from last to first: each block reconstructs its input from its output and, in the
same recompute, gives the gradients of its input and parameters (``InvertibleModule.reverse_and_grad``).
Parameter gradients are returned from the autograd ``Function`` rather than accumulated as a side effect,
so ``torch.autograd.grad``, gradient accumulation and DistributedDataParallel's hooks all see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _NormBase
from torch.utils.checkpoint import checkpoint

from revnets.core.form import Form, resolve_form
from revnets.core.invertible import InvertibleModule
from revnets.core.random_state import recording_random_states, replaying_random_states

_STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@contextmanager
def _running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Recompute with batch statistics, as the forward did, without updating running statistics again."""
    norms = [m for m in module.modules() if isinstance(m, _NormBase) and m.training and m.track_running_stats]
    saved = [(m, {name: getattr(m, name) for name in _STAT_BUFFERS}) for m in norms]
    try:
        for m, _ in saved:
            for name in _STAT_BUFFERS:
                setattr(m, name, None)
        yield
    finally:
        for m, buffers in saved:
            for name, value in buffers.items():
                setattr(m, name, value)


class _ReversibleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sequence: ReversibleSequence, *params: nn.Parameter) -> Tensor:
        device_type = x.device.type
        ctx.autocast = (device_type, torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
        ctx.sequence = sequence
        ctx.params = params
        ctx.rng_states = []
        for block in sequence.blocks:
            if sequence.preserve_rng_state:
                with recording_random_states(x.device) as states:
                    x = block(x)
                ctx.rng_states.append(states)
            else:
                x = block(x)
                ctx.rng_states.append(None)
        ctx.save_for_backward(x)
        return x

    @staticmethod
    @once_differentiable
    def backward(ctx, dy: Tensor) -> tuple[Tensor | None, ...]:
        (y,) = ctx.saved_tensors
        device_type, autocast_enabled, autocast_dtype = ctx.autocast
        grads: dict[nn.Parameter, Tensor] = {}
        owned = False  # the sequence's output and its gradient belong to the caller: never written over
        for block, rng in zip(reversed(ctx.sequence.blocks), reversed(ctx.rng_states)):
            with (
                replaying_random_states(rng),
                torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_enabled),
                _running_stats_frozen(block),
            ):
                y, dy, block_grads = block.reverse_and_grad(y.detach(), dy, owned)
            owned = True
            for param, grad in block_grads.items():
                if grad is not None:
                    grads[param] = grad + grads[param] if param in grads else grad
        dx = dy if ctx.needs_input_grad[0] else None
        return (dx, None, *(grads.get(p) for p in ctx.params))


class ReversibleSequence(nn.Module):
    """A sequence of invertible blocks whose backward pass recomputes activations instead of storing them.

    Args:
        *blocks: :class:`~revnets.core.InvertibleModule` instances (couplings, invertible resampling),
            applied in order. Each maps ``(B, C_i, *spatial_i)`` to the next block's
            input.
        form: :attr:`Form.REVERSIBLE` keeps only the output for backward and reconstructs each block's
            input from its output (activation memory independent of depth); :attr:`Form.PLAIN` is ordinary
            autograd over the same modules, so both can be compared exactly; :attr:`Form.CHECKPOINTED`
            wraps each block in ``torch.utils.checkpoint`` (stores each block's input, recomputes its inside).
            Default: reversible.
        preserve_rng_state: restore the random state before each block's recompute, so dropout draws the
            same mask in forward and backward. Turn off only for blocks without randomness.
        memory_saving, checkpointing: the first release's keywords for ``form``; deprecated.

    The input of the first block may or may not require grad. With gradients disabled (inference) the
    blocks simply run in order, with no bookkeeping.
    """

    def __init__(
        self,
        *blocks: nn.Module,
        form: Form | str | None = None,
        preserve_rng_state: bool = True,
        memory_saving: bool | None = None,
        checkpointing: bool | None = None,
    ) -> None:
        super().__init__()
        if not blocks:
            raise ValueError("ReversibleSequence needs at least one block.")
        for index, block in enumerate(blocks):
            if isinstance(block, ReversibleSequence):
                raise TypeError(
                    f"ReversibleSequence block {index} is itself a ReversibleSequence: pass its blocks instead "
                    "(ReversibleSequence(*inner.blocks, ...)) so that each block keeps its own random state."
                )
            if not isinstance(block, InvertibleModule):
                raise TypeError(
                    f"ReversibleSequence block {index} ({type(block).__name__}) is not invertible: wrap "
                    "non-invertible functions as f and g of an AdditiveCoupling or AffineCoupling."
                )
        self.form = resolve_form(
            "ReversibleSequence", form, memory_saving=memory_saving, checkpointing=checkpointing
        )
        self.blocks = nn.ModuleList(blocks)
        self.preserve_rng_state = preserve_rng_state

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, *spatial)`` through every block in order."""
        if torch.is_grad_enabled():
            if self.form is Form.REVERSIBLE:
                params = tuple(p for p in self.parameters() if p.requires_grad)
                if x.requires_grad or params:
                    return _ReversibleFunction.apply(x, self, *params)
            elif self.form is Form.CHECKPOINTED:
                for block in self.blocks:
                    x = checkpoint(block, x, use_reentrant=False, preserve_rng_state=self.preserve_rng_state)
                return x
        for block in self.blocks:
            x = block(x)
        return x

    def inverse(self, y: Tensor) -> Tensor:
        """The input ``x`` with ``forward(x) == y``, through the blocks' inverses in reverse order."""
        for block in reversed(self.blocks):
            y = block.inverse(y)
        return y

    def extra_repr(self) -> str:
        return f"form={self.form.value}"
