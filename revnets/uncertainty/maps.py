"""Per-voxel uncertainty maps from samples of class probabilities ``(N, B, C, *spatial)``."""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12


def _check(samples: Tensor) -> Tensor:
    if samples.dim() < 4:
        raise ValueError(f"samples must be (N, B, C, *spatial) probabilities, got shape {tuple(samples.shape)}.")
    if not torch.isfinite(samples).all():
        raise ValueError("samples contain NaN or infinite values.")
    return samples


def entropy(p: Tensor, dim: int) -> Tensor:
    """Shannon entropy (nats) of distributions ``p`` along ``dim``; ``0 log 0 = 0``."""
    return -(p * p.clamp_min(EPS).log()).sum(dim)


def class_argmax(p: Tensor, dim: int, dtype: torch.dtype = torch.int64) -> Tensor:
    """Index of the largest of finite values along ``dim``, the first one on ties: ``torch.argmax(p, dim)``.

    One comparison per class instead of a reduction along ``dim``: on CPU, ``torch.argmax`` over a short class
    axis that is not the last (``(N, B, C, *spatial)`` with a few classes) is several times slower.
    """
    best = p.select(dim, 0)
    index = torch.zeros(best.shape, dtype=dtype, device=p.device)
    for c in range(1, p.shape[dim]):
        value = p.select(dim, c)
        index.masked_fill_(value > best, c)
        best = torch.maximum(best, value)
    return index


def predictive_entropy(samples: Tensor) -> Tensor:
    """Entropy of the mean prediction: ``(N, B, C, *spatial) -> (B, *spatial)``, in ``[0, log C]``."""
    return entropy(_check(samples).mean(0), dim=1)


def mutual_information(samples: Tensor) -> Tensor:
    """Entropy of the mean minus the mean entropy (BALD): ``(N, B, C, *spatial) -> (B, *spatial)``.

    The part of the predictive entropy that comes from samples disagreeing (epistemic); 0 when all
    samples are equal.
    """
    samples = _check(samples)
    return (predictive_entropy(samples) - entropy(samples, dim=2).mean(0)).clamp_min(0)


def sample_variance(samples: Tensor) -> Tensor:
    """Variance over samples of each class probability, summed over classes: ``(B, *spatial)``.

    Population variance (divides by N), so one sample gives 0.
    """
    return _check(samples).var(0, correction=0).sum(1)


def expected_cross_entropy(samples: Tensor, eps: float = 1e-8) -> Tensor:
    """PHiSeg's gamma map ``E_s[CE(mean, s)] = -E_s[sum_c mean_c log(s_c + eps)]``:
    ``(N, B, C, *spatial) -> (B, *spatial)``.

    The cross-entropy between the mean prediction and each sample, averaged over samples, with the
    reference's ``eps`` inside the logarithm (baumgach/PHiSeg-code, ``variance_ncc_dist``). It is zero when
    all samples agree and grows where they disagree; :func:`revnets.uncertainty.ncc` correlates it with the
    annotators' error maps.
    """
    samples = _check(samples)
    return -(samples.mean(0) * (samples + eps).log().mean(0)).sum(1)
