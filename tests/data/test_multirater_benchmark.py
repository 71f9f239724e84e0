"""The multi-rater benchmark: deterministic subjects, disjoint splits, raters that disagree where designed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from revnets.data import mni_anatomy, multirater_datalist, tissue_raters
from revnets.data.multirater_benchmark import (
    RATERS,
    RaterModel,
    benchmark_splits,
    synthetic_subject,
    write_multirater_benchmark,
)
from revnets.uncertainty.disagreement import (
    auroc,
    boundary_proximity,
    rater_disagreement,
    rater_soft_labels,
    tissue_neighbourhood,
)

SPACING = 2.0  # the bundles' resolution; a subject takes about a second


@pytest.fixture(scope="module")
def subject():
    return synthetic_subject(0, seed=0, spacing=SPACING)


def _boundary_auroc(raters: np.ndarray) -> float:
    """AUROC of the distance to the majority's nearest boundary for "not all raters agree"."""
    majority = rater_soft_labels(raters, 3).argmax(0)
    neighbourhood = tissue_neighbourhood(raters)
    disagree = rater_disagreement(raters, 3) > 0
    return auroc(boundary_proximity(majority, SPACING)[neighbourhood], disagree[neighbourhood])


def test_subjects_are_deterministic_per_seed_and_index(subject) -> None:
    again = synthetic_subject(0, seed=0, spacing=SPACING)
    assert np.array_equal(subject.image, again.image) and np.array_equal(subject.raters, again.raters)
    other = synthetic_subject(1, seed=0, spacing=SPACING)
    reseeded = synthetic_subject(0, seed=1, spacing=SPACING)
    assert not np.array_equal(subject.raters, other.raters)
    assert not np.array_equal(subject.image, reseeded.image)


def test_subjects_differ_in_anatomy_and_image_from_the_template(subject) -> None:
    template = mni_anatomy(SPACING)
    assert subject.image.shape == template.t1.shape and subject.raters.shape == (len(RATERS), *template.t1.shape)
    # Warped: the tissue maps moved (not just noise on the template).
    overlap = np.minimum(subject.white_matter, template.white_matter).sum() / template.white_matter.sum()
    assert 0.5 < overlap < 0.95
    assert set(np.unique(subject.raters)) == {0, 1, 2}


def test_raters_disagree_on_grey_versus_white_matter_not_only_on_rims(subject) -> None:
    raters = subject.raters
    grey_vs_white = (raters == 1).any(0) & (raters == 2).any(0)
    assert grey_vs_white.sum() > 5000  # about 20 cm^3 at 2 mm
    # The deep grey nuclei are split by convention: two raters call them grey, two white (mostly).
    deep = subject.deep_grey & (subject.grey_matter + subject.white_matter > 0.7)
    assert deep.sum() > 500 and rater_disagreement(raters, 3)[deep].mean() > 0.35

    # Disagreement far (> 4 mm) from every boundary of the majority labels exists; the old thresholded
    # raters of one map rarely disagree there.
    def far_fraction(maps: np.ndarray) -> float:
        majority = rater_soft_labels(maps, 3).argmax(0)
        far = (-boundary_proximity(majority, SPACING) > 4.0) & tissue_neighbourhood(maps)
        return float((rater_disagreement(maps, 3)[far] > 0).mean())

    assert far_fraction(raters) > 0.05
    assert far_fraction(tissue_raters(mni_anatomy(SPACING))) < 0.03


def test_each_rater_follows_its_conventions(subject) -> None:
    raters = subject.raters
    tissue = (raters > 0).sum(axis=(1, 2, 3))
    inclusive, strict = 0, 1
    assert tissue[inclusive] > tissue[strict]
    deep = subject.deep_grey
    white_share = (raters[:, deep] == 2).mean(1)
    by_convention = {"grey": [], "white": []}
    for share, model in zip(white_share, RATERS):
        by_convention.setdefault(model.deep_grey, []).append(share)
    assert max(by_convention["grey"]) < 0.2 < 0.8 < min(by_convention["white"])


def test_a_boundary_distance_baseline_is_no_longer_near_perfect(subject) -> None:
    new = _boundary_auroc(subject.raters)
    old = _boundary_auroc(tissue_raters(mni_anatomy(SPACING)))
    assert new < 0.75 and new < old - 0.04


def test_splits_are_disjoint_by_subject_and_deterministic() -> None:
    splits = benchmark_splits(20, seed=0)
    assert benchmark_splits(20, seed=0) == splits
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [14, 3, 3]
    assert sorted(sum(splits.values(), [])) == list(range(20))
    assert benchmark_splits(20, seed=1)["test"] != splits["test"]
    with pytest.raises(ValueError, match="at least 3"):
        benchmark_splits(2)


def test_written_benchmark_is_read_by_the_multirater_datalist(tmp_path) -> None:
    folders = write_multirater_benchmark(tmp_path, subjects=3, seed=0, spacing=8.0)
    record = json.loads((tmp_path / "benchmark.json").read_text())
    names = {}
    for split in ("train", "validation", "test"):
        items = multirater_datalist(tmp_path / split)
        names[split] = {item["case"] for item in items}
        assert all(len(item["label"]) == len(RATERS) for item in items)
        assert names[split] == {f"subject_{i:03d}" for i in record["splits"][split]}
        assert [f.name for f in folders[split]] == sorted(names[split])
    assert not names["train"] & names["test"] and not names["validation"] & names["test"]
    with pytest.raises(FileExistsError, match="benchmark.json"):
        write_multirater_benchmark(tmp_path, subjects=3, seed=0, spacing=8.0)


def test_omissions_are_local_balls_of_one_class() -> None:
    # With many omissions and no boundary bias, the rater differs from the neutral reading only by removals.
    model = RaterModel("omits", 0.0, 0.0, 0.0, "maps", 20.0)
    neutral = RaterModel("neutral", 0.0, 0.0, 0.0, "maps", 0.0)
    omitting, reference = synthetic_subject(2, 0, SPACING, raters=(model, neutral)).raters
    removed = omitting != reference
    assert removed.any() and (omitting[removed] == 0).all()
    assert ndimage.label(removed)[1] <= 40
