"""Rater disagreement, the boundary-distance baseline, AUROC and Spearman on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from revnets.uncertainty.disagreement import (
    auroc,
    boundary_proximity,
    rater_disagreement,
    rater_soft_labels,
    spearman,
    tissue_neighbourhood,
)

RATERS = np.array([[0, 1], [0, 1], [0, 2], [1, 2]])  # four raters, two voxels


def test_soft_labels_and_disagreement_of_four_raters() -> None:
    assert rater_soft_labels(RATERS, 3).tolist() == [[0.75, 0.0], [0.25, 0.5], [0.0, 0.5]]
    assert rater_disagreement(RATERS, 3).tolist() == [0.25, 0.5]
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        rater_soft_labels(RATERS, 2)


def test_auroc_counts_correctly_ordered_pairs_and_ties_half() -> None:
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, True, False, True]) == 1.0
    assert auroc([0.1, 0.4, 0.35, 0.8], [True, False, True, False]) == 0.0
    assert auroc([1, 2, 3, 4], [False, True, True, False]) == 0.5
    assert auroc([1, 1], [True, False]) == 0.5
    assert math.isnan(auroc([1, 2], [True, True]))


def test_spearman_is_a_rank_correlation() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_boundary_proximity_is_minus_the_distance_in_mm_to_another_label() -> None:
    assert boundary_proximity(np.array([0, 0, 0, 1, 1]), spacing=2.0).tolist() == [-6, -4, -2, -2, -4]
    assert np.isneginf(boundary_proximity(np.zeros((3, 3), dtype=int))).all()


def test_tissue_neighbourhood_dilates_any_raters_foreground() -> None:
    raters = np.zeros((2, 7), dtype=int)
    raters[1, 3] = 2
    assert tissue_neighbourhood(raters, margin=2).tolist() == [False, True, True, True, True, True, False]
    assert tissue_neighbourhood(raters, margin=0).sum() == 1
