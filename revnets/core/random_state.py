"""Random states recorded during a memory-saving forward and replayed in the recompute.

Dropout inside ``f`` or ``g`` must draw the same mask when a block is recomputed in backward. The
sequence records the state before each block runs; a coupling marks one more point between ``f`` and
``g`` (:func:`mark_random_state`), because its backward recomputes ``g`` before ``f``. In the recompute,
``with replayed_random_state(i)`` restores the ``i``-th recorded state. Outside a memory-saving pass both
are no-ops.

Blocks that cannot draw random numbers (:func:`may_draw_random_numbers` is False) record nothing, so a
stack of convolutions, norms and activations pays no random-state bookkeeping at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn
from torch.nn.modules.dropout import _DropoutNd

_RANDOM_LAYERS = (_DropoutNd, nn.RReLU)
_DETERMINISTIC_FORWARDS = ("torch.nn.modules.", "revnets.core.")


def may_draw_random_numbers(module: nn.Module) -> bool:
    """False only when no submodule of ``module`` can draw random numbers in its current mode.

    A module counts as deterministic when its class takes ``forward`` from ``torch.nn`` (containers such as
    ``nn.Sequential`` included) or from :mod:`revnets.core` (couplings, resampling), and it is not a dropout
    layer or ``nn.RReLU`` in training mode, nor an ``nn.MultiheadAttention`` with attention dropout in
    training mode. Any other class defines its own ``forward``, which might draw random numbers, so it
    counts as random: the check errs towards recording.
    """
    return any(draws_random_numbers(m) for m in module.modules())


def draws_random_numbers(module: nn.Module) -> bool:
    """:func:`may_draw_random_numbers` for ``module``'s own ``forward``, not its submodules'."""
    if not type(module).forward.__module__.startswith(_DETERMINISTIC_FORWARDS):
        return True
    return module.training and (
        isinstance(module, _RANDOM_LAYERS) or (isinstance(module, nn.MultiheadAttention) and module.dropout > 0)
    )


class RandomState:
    """The CPU (and, on CUDA, the device's) random state at one point of the forward pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        """Make this the current random state (the caller saves and restores the state around it)."""
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


_recording: ContextVar[tuple[list[RandomState], torch.device] | None] = ContextVar("_recording", default=None)
_replaying: ContextVar[list[RandomState] | None] = ContextVar("_replaying", default=None)


@contextmanager
def recording_random_states(device: torch.device) -> Iterator[list[RandomState]]:
    """Record the state now and at every :func:`mark_random_state` in the body; yields the list."""
    states = [RandomState(device)]
    token = _recording.set((states, device))
    try:
        yield states
    finally:
        _recording.reset(token)


def mark_random_state() -> None:
    """Record the current state if a memory-saving forward is recording (else do nothing)."""
    recording = _recording.get()
    if recording is not None:
        states, device = recording
        states.append(RandomState(device))


@contextmanager
def preserved_random_state(device: torch.device, needed: bool = True) -> Iterator[None]:
    """Leave the random state after the body as it was before it (once for a whole backward pass).

    The replays inside the body set the state freely; ``needed=False`` (nothing will be replayed) skips the
    save and restore.
    """
    if not needed:
        yield
        return
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


@contextmanager
def replaying_random_states(states: list[RandomState] | None) -> Iterator[None]:
    """Make ``states`` (from :func:`recording_random_states`) available to :func:`replayed_random_state`.

    Run it inside :func:`preserved_random_state`: replays change the random state.
    """
    token = _replaying.set(states)
    try:
        yield
    finally:
        _replaying.reset(token)


@contextmanager
def replayed_random_state(index: int) -> Iterator[None]:
    """Run the body from the ``index``-th recorded state, if states are being replayed."""
    states = _replaying.get()
    if states is not None:
        states[index].restore()
    yield
