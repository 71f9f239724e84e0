"""Uncertainty maps on known distributions, and the streaming aggregator against the batch functions."""

from __future__ import annotations

import math

import pytest
import torch

from revnets.core.memory import allocated_peak_bytes
from revnets.uncertainty import (
    StreamingUncertainty,
    class_argmax,
    expected_cross_entropy,
    mutual_information,
    predictive_entropy,
    sample_variance,
)


def _one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels, classes).movedim(-1, 2).double()


@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)])
def test_identical_one_hot_samples_are_certain(spatial) -> None:
    labels = torch.randint(0, 3, (1, 2, *spatial)).expand(4, -1, *spatial)
    samples = _one_hot(labels, 3)
    for fn in (predictive_entropy, mutual_information, sample_variance, expected_cross_entropy):
        out = fn(samples)
        assert out.shape == (2, *spatial) and torch.allclose(out, torch.zeros_like(out), atol=1e-7), fn.__name__


def test_uniform_samples_have_entropy_log_c_and_no_mutual_information() -> None:
    samples = torch.full((5, 1, 4, 3, 3, 3), 0.25, dtype=torch.float64)
    assert torch.allclose(predictive_entropy(samples), torch.full((1, 3, 3, 3), math.log(4), dtype=torch.float64))
    assert torch.allclose(mutual_information(samples), torch.zeros(1, 3, 3, 3, dtype=torch.float64))


def test_disagreeing_one_hot_samples_are_all_epistemic() -> None:
    labels = torch.tensor([0, 1, 0, 1]).view(4, 1, 1, 1, 1)
    samples = _one_hot(labels, 2)
    assert torch.allclose(predictive_entropy(samples), torch.tensor(math.log(2), dtype=torch.float64))
    assert torch.allclose(mutual_information(samples), predictive_entropy(samples))
    assert torch.allclose(sample_variance(samples), torch.tensor(0.5, dtype=torch.float64))  # 0.25 per class
    # mean (0.5, 0.5); each sample puts log(1 + eps) on one class and log(eps) on the other
    assert torch.allclose(
        expected_cross_entropy(samples, eps=1e-8), torch.tensor(-0.5 * math.log(1e-8), dtype=torch.float64)
    )


@pytest.mark.parametrize("chunks", [[6], [1, 1, 1, 1, 1, 1], [2, 4], [5, 1]])
def test_streaming_equals_batch_computation(chunks) -> None:
    samples = torch.softmax(torch.randn(6, 2, 3, 4, 5, 6), dim=2)
    aggregator = StreamingUncertainty(keep_labels=True, expected_cross_entropy=True)
    for part in samples.split(chunks):
        aggregator.update(part)
    maps = aggregator.compute()
    assert torch.allclose(maps["mean"], samples.mean(0), atol=1e-6)
    assert torch.allclose(maps["entropy"], predictive_entropy(samples), atol=1e-5)
    assert torch.allclose(maps["mutual_information"], mutual_information(samples), atol=1e-5)
    assert torch.allclose(maps["variance"], sample_variance(samples), atol=1e-5)
    assert torch.allclose(maps["expected_cross_entropy"], expected_cross_entropy(samples).float(), atol=1e-5)
    assert torch.equal(maps["labels"], samples.argmax(2).to(torch.uint8))


def test_a_chunk_of_samples_costs_float64_temporaries_of_one_sample_not_of_the_chunk() -> None:
    samples = torch.softmax(torch.randn(16, 1, 3, 32, 32, 32), dim=2)
    one_sample = 3 * 32**3 * 8  # float64 bytes of one sample's probabilities

    def update(n: int) -> None:
        StreamingUncertainty(keep_labels=True, expected_cross_entropy=True).update(samples[:n])

    assert allocated_peak_bytes(lambda: update(16)) - allocated_peak_bytes(lambda: update(2)) < one_sample


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_class_argmax_is_torch_argmax_and_takes_the_first_of_ties(dim: int) -> None:
    values = torch.randint(0, 3, (4, 3, 5, 6, 7)).float()  # few values: many ties
    assert torch.equal(class_argmax(values, dim), values.argmax(dim))
    assert torch.equal(class_argmax(torch.ones(2, 3, 4), 1), torch.zeros(2, 4, dtype=torch.int64))


def test_bad_samples_are_rejected() -> None:
    with pytest.raises(ValueError, match="\\(N, B, C, \\*spatial\\)"):
        predictive_entropy(torch.rand(3, 4, 5))
    bad = torch.full((2, 1, 2, 3, 3), 0.5)
    bad[0, 0, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        mutual_information(bad)
    aggregator = StreamingUncertainty()
    with pytest.raises(ValueError, match="no samples"):
        aggregator.compute()
    aggregator.update(torch.full((1, 1, 2, 3, 3), 0.5))
    with pytest.raises(ValueError, match="do not match"):
        aggregator.update(torch.full((1, 1, 2, 4, 3), 0.5))
