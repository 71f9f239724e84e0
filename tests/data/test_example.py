"""Example data: the real MNI template offline, tissue raters, tumour phantoms, files never overwritten."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from revnets.data import mni_anatomy, simulate_tumour_case, tissue_raters, write_example_scans
from revnets.io import scan_header


@pytest.fixture(scope="module")
def anatomy():
    return mni_anatomy(spacing=4.0)


def test_mni_template_loads_offline_at_one_millimetre() -> None:
    full = mni_anatomy(1.0)
    assert full.t1.shape == (197, 233, 189)
    assert np.allclose(np.abs(np.diag(full.affine)[:3]), 1.0)
    assert 0.2 < full.brain_mask.mean() < 0.6


def test_raters_differ_and_are_nested_by_threshold(anatomy) -> None:
    raters = tissue_raters(anatomy)
    assert raters.shape[0] == 4 and set(np.unique(raters)) == {0, 1, 2}
    labelled = (raters > 0).sum(axis=(1, 2, 3))
    assert (np.diff(labelled) < 0).all()
    for strict, loose in zip(raters[1:], raters[:-1]):
        assert ((strict > 0) <= (loose > 0)).all()


def test_phantom_is_reproducible_and_tumour_sits_in_the_brain(anatomy) -> None:
    images, labels = simulate_tumour_case(anatomy, seed=3)
    again, labels_again = simulate_tumour_case(anatomy, seed=3)
    other, labels_other = simulate_tumour_case(anatomy, seed=4)
    assert np.array_equal(labels, labels_again) and np.array_equal(images["t1ce"], again["t1ce"])
    assert not np.array_equal(labels, labels_other)
    assert set(np.unique(labels)) == {0, 1, 2, 4}
    assert not (labels > 0)[~anatomy.brain_mask].any()
    enhancing = labels == 4
    assert images["t1ce"][enhancing].mean() > 1.5 * images["t1"][enhancing].mean()
    assert images["flair"][labels == 2].mean() > images["flair"][(labels == 0) & anatomy.brain_mask].mean()


def test_example_scans_are_written_once_and_never_overwritten(tmp_path: Path) -> None:
    paths = list(write_example_scans(tmp_path))
    assert (tmp_path / "mni_t1.nii.gz") in paths and len(paths) == 8
    assert nib.load(tmp_path / "brats_phantom" / "brats_phantom_seg.nii.gz").shape == (197, 233, 189)
    chest = nib.load(tmp_path / "chest_ct.nii.gz")
    series = scan_header(tmp_path / "chest_ct_dicom")
    assert series.shape == chest.shape and np.allclose(series.affine, chest.affine, atol=1e-4)
    assert chest.get_data_dtype() == np.int16 and np.asarray(chest.dataobj).min() >= -1024
    with pytest.raises(FileExistsError, match="mni_t1.nii.gz exists"):
        write_example_scans(tmp_path)
