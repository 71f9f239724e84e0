"""Sampling inference over whole volumes: MONAI sliding windows, several samples per pass, streamed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from monai.inferers import sliding_window_inference
from torch import Tensor


class WindowSampler(Protocol):
    """Draws samples of class probabilities for one window of a volume.

    Called as ``sampler(patch, location, first, count)`` with ``patch`` of shape ``(b, C_in, *roi)``,
    ``location`` the window's slices ``(batch, channel, *spatial)`` in the (padded) volume, and the global indices
    ``first .. first + count - 1`` of the samples to draw. Returns ``(count, b, C, *roi)``. A sampler
    whose samples are coherent across windows (PHiSeg: one latent noise per sample for the whole volume)
    uses ``location`` and the indices to pick the same noise in every window.
    """

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor: ...


class SampleConsumer(Protocol):
    """Receives the samples of a volume chunk by chunk: ``update((n, B, C, *spatial))``."""

    def update(self, samples: Tensor) -> None: ...


class SamplingInferer:
    """Draws ``num_samples`` whole-volume samples through sliding windows and streams them to a consumer.

    Each pass over the volume draws ``samples_per_pass`` samples at once (the window's shared work, e.g.
    PHiSeg's prior net, runs once per window for all of them) and hands the stitched samples to the
    consumer, so memory grows with ``samples_per_pass``, not with ``num_samples``.

    Args:
        roi_size: largest window size, e.g. ``(96, 96, 96)``. Along an axis where the volume is smaller,
            the window shrinks to the volume's size rounded up to a multiple of ``size_divisor``, so a
            small volume is not padded to a large window.
        size_divisor: every window size is a multiple of this (the network's, e.g. ``2**(levels - 1)``).
        overlap: fraction of overlap between windows.
        mode: MONAI blend mode, ``"gaussian"`` or ``"constant"``. Blending probabilities keeps them
            probabilities.
        samples_per_pass: samples drawn per pass; None picks as many as fit in ``memory_budget``.
        memory_budget: bytes the stitched samples of one pass may take (default 1 GiB).
        progress: show MONAI's progress bar over windows.
    """

    def __init__(
        self,
        roi_size: Sequence[int],
        size_divisor: int = 1,
        overlap: float = 0.25,
        mode: str = "gaussian",
        samples_per_pass: int | None = None,
        memory_budget: int = 2**30,
        progress: bool = False,
    ) -> None:
        self.roi_size = tuple(roi_size)
        self.size_divisor = size_divisor
        self.overlap = overlap
        self.mode = mode
        self.samples_per_pass = samples_per_pass
        self.memory_budget = memory_budget
        self.progress = progress

    def window(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The window used for a volume of spatial shape ``spatial``."""
        k = self.size_divisor
        return tuple(min(roi, -(-size // k) * k) for roi, size in zip(self.roi_size, spatial))

    def passes(self, num_samples: int, num_classes: int, spatial: Sequence[int]) -> list[tuple[int, int]]:
        """``(first, count)`` of each pass."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}.")
        per_pass = self.samples_per_pass
        if per_pass is None:
            voxels = int(torch.tensor(spatial).prod())
            per_pass = max(1, self.memory_budget // (4 * num_classes * voxels))
        return [(first, min(per_pass, num_samples - first)) for first in range(0, num_samples, per_pass)]

    def __call__(
        self,
        inputs: Tensor,
        sampler: WindowSampler,
        num_samples: int,
        num_classes: int,
        consumer: SampleConsumer,
        on_pass: Callable[[int, int], None] | None = None,
    ) -> None:
        """Sample ``inputs`` of shape ``(B, C_in, *spatial)`` and feed ``(n, B, C, *spatial)`` chunks to ``consumer``.

        ``on_pass(done, total)`` is called after each pass with the number of samples done so far.
        """
        window = self.window(inputs.shape[2:])
        for first, count in self.passes(num_samples, num_classes, inputs.shape[2:]):

            def predictor(patch: Tensor, location: Sequence[slice], first: int = first, count: int = count) -> Tensor:
                samples = sampler(patch, location[0], first, count)  # one window per call (sw_batch_size=1)
                return samples.transpose(0, 1).flatten(1, 2)

            stitched = sliding_window_inference(
                inputs,
                window,
                1,
                predictor,
                overlap=self.overlap,
                mode=self.mode,
                progress=self.progress,
                with_coord=True,
            )
            stitched = stitched.as_tensor() if hasattr(stitched, "as_tensor") else stitched
            consumer.update(stitched.unflatten(1, (count, num_classes)).transpose(0, 1))
            if on_pass is not None:
                on_pass(first + count, num_samples)
