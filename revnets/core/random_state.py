"""Random states recorded during a memory-saving forward and replayed in the recompute.

Dropout inside ``f`` or ``g`` must draw the same mask when a block is recomputed in backward. The
sequence records the state before each block runs; a coupling marks one more point between ``f`` and
``g`` (:func:`mark_random_state`), because its backward recomputes ``g`` before ``f``. In the recompute,
``with replayed_random_state(i)`` restores the ``i``-th recorded state. Outside a memory-saving pass both
are no-ops.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch


class RandomState:
    """The CPU (and, on CUDA, the device's) random state at one point of the forward pass."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    @contextmanager
    def restored(self) -> Iterator[None]:
        """Run the body from this state; the random state outside the body is left untouched."""
        devices = [self.device] if self.cuda is not None else []
        with torch.random.fork_rng(devices=devices):
            torch.set_rng_state(self.cpu)
            if self.cuda is not None:
                torch.cuda.set_rng_state(self.cuda, self.device)
            yield


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
def replaying_random_states(states: list[RandomState] | None) -> Iterator[None]:
    """Make ``states`` (from :func:`recording_random_states`) available to :func:`replayed_random_state`."""
    token = _replaying.set(states)
    try:
        yield
    finally:
        _replaying.reset(token)


@contextmanager
def replayed_random_state(index: int) -> Iterator[None]:
    """Run the body from the ``index``-th recorded state, if states are being replayed."""
    states = _replaying.get()
    if states is None:
        yield
        return
    with states[index].restored():
        yield
