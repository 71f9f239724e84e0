"""Where raters disagree, and how well a per-voxel uncertainty map ranks those voxels.

An uncertainty map is worth showing only if it beats what anyone can compute without a model: the
distance to the nearest boundary of the segmentation (:func:`boundary_proximity`). Report every map's
:func:`auroc` and :func:`spearman` next to that baseline's, over the same voxels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats


def rater_soft_labels(raters: np.ndarray, num_classes: int) -> np.ndarray:
    """The fraction of raters choosing each class: ``(R, *spatial)`` integer -> ``(C, *spatial)`` float64."""
    raters = np.asarray(raters)
    if raters.ndim < 2 or np.issubdtype(raters.dtype, np.floating):
        raise ValueError(f"raters must be integer label maps (R, *spatial), got {raters.dtype} {raters.shape}.")
    if raters.min() < 0 or raters.max() >= num_classes:
        raise ValueError(f"raters must hold labels in [0, {num_classes}).")
    return np.stack([(raters == c).mean(0) for c in range(num_classes)])


def rater_disagreement(raters: np.ndarray, num_classes: int) -> np.ndarray:
    """How much the raters disagree per voxel: ``1 - `` the majority's share, ``(R, *spatial) -> (*spatial)``.

    0 where all raters agree; with 4 raters 0.25 where one deviates and 0.5 for a 2-2 split.
    """
    return 1.0 - rater_soft_labels(raters, num_classes).max(0)


def boundary_proximity(labels: np.ndarray, spacing: float | tuple[float, ...] = 1.0) -> np.ndarray:
    """The boundary-distance baseline: minus the distance (mm) to the nearest voxel of another label.

    Higher near a boundary of ``labels`` ``(*spatial)``, so it ranks like an uncertainty map. A map with one
    label everywhere has no boundary: every voxel gets ``-inf``.
    """
    labels = np.asarray(labels)
    distance = np.full(labels.shape, np.inf)
    for label in np.unique(labels):
        inside = labels == label
        if inside.all():
            break
        distance = np.where(inside, ndimage.distance_transform_edt(inside, sampling=spacing), distance)
    return -distance


def tissue_neighbourhood(raters: np.ndarray, margin: int = 2) -> np.ndarray:
    """The voxels any rater labels as foreground, dilated by ``margin`` voxels: ``(R, *spatial) -> (*spatial)`` bool.

    Scores over this region ignore the easy, empty background far from the tissue.
    """
    foreground = (np.asarray(raters) > 0).any(0)
    return np.asarray(ndimage.binary_dilation(foreground, iterations=margin) if margin else foreground)


def auroc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for the bool ``positives`` (Mann-Whitney U, ties count half).

    0.5 is chance, 1 a perfect ranking. NaN when all voxels are positive or all negative.
    """
    scores, positives = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(positives, dtype=bool).ravel()
    if scores.shape != positives.shape:
        raise ValueError(f"scores {scores.shape} and positives {positives.shape} differ in size.")
    n_pos = int(positives.sum())
    n_neg = positives.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = stats.rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def spearman(scores: np.ndarray, target: np.ndarray) -> float:
    """Spearman's rank correlation of ``scores`` with ``target`` (e.g. :func:`rater_disagreement`).

    NaN if either is constant.
    """
    scores, target = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(target, dtype=np.float64).ravel()
    if scores.shape != target.shape:
        raise ValueError(f"scores {scores.shape} and target {target.shape} differ in size.")
    if np.ptp(scores) == 0 or np.ptp(target) == 0:
        return float("nan")
    return float(stats.spearmanr(scores, target).statistic)
