"""Segmentation-uncertainty metrics against small hand-computed cases (1D maps of 4 voxels unless said)."""

from __future__ import annotations

import math

import pytest
import torch

from revnets.uncertainty import dice, generalized_energy_distance, hungarian_matched_iou, mean_pairwise_distance, ncc

A = torch.tensor([1, 1, 0, 0])
B = torch.tensor([0, 0, 1, 1])  # disjoint from A
C = torch.tensor([1, 0, 0, 0])  # IoU(A, C) = 1/2
EMPTY = torch.zeros(4, dtype=torch.long)
K = -math.log(1e-8)  # cross-entropy of a zero probability under the reference's epsilon
LOG2 = math.log(2)


def _maps(*maps: torch.Tensor) -> torch.Tensor:
    return torch.stack(maps)


def test_ged_of_identical_sets_is_zero() -> None:
    assert generalized_energy_distance(_maps(A, A, A), _maps(A, A)).item() == pytest.approx(0, abs=1e-12)
    # All pairs (i == j included) enter the within-set means, so two distinct masks also give 0.
    assert generalized_energy_distance(_maps(A, B), _maps(B, A)).item() == pytest.approx(0, abs=1e-12)


def test_ged_of_one_sample_against_two_annotators() -> None:
    # 2 * (d(A,A) + d(A,C)) / 2 - 0 - (0 + 1/2 + 1/2 + 0) / 4 = 1/2 - 1/4
    assert generalized_energy_distance(_maps(A), _maps(A, C)).item() == pytest.approx(0.25)


def test_ged_distance_of_empty_disjoint_and_half_overlapping_masks() -> None:
    # With one map per set D^2_GED = 2 d(s, y).
    assert generalized_energy_distance(_maps(EMPTY), _maps(EMPTY)).item() == 0
    assert generalized_energy_distance(_maps(EMPTY), _maps(EMPTY), labels=[1]).item() == 0
    assert generalized_energy_distance(_maps(A), _maps(B)).item() == pytest.approx(2)
    assert generalized_energy_distance(_maps(EMPTY), _maps(A)).item() == pytest.approx(2)
    assert generalized_energy_distance(_maps(A), _maps(C)).item() == pytest.approx(1)


def test_ged_averages_iou_over_labels_and_absent_labels_count_as_agreement() -> None:
    sample, annotation = torch.tensor([1, 1, 2, 0]), torch.tensor([1, 0, 2, 2])  # IoU 1/2 for class 1 and for 2
    assert generalized_energy_distance(_maps(sample), _maps(annotation)).item() == pytest.approx(1)
    # The reference's labels=range(1, nlabels): class 3 is empty in both maps, IoU 1, d = 1 - 2/3.
    assert generalized_energy_distance(_maps(sample), _maps(annotation), labels=[1, 2, 3]).item() == pytest.approx(
        2 / 3
    )


@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)])
def test_hm_iou_of_a_perfect_predictor_is_one(spatial) -> None:
    annotations = torch.randint(0, 3, (3, *spatial))
    assert hungarian_matched_iou(annotations.flip(0), annotations).item() == pytest.approx(1)
    assert hungarian_matched_iou(annotations.repeat(2, *[1] * len(spatial)), annotations).item() == pytest.approx(1)


def test_hm_iou_matching_beats_greedy_and_tiles_to_the_lcm() -> None:
    # IoU matrix [[1, 0], [1/2, 0]]: A->A, C->B (1 + 0) beats A->B, C->A (0 + 1/2).
    assert hungarian_matched_iou(_maps(A, C), _maps(A, B)).item() == pytest.approx(0.5)
    # One sample, two annotators: C is repeated, (1/2 + 0) / 2.
    assert hungarian_matched_iou(_maps(C), _maps(A, B)).item() == pytest.approx(0.25)
    # N=2, M=3 -> 6 each: samples 3 A + 3 B, annotations 4 A + 2 B; 5 perfect matches, one B-A at IoU 0.
    assert hungarian_matched_iou(_maps(A, B), _maps(A, A, B)).item() == pytest.approx(5 / 6)


def test_ncc_of_a_perfect_predictor_is_one() -> None:
    annotations = _maps(torch.tensor([0, 1, 1, 0, 1]), torch.tensor([0, 1, 0, 1, 1]))
    samples = torch.nn.functional.one_hot(annotations, 2).movedim(-1, 1).double()
    assert ncc(samples, annotations).item() == pytest.approx(1, abs=1e-9)


def test_ncc_of_anti_correlated_and_mixed_annotators() -> None:
    # One sample: voxel 0 is (1/2, 1/2), gamma log 2; voxel 1 is (1, 0), gamma 0.
    samples = torch.tensor([[[0.5, 1.0], [0.5, 0.0]]])
    along, against = torch.tensor([0, 0]), torch.tensor([0, 1])  # annotator CE maps (log 2, 0) and (log 2, K)
    assert ncc(samples, _maps(along)).item() == pytest.approx(1)
    assert ncc(samples, _maps(against)).item() == pytest.approx(-1)
    assert ncc(samples, _maps(along, against)).item() == pytest.approx(0, abs=1e-9)


def test_ncc_of_a_hand_computed_four_voxel_case() -> None:
    samples = torch.tensor([[[1.0, 0.5, 1.0, 0.5], [0.0, 0.5, 0.0, 0.5]]])
    annotations = _maps(torch.tensor([0, 0, 1, 1]))
    # gamma = log2 * (0, 1, 0, 1); annotator CE = (0, log2, K, log2).
    mean_ce = (2 * LOG2 + K) / 4
    covariance = LOG2 * (2 * LOG2 - K) / 8  # gamma - mean(gamma) = log2 * (-1/2, 1/2, -1/2, 1/2)
    ce_std = math.sqrt((2 * LOG2**2 + K**2) / 4 - mean_ce**2)
    expected = covariance / (0.5 * LOG2 * ce_std)
    assert ncc(samples, annotations).item() == pytest.approx(expected, rel=1e-6)


def test_ncc_is_nan_when_a_map_is_constant() -> None:
    samples = torch.nn.functional.one_hot(A, 2).T[None].double()
    assert math.isnan(ncc(samples, _maps(A)).item())


def test_dice_per_class_with_empty_classes() -> None:
    prediction, target = torch.tensor([1, 1, 2, 3]), torch.tensor([1, 0, 2, 2])
    # 0: only in target -> 0; 1, 2: 2*1 / (2+1); 3: only in prediction -> 0; 4: empty in both -> 1.
    scores = dice(prediction, target, labels=[0, 1, 2, 3, 4])
    assert torch.allclose(scores, torch.tensor([0, 2 / 3, 2 / 3, 0, 1], dtype=torch.float64))


def test_dice_of_a_3d_map_with_itself_is_one() -> None:
    labels = torch.randint(0, 3, (4, 5, 6))
    assert torch.equal(dice(labels, labels.clone(), labels=[1, 2]), torch.ones(2, dtype=torch.float64))


def test_bad_inputs_are_rejected() -> None:
    maps = _maps(A, B)
    with pytest.raises(ValueError, match="spatial shape"):
        generalized_energy_distance(maps, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="set of label maps"):
        hungarian_matched_iou(A, maps)
    with pytest.raises(ValueError, match="empty set"):
        generalized_energy_distance(maps[:0], maps)
    with pytest.raises(ValueError, match="integer labels"):
        hungarian_matched_iou(maps.float(), maps)
    with pytest.raises(ValueError, match="at least one class"):
        generalized_energy_distance(maps, maps, labels=[])
    probabilities = torch.full((3, 2, 4), 0.5)
    with pytest.raises(ValueError, match="spatial shape"):
        ncc(probabilities, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ncc(probabilities, _maps(torch.tensor([0, 1, 2, 0])))
    with pytest.raises(ValueError, match=r"\(N, C, \*spatial\)"):
        ncc(probabilities[0], maps)
    with pytest.raises(ValueError, match="differ in shape"):
        dice(A, torch.zeros(5, dtype=torch.long), labels=[1])


def _reference_style_ged(samples: torch.Tensor, annotations: torch.Tensor, classes: int) -> float:
    """GED by the reference's definition, written out with loops: IoU per foreground class 1..classes-1,
    1 when absent from both maps, 0 when absent from one, averaged; all pairs, diagonal included."""

    def distance(a: torch.Tensor, b: torch.Tensor) -> float:
        ious = []
        for label in range(1, classes):
            x, y = a == label, b == label
            if not x.any() and not y.any():
                ious.append(1.0)
            elif not x.any() or not y.any():
                ious.append(0.0)
            else:
                ious.append(float((x & y).sum() / (x | y).sum()))
        return 1 - sum(ious) / (classes - 1)

    def mean(xs: torch.Tensor, ys: torch.Tensor) -> float:
        return sum(distance(x, y) for x in xs for y in ys) / (len(xs) * len(ys))

    return 2 * mean(samples, annotations) - mean(samples, samples) - mean(annotations, annotations)


def test_ged_with_num_classes_follows_the_reference_convention() -> None:
    sample, annotation = torch.tensor([1, 1, 0, 0]), torch.tensor([1, 0, 0, 0])
    # Classes 1 and 2: IoU 1/2 for class 1, class 2 absent from both counts as 1, d = 1/4.
    assert generalized_energy_distance(_maps(sample), _maps(annotation), num_classes=3).item() == pytest.approx(0.5)
    # Present labels only (the default without num_classes): d = 1/2.
    assert generalized_energy_distance(_maps(sample), _maps(annotation)).item() == pytest.approx(1.0)
    generator = torch.Generator().manual_seed(0)
    samples = torch.randint(0, 3, (5, 4, 6), generator=generator)  # class 3 never occurs
    annotations = torch.randint(0, 3, (3, 4, 6), generator=generator)
    expected = _reference_style_ged(samples, annotations, classes=4)
    assert generalized_energy_distance(samples, annotations, num_classes=4).item() == pytest.approx(expected)
    assert hungarian_matched_iou(samples, annotations, num_classes=4).item() == pytest.approx(
        hungarian_matched_iou(samples, annotations, labels=[1, 2, 3]).item()
    )


def test_labels_and_num_classes_are_exclusive_and_checked() -> None:
    with pytest.raises(ValueError, match="not both"):
        generalized_energy_distance(_maps(A), _maps(B), labels=[1], num_classes=2)
    with pytest.raises(ValueError, match="at least one class"):
        hungarian_matched_iou(_maps(A), _maps(B), num_classes=1)


def test_mean_pairwise_distance_averages_distinct_pairs() -> None:
    # d(A, C) = 1/2, d(A, B) = d(C, B) = 1.
    assert mean_pairwise_distance(_maps(A, C, B)).item() == pytest.approx(2.5 / 3)
    assert mean_pairwise_distance(_maps(A, A)).item() == 0
    # With class 2 counted (absent: IoU 1) every distance halves.
    assert mean_pairwise_distance(_maps(A, C, B), num_classes=3).item() == pytest.approx(2.5 / 6)
    with pytest.raises(ValueError, match="at least 2 maps"):
        mean_pairwise_distance(_maps(A))
