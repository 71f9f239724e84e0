"""Uncertainty maps accumulated sample by sample, so memory does not grow with the number of samples."""

from __future__ import annotations

import torch
from torch import Tensor

from revnets.uncertainty.maps import class_argmax
from revnets.uncertainty.maps import entropy as _entropy

CROSS_ENTROPY_EPS = 1e-8
"""The ``eps`` inside the logarithm of the expected cross-entropy, as in
:func:`revnets.uncertainty.expected_cross_entropy`."""


class StreamingUncertainty:
    """Running sums over samples of class probabilities ``(n, B, C, *spatial)``, fed in any chunking.

    :meth:`compute` gives the same maps as the batch functions of :mod:`revnets.uncertainty.maps` over
    all samples at once, keeping ``O(B * C * voxels)`` memory (plus one ``uint8`` label map per sample
    when ``keep_labels``).

    Args:
        keep_labels: also keep each sample's arg-max label map (for writing the samples).
        expected_cross_entropy: also accumulate ``log(p + eps)`` for the expected cross-entropy map
            (:func:`revnets.uncertainty.expected_cross_entropy`, one more ``B * C * voxels`` sum).
    """

    def __init__(self, keep_labels: bool = False, expected_cross_entropy: bool = False) -> None:
        self.keep_labels = keep_labels
        self.expected_cross_entropy = expected_cross_entropy
        self.count = 0
        self._sum: Tensor | None = None
        self._sum_squares: Tensor | None = None
        self._sum_entropy: Tensor | None = None
        self._sum_log: Tensor | None = None
        self._labels: list[Tensor] = []

    def update(self, samples: Tensor) -> None:
        """Add ``samples`` of shape ``(n, B, C, *spatial)``."""
        if samples.dim() < 4:
            raise ValueError(f"samples must be (n, B, C, *spatial), got shape {tuple(samples.shape)}.")
        if self._sum is not None and samples.shape[1:] != self._sum.shape:
            raise ValueError(
                f"samples of shape {tuple(samples.shape)} do not match earlier ones {tuple(self._sum.shape)}."
            )
        if not samples.sum().isfinite():  # probabilities: a sum is NaN or infinite only through such a value
            raise ValueError("samples contain NaN or infinite values.")
        for sample in samples:  # one at a time: temporaries of one sample, not of n
            self._add(sample.double())
            if self.keep_labels:
                self._labels.append(class_argmax(sample, dim=1, dtype=torch.uint8).cpu())
        self.count += samples.shape[0]

    def _add(self, p: Tensor) -> None:
        """Add one sample's probabilities ``p`` ``(B, C, *spatial)`` (float64) to the sums."""
        entropy = _entropy(p, dim=1)
        if self._sum is None or self._sum_squares is None or self._sum_entropy is None:
            self._sum, self._sum_squares, self._sum_entropy = p.clone(), p.square(), entropy
        else:
            self._sum += p
            self._sum_squares += p.square()
            self._sum_entropy += entropy
        if self.expected_cross_entropy:
            log = (p + CROSS_ENTROPY_EPS).log()
            self._sum_log = log if self._sum_log is None else self._sum_log.add_(log)

    def compute(self) -> dict[str, Tensor]:
        """The maps over all samples so far.

        Returns:
            ``mean`` ``(B, C, *spatial)``; ``entropy``, ``mutual_information`` and ``variance`` (per-class
            variance summed over classes) ``(B, *spatial)``; with ``expected_cross_entropy``,
            ``expected_cross_entropy`` ``(B, *spatial)``; with ``keep_labels``, ``labels``
            ``(N, B, *spatial)``. Float maps are float32.
        """
        if self._sum is None or self._sum_squares is None or self._sum_entropy is None:
            raise ValueError("no samples were added.")
        mean = self._sum / self.count
        entropy = _entropy(mean, dim=1)
        mutual_information = (entropy - self._sum_entropy / self.count).clamp_min(0)
        variance = (self._sum_squares / self.count - mean.square()).clamp_min(0).sum(1)
        maps = {
            "mean": mean.float(),
            "entropy": entropy.float(),
            "mutual_information": mutual_information.float(),
            "variance": variance.float(),
        }
        if self._sum_log is not None:
            maps["expected_cross_entropy"] = -(mean * self._sum_log / self.count).sum(1).float()
        if self.keep_labels:
            maps["labels"] = torch.stack(self._labels)
        return maps
