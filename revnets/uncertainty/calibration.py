"""Calibration of mean class probabilities against the annotators' soft labels.

With several annotators the target of a voxel is not one class but the share of annotators choosing each
class, ``q`` (:func:`revnets.uncertainty.disagreement.rater_soft_labels`). A calibrated model's confidence
``max_c p_c`` equals, on average over the voxels given that confidence, the share of annotators who chose its
predicted class ``q[argmax p]``. Arrays are numpy (or anything ``np.asarray`` takes); probabilities are
``(C, *spatial)``, one case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _flatten(
    probabilities: np.ndarray, soft_labels: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(C, *spatial)`` twice -> ``(V, C)`` twice over the voxels of ``mask`` (all when None)."""
    p, q = np.asarray(probabilities, dtype=np.float64), np.asarray(soft_labels, dtype=np.float64)
    if p.shape != q.shape or p.ndim < 2:
        raise ValueError(f"probabilities {p.shape} and soft labels {q.shape} must both be (C, *spatial).")
    if mask is None:
        return p.reshape(len(p), -1).T, q.reshape(len(q), -1).T
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != p.shape[1:]:
        raise ValueError(f"mask {mask.shape} must have the spatial shape {p.shape[1:]}.")
    return p[:, mask].T, q[:, mask].T


@dataclass(frozen=True)
class ReliabilityDiagram:
    """Confidence bins of one or more cases.

    Attributes:
        edges: bin edges ``(bins + 1,)`` over ``[0, 1]``.
        counts: voxels per bin ``(bins,)``.
        confidence: mean confidence ``max_c p_c`` per bin ``(bins,)`` (NaN for an empty bin).
        accuracy: mean share of annotators agreeing with the predicted class per bin ``(bins,)`` (NaN if empty).
    """

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray

    @property
    def expected_calibration_error(self) -> float:
        """``sum_b (n_b / n) |accuracy_b - confidence_b|``."""
        filled = self.counts > 0
        weights = self.counts[filled] / self.counts.sum()
        return float((weights * np.abs(self.accuracy[filled] - self.confidence[filled])).sum())


def reliability_diagram(
    probabilities: np.ndarray, soft_labels: np.ndarray, mask: np.ndarray | None = None, bins: int = 10
) -> ReliabilityDiagram:
    """Bin the voxels of ``mask`` by confidence into ``bins`` equal-width bins.

    Args:
        probabilities: mean class probabilities ``(C, *spatial)``.
        soft_labels: the annotators' class shares ``(C, *spatial)``.
        mask: the voxels to score ``(*spatial)`` bool; None: all.
        bins: number of bins over ``[0, 1]``; a confidence of exactly 1 falls into the last.
    """
    p, q = _flatten(probabilities, soft_labels, mask)
    predicted = p.argmax(1)
    confidence = p[np.arange(len(p)), predicted]
    agreement = q[np.arange(len(q)), predicted]
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(index, confidence, minlength=bins) / counts
        mean_agreement = np.bincount(index, agreement, minlength=bins) / counts
    return ReliabilityDiagram(edges, counts, mean_confidence, mean_agreement)


def combine_diagrams(diagrams: list[ReliabilityDiagram]) -> ReliabilityDiagram:
    """The diagram of all voxels of several cases (count-weighted bin means); the bins must match."""
    edges = diagrams[0].edges
    if any(d.edges.shape != edges.shape or not np.allclose(d.edges, edges) for d in diagrams):
        raise ValueError("reliability diagrams with different bins cannot be combined.")
    counts = np.sum([d.counts for d in diagrams], axis=0)

    def pooled(values: str) -> np.ndarray:
        total = sum(np.nan_to_num(getattr(d, values)) * d.counts for d in diagrams)
        with np.errstate(invalid="ignore", divide="ignore"):
            return total / counts

    return ReliabilityDiagram(edges, counts, pooled("confidence"), pooled("accuracy"))


def expected_calibration_error(
    probabilities: np.ndarray, soft_labels: np.ndarray, mask: np.ndarray | None = None, bins: int = 10
) -> float:
    """ECE of the top class against the annotators' shares (see :func:`reliability_diagram`). 0 is calibrated."""
    return reliability_diagram(probabilities, soft_labels, mask, bins).expected_calibration_error


def brier_score(probabilities: np.ndarray, soft_labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean over voxels of ``sum_c (p_c - q_c)^2`` against the annotators' shares ``q``; in ``[0, 2]``, lower is better.

    With several annotators its minimum is not 0 but is reached at ``p = q``.
    """
    p, q = _flatten(probabilities, soft_labels, mask)
    return float(np.square(p - q).sum(1).mean())
