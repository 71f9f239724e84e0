"""Metrics of predicted samples against a set of annotations, after PHiSeg (Baumgartner et al., MICCAI 2019).

Each metric scores ONE case: samples ``(N, *spatial)`` (integer label maps, or for :func:`ncc` class
probabilities ``(N, C, *spatial)``) against that case's annotations ``(M, *spatial)``. For a batch
``(N, B, ...)`` call it per case on ``samples[:, b]``. Results are 0-dim (or, for :func:`dice`, 1-dim)
``float64`` tensors on the samples' device.

Conventions shared by :func:`generalized_energy_distance`, :func:`hungarian_matched_iou` and
:func:`mean_pairwise_distance`, as in the reference code (baumgach/PHiSeg-code,
``utils.generalised_energy_distance``): the similarity of two label maps is their IoU per class averaged
over ``labels``, where a class empty in both maps has IoU 1 and a class empty in only one has IoU 0; their
distance is ``d = 1 - IoU``. Which classes to average over matters (up to 0.4 in GED on tissue maps): the
reference passes every foreground class of the task, ``label_range=range(1, nlabels)``, including ones
absent from this case, which each add an IoU of 1. Pass ``num_classes`` (then ``labels`` is
``range(1, num_classes)``, the reference's convention) or ``labels`` explicitly; with neither, ``labels``
is every nonzero label present in the samples or annotations (the behaviour of earlier versions, kept for
callers that relied on it). With no labels at all (every map is background) all maps agree: ``d = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.metrics import compute_dice
from scipy.optimize import linear_sum_assignment
from torch import Tensor

NCC_EPS = 1e-8
"""Added to probabilities inside the logarithm of the cross-entropy maps, as in the reference."""


def _check_integer(name: str, maps: Tensor) -> None:
    if maps.is_floating_point() or maps.is_complex():
        raise ValueError(f"{name} must hold integer labels, got dtype {maps.dtype}.")


def _check_set(name: str, maps: Tensor) -> None:
    if maps.dim() < 2:
        raise ValueError(f"{name} must be a set of label maps (count, *spatial), got shape {tuple(maps.shape)}.")
    if maps.shape[0] == 0:
        raise ValueError(f"{name} is an empty set: it holds no label maps.")
    _check_integer(name, maps)


def _check_sets(samples: Tensor, annotations: Tensor) -> None:
    _check_set("samples", samples)
    _check_set("annotations", annotations)
    if samples.shape[1:] != annotations.shape[1:]:
        raise ValueError(
            f"samples {tuple(samples.shape)} and annotations {tuple(annotations.shape)} differ in spatial shape."
        )


def _labels(
    samples: Tensor, annotations: Tensor, labels: Sequence[int] | None, num_classes: int | None = None
) -> list[int]:
    if labels is not None and num_classes is not None:
        raise ValueError("give labels or num_classes, not both.")
    if num_classes is not None:
        if num_classes < 2:
            raise ValueError(f"num_classes must count background and at least one class, got {num_classes}.")
        return list(range(1, num_classes))
    if labels is None:
        present = set(torch.unique(samples).tolist()) | set(torch.unique(annotations).tolist())
        return sorted(int(label) for label in present if label != 0)
    labels = [int(label) for label in labels]
    if not labels:
        raise ValueError("labels must name at least one class (or be None for every nonzero label present).")
    return labels


def _pairwise_iou(a: Tensor, b: Tensor, labels: list[int]) -> Tensor:
    """IoU averaged over ``labels`` between every map of ``a`` ``(N, *spatial)`` and of ``b`` ``(M, *spatial)``.

    Returns ``(N, M)`` float64; a class empty in both maps has IoU 1.
    """
    if not labels:
        return torch.ones(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    iou = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64, device=a.device)
    for label in labels:
        mask_a = (a == label).flatten(1).double()
        mask_b = (b == label).flatten(1).double()
        intersection = mask_a @ mask_b.T
        union = mask_a.sum(1, keepdim=True) + mask_b.sum(1) - intersection
        iou += torch.where(union > 0, intersection / union.clamp_min(1), 1.0)
    return iou / len(labels)


def generalized_energy_distance(
    samples: Tensor, annotations: Tensor, labels: Sequence[int] | None = None, num_classes: int | None = None
) -> Tensor:
    """Squared generalised energy distance ``D^2_GED`` between samples and annotations, as PHiSeg reports it.

    ``D^2_GED = 2 E[d(S, Y)] - E[d(S, S')] - E[d(Y, Y')]`` with ``d = 1 - IoU`` (see the module docstring).
    As in the reference, the expectations are plain means over all pairs, the pairs ``i == j`` included
    (``1/N^2`` and ``1/M^2``), so identical sets are at distance 0. Lower is better; this is the squared
    distance, not its square root.

    Args:
        samples: predicted label maps ``(N, *spatial)``, integer.
        annotations: annotators' label maps ``(M, *spatial)``, integer.
        labels: classes to average the IoU over; default every nonzero label present.
        num_classes: instead of ``labels``, the task's number of classes (background included): the IoU is
            averaged over ``range(1, num_classes)`` as in the reference.

    Returns:
        0-dim float64 tensor.
    """
    _check_sets(samples, annotations)
    annotations = annotations.to(samples.device)
    labels = _labels(samples, annotations, labels, num_classes)
    cross = 1 - _pairwise_iou(samples, annotations, labels)
    within_samples = 1 - _pairwise_iou(samples, samples, labels)
    within_annotations = 1 - _pairwise_iou(annotations, annotations, labels)
    return 2 * cross.mean() - within_samples.mean() - within_annotations.mean()


def hungarian_matched_iou(
    samples: Tensor, annotations: Tensor, labels: Sequence[int] | None = None, num_classes: int | None = None
) -> Tensor:
    """Mean IoU of the best one-to-one matching of samples to annotations (HM-IoU, Kohl et al. 2019).

    Both sets are repeated to ``L = lcm(N, M)`` maps (the samples ``L / N`` times, the annotations
    ``L / M`` times; with ``N`` a multiple of ``M``, as usual, only the annotations are repeated), the
    ``(L, L)`` IoU matrix is solved by the Hungarian algorithm maximising IoU, and the matched IoUs are
    averaged. Higher is better; a predictor whose samples are the annotations scores 1.

    Args:
        samples: predicted label maps ``(N, *spatial)``, integer.
        annotations: annotators' label maps ``(M, *spatial)``, integer.
        labels: classes to average the IoU over; default every nonzero label present.
        num_classes: instead of ``labels``, average over ``range(1, num_classes)`` (the reference's convention).

    Returns:
        0-dim float64 tensor.
    """
    _check_sets(samples, annotations)
    annotations = annotations.to(samples.device)
    iou = _pairwise_iou(samples, annotations, _labels(samples, annotations, labels, num_classes))
    n, m = iou.shape
    common = math.lcm(n, m)
    tiled = iou.tile(common // n, common // m)
    rows, cols = linear_sum_assignment(tiled.cpu().numpy(), maximize=True)
    return tiled[torch.as_tensor(rows), torch.as_tensor(cols)].mean()


def mean_pairwise_distance(maps: Tensor, labels: Sequence[int] | None = None, num_classes: int | None = None) -> Tensor:
    """The spread of a set of label maps: ``E[d(S, S')]`` over distinct pairs, ``d = 1 - IoU``.

    Compare the samples' spread with the annotators' (the same function on the annotations): GED rewards
    spread (its ``- E[d(S, S')]`` term), so a model can lower GED by sampling wider than the annotators
    disagree. Distinct pairs ``i != j`` only (unlike GED's within-set terms), so identical maps give 0 and
    the value does not shrink with fewer maps.

    Args:
        maps: label maps ``(N, *spatial)``, integer, ``N >= 2``.
        labels, num_classes: the classes the IoU is averaged over, as for :func:`generalized_energy_distance`.

    Returns:
        0-dim float64 tensor.
    """
    _check_set("maps", maps)
    if maps.shape[0] < 2:
        raise ValueError(f"the spread of a set needs at least 2 maps, got {maps.shape[0]}.")
    distance = 1 - _pairwise_iou(maps, maps, _labels(maps, maps, labels, num_classes))
    n = maps.shape[0]
    return distance.sum() / (n * (n - 1))


def _correlation(a: Tensor, b: Tensor) -> Tensor:
    """Normalised cross-correlation of map ``a`` ``(*spatial)`` with each map of ``b`` ``(M, *spatial)``: ``(M,)``.

    Pearson's correlation (population standard deviations), NaN where a map is constant.
    """
    a, b = a.flatten(), b.flatten(1)
    a_centred = a - a.mean()
    b_centred = b - b.mean(1, keepdim=True)
    covariance = (b_centred * a_centred).mean(1)
    spread = a_centred.square().mean().sqrt() * b_centred.square().mean(1).sqrt()
    constant = (a.amax() == a.amin()) | (b.amax(1) == b.amin(1))
    return torch.where(constant, math.nan, covariance / spread.where(~constant, 1.0))


def ncc(sample_probabilities: Tensor, annotations: Tensor) -> Tensor:
    """PHiSeg's ``S_NCC``: how well the samples' uncertainty map predicts where the annotators disagree.

    As the reference (``utils.variance_ncc_dist``), with ``CE(t, s) = -sum_c t_c log(s_c + 1e-8)`` and the
    expectations over the ``N`` samples ``s`` (softmax probabilities, not arg-max one-hots):

    - the samples' map ``gamma = E_s[CE(mean_s, s)]``, the mean prediction against each sample;
    - annotator ``j``'s map ``E_s[CE(y_j, s)]``, its one-hot label against each sample;
    - ``S_NCC`` = the mean over annotators of the normalised cross-correlation (Pearson) of the two maps.

    ``gamma`` is :func:`revnets.uncertainty.expected_cross_entropy`. Higher is better, at most 1. An
    annotator whose map, or a ``gamma`` that, is constant over the image has no defined correlation: the
    result is then NaN (the reference divides by a zero standard deviation there).

    Args:
        sample_probabilities: class probabilities ``(N, C, *spatial)``.
        annotations: annotators' label maps ``(M, *spatial)``, integer in ``[0, C)``.

    Returns:
        0-dim float64 tensor.
    """
    if sample_probabilities.dim() < 3 or sample_probabilities.shape[0] == 0:
        raise ValueError(
            f"sample_probabilities must be (N, C, *spatial) with N >= 1, got shape {tuple(sample_probabilities.shape)}."
        )
    if not sample_probabilities.is_floating_point() or not torch.isfinite(sample_probabilities).all():
        raise ValueError("sample_probabilities must be finite floating-point class probabilities.")
    _check_set("annotations", annotations)
    if sample_probabilities.shape[2:] != annotations.shape[1:]:
        raise ValueError(
            f"sample_probabilities {tuple(sample_probabilities.shape)} and annotations "
            f"{tuple(annotations.shape)} differ in spatial shape."
        )
    classes = sample_probabilities.shape[1]
    annotations = annotations.to(sample_probabilities.device).long()
    if annotations.min() < 0 or annotations.max() >= classes:
        raise ValueError(f"annotations must hold labels in [0, {classes}) for {classes} classes.")
    probabilities = sample_probabilities.double()
    # E_s[CE(t, s)] = -sum_c t_c E_s[log(s_c + eps)]: one mean log-probability serves every target t.
    mean_log = (probabilities + NCC_EPS).log().mean(0)
    annotators_one_hot = torch.nn.functional.one_hot(annotations, classes).movedim(-1, 1).double()
    targets = torch.cat([probabilities.mean(0, keepdim=True), annotators_one_hot])
    cross_entropy = -(targets * mean_log).sum(1)
    return _correlation(cross_entropy[0], cross_entropy[1:]).mean()


def dice(prediction: Tensor, target: Tensor, labels: Sequence[int]) -> Tensor:
    """Dice per class between two integer label maps of one case, by MONAI's ``compute_dice``.

    A class empty in both maps scores 1.0 (MONAI's ``ignore_empty=False``), one empty only in the target
    scores 0.

    Args:
        prediction: label map ``(*spatial)``, integer.
        target: label map ``(*spatial)``, integer, same shape.
        labels: the classes to score, in the order of the result.

    Returns:
        ``(len(labels),)`` float64 tensor.
    """
    _check_integer("prediction", prediction)
    _check_integer("target", target)
    if prediction.dim() == 0:
        raise ValueError("prediction must be a label map with at least one spatial dim, got a 0-dim tensor.")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape.")
    labels = [int(label) for label in labels]
    if not labels:
        raise ValueError("labels must name at least one class.")
    scores = compute_dice(
        _class_masks(prediction, labels),
        _class_masks(target.to(prediction.device), labels),
        include_background=True,
        ignore_empty=False,
    )
    return scores[0]


def _class_masks(label_map: Tensor, labels: list[int]) -> Tensor:
    """One binary channel per label: ``(*spatial) -> (1, len(labels), *spatial)`` float64."""
    return torch.stack([label_map == label for label in labels]).unsqueeze(0).double()
