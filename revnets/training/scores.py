"""Multi-rater scores of a sampling model as ignite metrics, for the evaluators of ``configs/evaluate.json``.

Each metric takes the evaluator's decollated output, one dict per volume with ``samples`` ``(N, *spatial)``
(class index of each sample, from :class:`~revnets.inference.SamplingInferer`), ``probabilities``
``(C, *spatial)`` (their mean) and ``raters`` ``(R, *spatial)`` (every annotator's label map), scores each
volume with :mod:`revnets.uncertainty`, and reports the mean over volumes (summed over processes under
``torch.distributed``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ignite.exceptions import NotComputableError
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce

from revnets.uncertainty import generalized_energy_distance, ncc
from revnets.uncertainty.calibration import expected_calibration_error
from revnets.uncertainty.disagreement import rater_soft_labels, tissue_neighbourhood


class VolumeScore(Metric):
    """The mean over volumes of ``score(output)``, ``output`` one volume's dict.

    Args:
        score: scores one volume.
        output_transform: applied to the engine's output first (default: unchanged).
    """

    def __init__(
        self, score: Callable[[Mapping[str, Any]], float], output_transform: Callable = lambda output: output
    ) -> None:
        self.score = score
        super().__init__(output_transform=output_transform)

    @reinit__is_reduced
    def reset(self) -> None:
        self._sum = torch.tensor(0.0, dtype=torch.float64)
        self._count = torch.tensor(0, dtype=torch.int64)

    @reinit__is_reduced
    def update(self, output: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        for volume in [output] if isinstance(output, Mapping) else output:
            self._sum += float(self.score(volume))
            self._count += 1

    @sync_all_reduce("_sum", "_count")
    def compute(self) -> float:
        if int(self._count) == 0:
            raise NotComputableError("no volume was scored.")
        return float(self._sum / self._count)


def _raters(volume: Mapping[str, Any]) -> torch.Tensor:
    return torch.as_tensor(volume["raters"]).round().long().cpu()


def _samples(volume: Mapping[str, Any]) -> torch.Tensor:
    return torch.as_tensor(volume["samples"]).long().cpu()


class GeneralizedEnergyDistance(VolumeScore):
    """Squared GED between the samples and the raters (:func:`revnets.uncertainty.generalized_energy_distance`),
    IoU averaged over ``range(1, num_classes)`` as in PHiSeg's reference. Lower is better."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(
            lambda v: float(generalized_energy_distance(_samples(v), _raters(v), num_classes=num_classes))
        )


class SampleNCC(VolumeScore):
    """``S_NCC`` of the label samples (one-hot) against the raters (:func:`revnets.uncertainty.ncc`). Higher is
    better; a volume whose raters all agree has no defined correlation and is scored NaN."""

    def __init__(self, num_classes: int) -> None:
        def score(volume: Mapping[str, Any]) -> float:
            one_hot = torch.nn.functional.one_hot(_samples(volume), num_classes).movedim(-1, 1).float()
            return float(ncc(one_hot, _raters(volume)))

        super().__init__(score)


class CalibrationError(VolumeScore):
    """ECE of the mean probabilities against the raters' shares over the tissue neighbourhood (voxels any rater
    labels as foreground, dilated by ``margin``) (:func:`revnets.uncertainty.calibration.expected_calibration_error`).
    0 is calibrated."""

    def __init__(self, num_classes: int, margin: int = 2, bins: int = 10) -> None:
        def score(volume: Mapping[str, Any]) -> float:
            raters = _raters(volume).numpy()
            probabilities = np.asarray(torch.as_tensor(volume["probabilities"]).cpu().double())
            soft = rater_soft_labels(raters, num_classes)
            return expected_calibration_error(probabilities, soft, tissue_neighbourhood(raters, margin), bins)

        super().__init__(score)
