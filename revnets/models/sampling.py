"""Samples of class probabilities from a deterministic network: MC dropout and test-time flips.

Each sample runs the network once with its dropout layers active (norms use their running or instance
statistics, as in evaluation) on a flipped copy of the input and flips the prediction back. Sample ``i``
uses the ``i``-th flip of a fixed cycle (no flip first, then each axis, then pairs, ...), so samples of
one seed are reproducible with ``torch.manual_seed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.modules.dropout import _DropoutNd

OUTPUT_ACTIVATIONS = ("softmax", "sigmoid")


def check_output_activation(output_activation: str) -> str:
    """``output_activation`` if it is one of :data:`OUTPUT_ACTIVATIONS`, else a ValueError."""
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}.")
    return output_activation


def probabilities(logits: Tensor, output_activation: str) -> Tensor:
    """``(B, C, *spatial)`` logits to probabilities: softmax over classes, or sigmoid per (multi-label) channel.

    Logits of lower precision (a network under bfloat16 autocast) give float32 probabilities; float64 stays.
    """
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    if check_output_activation(output_activation) == "softmax":
        return torch.softmax(logits, dim=1)
    return torch.sigmoid(logits)


def flip_cycle(spatial_dims: int) -> list[tuple[int, ...]]:
    """Dims of a ``(B, C, *spatial)`` tensor to flip, for every subset of the spatial axes, smallest first."""
    axes = range(2, 2 + spatial_dims)
    return [combo for r in range(spatial_dims + 1) for combo in itertools.combinations(axes, r)]


@contextmanager
def mc_dropout(model: nn.Module) -> Iterator[None]:
    """Evaluation mode with dropout layers left active; restores every module's mode afterwards."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    for module in model.modules():
        if isinstance(module, _DropoutNd):
            module.train()
    try:
        yield
    finally:
        for module, training in modes.items():
            module.training = training


def sample_probabilities(
    model: nn.Module,
    x: Tensor,
    num_samples: int,
    output_activation: str,
    flips: bool = True,
    first: int = 0,
    batch_size: int = 4,
) -> Tensor:
    """``num_samples`` predictions of ``model`` under MC dropout and (optionally) test-time flips.

    Args:
        model: maps ``(B, C_in, *spatial)`` to logits ``(B, C, *spatial)`` in evaluation mode.
        x: input ``(B, C_in, *spatial)``.
        num_samples: number of samples ``N``.
        output_activation: ``"softmax"`` or ``"sigmoid"``.
        flips: cycle through the flips of the spatial axes (identity first); False never flips.
        first: index of the first sample in the flip cycle, so that samples drawn in several calls
            (e.g. a few at a time over a large volume) follow one cycle.
        batch_size: samples run through the network together, as one batch of ``batch_size * B``
            (each copy draws its own dropout masks). Larger batches are faster (on CPU they also reach
            oneDNN's convolutions for small 3D inputs) and take proportionally more memory.

    Returns:
        ``(N, B, C, *spatial)`` class probabilities.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}.")
    cycle = flip_cycle(x.dim() - 2) if flips else [()]
    chunks = []
    with torch.no_grad(), mc_dropout(model):
        for start in range(0, num_samples, batch_size):
            axes = [cycle[(first + i) % len(cycle)] for i in range(start, min(start + batch_size, num_samples))]
            batch = torch.cat([x.flip(a) if a else x for a in axes])
            predictions = probabilities(model(batch), output_activation).unflatten(0, (len(axes), x.shape[0]))
            chunks += [p.flip(a) if a else p for p, a in zip(predictions.unbind(0), axes)]
    return torch.stack(chunks)
