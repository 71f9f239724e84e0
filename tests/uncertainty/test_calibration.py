"""Calibration against annotators' soft labels, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from revnets.uncertainty.calibration import (
    brier_score,
    combine_diagrams,
    expected_calibration_error,
    reliability_diagram,
)

# Four voxels, two classes: (C, V).
P = np.array([[0.9, 0.6, 0.3, 0.5], [0.1, 0.4, 0.7, 0.5]])
Q = np.array([[1.0, 0.5, 0.25, 0.5], [0.0, 0.5, 0.75, 0.5]])


def test_reliability_bins_by_top_class_confidence_against_the_annotators_share() -> None:
    diagram = reliability_diagram(P, Q, bins=4)
    # Confidences 0.9, 0.6, 0.7, 0.5 (a tie picks class 0); the annotators' share of that class 1, .5, .75, .5.
    assert diagram.counts.tolist() == [0, 0, 3, 1]
    assert diagram.confidence[2:] == pytest.approx([0.6, 0.9])
    assert diagram.accuracy[2:] == pytest.approx([1.75 / 3, 1.0])
    assert np.isnan(diagram.confidence[:2]).all()
    assert diagram.expected_calibration_error == pytest.approx(0.75 * (0.6 - 1.75 / 3) + 0.25 * 0.1)


def test_ece_and_brier_of_a_hand_computed_case() -> None:
    assert expected_calibration_error(P, Q, bins=4) == pytest.approx(0.0375)
    assert brier_score(P, Q) == pytest.approx((0.02 + 0.02 + 0.005 + 0.0) / 4)


def test_predicting_the_annotators_shares_is_calibrated_and_overconfidence_is_not() -> None:
    rng = np.random.default_rng(0)
    shares = rng.dirichlet(np.ones(3), size=(6, 7)).transpose(2, 0, 1)  # (C, 6, 7)
    assert expected_calibration_error(shares, shares) == pytest.approx(0, abs=1e-12)
    assert brier_score(shares, shares) == pytest.approx(0)
    one_hot = np.eye(3)[shares.argmax(0)].transpose(2, 0, 1)
    assert expected_calibration_error(one_hot, shares) > 0.2
    assert brier_score(one_hot, shares) > brier_score(shares, shares)


def test_mask_selects_the_scored_voxels_and_diagrams_combine_like_pooled_voxels() -> None:
    mask = np.array([True, False, True, False])
    assert brier_score(P, Q, mask) == pytest.approx((0.02 + 0.005) / 2)
    pooled = reliability_diagram(P, Q, bins=4)
    parts = [reliability_diagram(P, Q, mask, bins=4), reliability_diagram(P, Q, ~mask, bins=4)]
    combined = combine_diagrams(parts)
    assert combined.counts.tolist() == pooled.counts.tolist()
    assert combined.expected_calibration_error == pytest.approx(pooled.expected_calibration_error)


def test_mismatched_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(C, \*spatial\)"):
        brier_score(P, Q[:, :3])
    with pytest.raises(ValueError, match="spatial shape"):
        expected_calibration_error(P, Q, mask=np.ones(3, dtype=bool))
