"""The chest CT phantom: Hounsfield units where anatomy says, nodules of the LIDC kinds, four raters who disagree
the way LIDC's do, the same case for the same seed, and crops in PHiSeg's LIDC pickle layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from revnets.data import LIDCDataset, load_lidc_pickle, simulate_chest_ct, write_lidc_pickle
from revnets.data.ct_phantom import CROP, RATER_STYLES, Nodule, _detected, _rater_mask


@pytest.fixture(scope="module")
def case():
    return simulate_chest_ct(seed=3)


def test_same_seed_gives_the_same_case_and_another_seed_another(case) -> None:
    again = simulate_chest_ct(seed=3)
    assert np.array_equal(case.hu, again.hu) and np.array_equal(case.raters, again.raters)
    assert case.nodules == again.nodules
    other = simulate_chest_ct(seed=4)
    assert not np.array_equal(case.hu, other.hu) and case.nodules != other.nodules


def test_hounsfield_units_follow_the_anatomy(case) -> None:
    assert case.hu.dtype == np.int16 and case.hu.shape == case.raters.shape[1:]
    assert np.median(case.hu[0]) < -950, "air outside the body"
    lungs = case.lungs & (case.raters.max(0) == 0)
    assert -900 < np.median(case.hu[lungs]) < -750, "lung parenchyma"
    assert (case.hu[lungs] > -300).mean() > 0.01, "vessels and airway walls inside the lungs"
    assert case.hu.max() > 300, "bone in the chest wall"
    noise = case.hu[:20, :20].std()
    assert 5 < noise < 40, "correlated noise of CT's size"


def test_nodules_are_of_the_lidc_kinds_and_sizes(case) -> None:
    cases = [case] + [simulate_chest_ct(seed) for seed in (0, 2)]
    nodules = [n for c in cases for n in c.nodules]
    assert all(3 <= n.diameter <= 30 for n in nodules)
    assert "solid" in {n.kind for n in nodules} and len({n.kind for n in nodules}) >= 2
    assert {n.location for n in nodules} >= {"isolated", "juxtapleural"}
    for c in cases:
        for index, nodule in enumerate(c.nodules, start=1):
            marked = c.raters.max(0).astype(bool) & (c.nodule_index == index)
            if marked.sum() < 20:
                continue
            inside = np.median(c.hu[marked])
            assert (inside > -350) if nodule.kind == "solid" else (inside > -800), (nodule, inside)


def test_small_faint_nodules_are_marked_by_some_raters_only_and_large_solid_ones_by_all() -> None:
    rng = np.random.default_rng(0)
    faint = Nodule((0, 0, 0), 4.0, "ground-glass", "isolated")
    large = Nodule((0, 0, 0), 20.0, "solid", "isolated")
    for style in RATER_STYLES:
        assert np.mean([_detected(style, faint, rng) for _ in range(400)]) < 0.3
        assert np.mean([_detected(style, large, rng) for _ in range(400)]) > 0.98
    medium = Nodule((0, 0, 0), 5.0, "solid", "isolated")
    marks = np.array([[_detected(s, medium, rng) for s in RATER_STYLES] for _ in range(400)])
    assert (marks.any(1) & ~marks.all(1)).mean() > 0.3, "a 5 mm nodule is often marked by some raters only"


def test_ground_glass_margins_are_drawn_wider_by_generous_raters() -> None:
    grid = np.indices((40, 40, 20)).astype(np.float32)
    distance = np.sqrt(((grid - np.array([20, 20, 10]).reshape(3, 1, 1, 1)) ** 2).sum(0)) - 8
    membership = 1 / (1 + np.exp(distance / 1.0))
    vessel = np.zeros_like(membership)
    nodule = Nodule((20, 20, 10), 16.0, "ground-glass", "isolated")
    areas = [_rater_mask(style, membership, vessel, nodule, np.random.default_rng(1)).sum() for style in RATER_STYLES]
    generous, tight = int(np.argmin([s.level for s in RATER_STYLES])), int(np.argmax([s.level for s in RATER_STYLES]))
    assert areas[generous] > 1.3 * areas[tight]


def test_lidc_pickle_round_trips_through_the_loader(tmp_path: Path, case) -> None:
    path = write_lidc_pickle(tmp_path / "data_lidc.pickle", [3])
    slices = load_lidc_pickle(path)
    assert slices and all(key.startswith("chest-0003_nodule") for key in slices)
    for entry in slices.values():
        assert entry["image"].shape == (CROP, CROP) and 0 <= entry["image"].min() and entry["image"].max() <= 1
        assert len(entry["masks"]) == 4 and any(m.any() for m in entry["masks"])
        assert entry["series_uid"] == case.case_id
    item = LIDCDataset(path)[0]
    assert item["image"].shape == (1, CROP, CROP) and item["label"].shape == (4, CROP, CROP)
    with pytest.raises(FileExistsError):
        write_lidc_pickle(path, [3])
