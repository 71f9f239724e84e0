"""The main job on real anatomy: ``revnets predict`` with each shipped bundle on the MNI T1 (downsampled to
3 mm to keep CI fast) or a BraTS-layout phantom, checked against the template's own tissue maps."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from revnets.cli import main
from revnets.data import mni_anatomy, simulate_chest_ct, write_brats_dataset
from revnets.io import write_dicom_series

BUNDLES = Path(__file__).resolve().parents[1] / "bundles"
SPACING = 3.0


@pytest.fixture(scope="module")
def mni_t1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The real MNI T1 at 3 mm and its white-matter mask (probability >= 0.5)."""
    anatomy = mni_anatomy(spacing=SPACING)
    path = tmp_path_factory.mktemp("mni") / "mni_t1.nii.gz"
    nib.save(nib.Nifti1Image(anatomy.t1, anatomy.affine), path)
    return path, anatomy.white_matter >= 0.5


def _predict(bundle: str, scan: Path, output: Path) -> dict[str, nib.Nifti1Image]:
    code = main(["predict", str(scan), "--bundle", str(BUNDLES / bundle), "--output", str(output), "--samples", "2",
                 "--device", "cpu", "--progress", "none"])
    assert code == 0
    stem = scan.name.removesuffix(".nii.gz")
    names = ("seg", "samples", "entropy", "mutual_info", "variance")
    return {name: nib.load(output / f"{stem}_{name}.nii.gz") for name in names}


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("bundle", ["invres_brain_tissue", "revphiseg_brain_tissue"])
def test_tissue_bundles_segment_the_real_mni_t1(bundle: str, mni_t1: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    scan, white_matter = mni_t1
    reference = nib.load(scan)
    outputs = _predict(bundle, scan, tmp_path)
    for name, image in outputs.items():
        assert image.shape[:3] == reference.shape and np.allclose(image.affine, reference.affine), name
    assert outputs["samples"].shape[3] == 2
    seg = np.asarray(outputs["seg"].dataobj)
    assert set(np.unique(seg)) <= {0, 1, 2}
    assert _dice(seg == 2, white_matter) > 0.5
    entropy = np.asarray(outputs["entropy"].dataobj)
    assert np.isfinite(entropy).all() and entropy.max() > 0


def test_brats_bundle_finds_the_phantom_tumour(tmp_path: Path) -> None:
    (case,) = write_brats_dataset(tmp_path / "brats", 1, seed=10_000, spacing=SPACING)
    outputs = _predict("revmbconv_brats", case, tmp_path / "out")
    truth = np.asarray(nib.load(case / f"{case.name}_seg.nii.gz").dataobj)
    seg = np.asarray(outputs["seg"].dataobj)
    assert seg.shape == truth.shape and set(np.unique(seg)) <= {0, 1, 2, 4}
    assert _dice(seg > 0, truth > 0) > 0.5


def test_ct_bundle_segments_a_chest_ct_dicom_series_in_its_space(tmp_path: Path) -> None:
    """The CT path end to end: a DICOM series (uint16 + rescale) through slice-wise RevPHiSeg sampling to five
    NIfTI outputs on the series' grid. (The shipped weights do not find nodules yet: see the model card.)"""
    case = simulate_chest_ct(seed=2001)  # a case the bundle never saw (trained on seeds 0-15)
    write_dicom_series(case.hu, case.affine, tmp_path / "chest")
    outputs = _predict("lung_nodule_ct_revphiseg", tmp_path / "chest", tmp_path / "out")
    for name, image in outputs.items():
        assert image.shape[:3] == case.hu.shape and np.allclose(image.affine, case.affine, atol=1e-4), name
    assert outputs["samples"].shape[3] == 2
    assert set(np.unique(np.asarray(outputs["seg"].dataobj))) <= {0, 1}
    for name in ("entropy", "mutual_info", "variance"):
        values = np.asarray(outputs[name].dataobj)
        assert np.isfinite(values).all() and values.min() > -1e-5, name
