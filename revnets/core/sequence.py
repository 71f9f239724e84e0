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
from typing import cast

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _NormBase
from torch.utils.checkpoint import checkpoint

from revnets.core.form import Form, resolve_form
from revnets.core.invertible import InvertibleModule
from revnets.core.random_state import (
    draws_random_numbers,
    preserved_random_state,
    recording_random_states,
    replaying_random_states,
)

_STAT_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _inspect(block: nn.Module, preserve_rng_state: bool) -> tuple[list[_NormBase], bool]:
    """In one walk over ``block``: its norm layers that update running statistics in their current mode, and
    whether its random state must be recorded (``preserve_rng_state`` and it may draw random numbers)."""
    norms: list[_NormBase] = []
    random = False
    for m in block.modules():
        if isinstance(m, _NormBase) and m.training and m.track_running_stats:
            norms.append(m)
        random = random or (preserve_rng_state and draws_random_numbers(m))
    return norms, random


@contextmanager
def _running_stats_frozen(norms: list[_NormBase]) -> Iterator[None]:
    """Recompute with batch statistics, as the forward did, without updating running statistics again."""
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


def _storage_users(t: Tensor) -> int:
    """How many tensors share ``t``'s memory (plus one for the storage object made to ask)."""
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


class _OwnershipProbe(torch.autograd.Function):
    """Records how an unshared saved output and an unshared incoming gradient look from inside backward."""

    seen: tuple[int, int] = (0, 0)

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        y = x.clone()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor) -> Tensor:
        (y,) = ctx.saved_tensors
        _OwnershipProbe.seen = (_storage_users(y), _storage_users(dy))
        return dy


def _unshared_users() -> tuple[int, int]:
    """:func:`_storage_users` of the saved output and of the gradient when nothing else holds either."""
    with torch.enable_grad():
        x = torch.zeros(2, requires_grad=True)
        (_OwnershipProbe.apply(x) * 2).sum().backward()
    return _OwnershipProbe.seen


_UNSHARED_OUTPUT_USERS, _UNSHARED_GRAD_USERS = _unshared_users()


def _only_holder(t: Tensor, unshared_users: int) -> bool:
    """True when no other tensor (the caller's output, a view, a ``.detach()``, another branch's gradient)
    shares ``t``'s memory, so the backward may write over it; ``t`` must also be dense."""
    return (
        t._use_count() == 1  # type: ignore[attr-defined]
        and _storage_users(t) == unshared_users
        and t.is_contiguous()
        and t.untyped_storage().nbytes() == t.numel() * t.element_size()
    )


class _ReversibleFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, sequence: ReversibleSequence, *params: nn.Parameter) -> Tensor:
        device_type = x.device.type
        ctx.autocast = (device_type, torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))
        ctx.sequence = sequence
        ctx.params = params
        ctx.device = x.device
        ctx.rng_states = []
        ctx.norms = []
        for block in sequence.blocks:
            norms, random = _inspect(block, sequence.preserve_rng_state)
            ctx.norms.append(norms)
            if random:
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
        # Blocks write their input and its gradient over their output and its gradient (``owned``). The
        # sequence's own output and incoming gradient qualify only when nothing else holds them and the graph
        # is not kept for another backward; otherwise the last block allocates, and the rest reuse its tensors.
        owned = (
            not torch._C._autograd._get_current_graph_task_keep_graph()
            and _only_holder(y, _UNSHARED_OUTPUT_USERS)
            and _only_holder(dy, _UNSHARED_GRAD_USERS)
        )
        replays = any(states is not None for states in ctx.rng_states)
        with (
            preserved_random_state(ctx.device, needed=replays),
            torch.autocast(device_type, dtype=autocast_dtype, enabled=autocast_enabled),
        ):
            for block, rng, norms in zip(
                reversed(ctx.sequence.blocks), reversed(ctx.rng_states), reversed(ctx.norms)
            ):
                with replaying_random_states(rng), _running_stats_frozen(norms):
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
            y = cast(InvertibleModule, block).inverse(y)
        return y

    def extra_repr(self) -> str:
        return f"form={self.form.value}"
