"""Example data written to disk: the real MNI T1, BraTS-layout tumour phantoms, a multi-rater tissue set."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from revnets.data.brats import MODALITIES
from revnets.data.ct_phantom import simulate_chest_ct
from revnets.data.mni import Anatomy, mni_anatomy, tissue_raters
from revnets.data.phantom import simulate_tumour_case


def _save(array: np.ndarray, affine: np.ndarray, path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: overwrite=True replaces it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def write_brats_case(
    directory: Path, name: str, anatomy: Anatomy, seed: int, overwrite: bool = False
) -> list[Path]:
    """Write one phantom case as ``directory/name/name_{t1,t1ce,t2,flair,seg}.nii.gz`` (BraTS layout)."""
    images, labels = simulate_tumour_case(anatomy, seed)
    case = directory / name
    paths = [_save(images[m], anatomy.affine, case / f"{name}_{m}.nii.gz", overwrite) for m in MODALITIES]
    paths.append(_save(labels, anatomy.affine, case / f"{name}_seg.nii.gz", overwrite))
    return paths


def write_brats_dataset(
    directory: Path, cases: int, seed: int = 0, spacing: float = 2.0, overwrite: bool = False
) -> list[Path]:
    """Write ``cases`` phantom cases ``phantom_000``... into ``directory``; case ``i`` uses seed ``seed + i``."""
    anatomy = mni_anatomy(spacing)
    folders = []
    for i in tqdm(range(cases), desc="phantom cases", unit="case"):
        write_brats_case(Path(directory), f"phantom_{i:03d}", anatomy, seed + i, overwrite)
        folders.append(Path(directory) / f"phantom_{i:03d}")
    return folders


def write_multirater_set(directory: Path, spacing: float = 2.0, overwrite: bool = False) -> list[Path]:
    """Write the MNI T1 and its tissue raters as ``directory/mni/image.nii.gz`` + ``label_rater{k}.nii.gz``.

    This is the generic multi-rater folder layout: one image and several label files per case.
    """
    anatomy = mni_anatomy(spacing)
    case = Path(directory) / "mni"
    paths = [_save(anatomy.t1, anatomy.affine, case / "image.nii.gz", overwrite)]
    for k, rater in enumerate(tissue_raters(anatomy)):
        paths.append(_save(rater, anatomy.affine, case / f"label_rater{k}.nii.gz", overwrite))
    return paths


def write_ct_case(directory: Path, name: str, seed: int, overwrite: bool = False) -> list[Path]:
    """Write one chest CT phantom (:func:`revnets.data.simulate_chest_ct`) in the multi-rater folder layout:
    ``directory/name/image.nii.gz`` (Hounsfield units, int16) and ``label_rater{k}.nii.gz`` (its four raters'
    nodule masks), which :func:`revnets.data.multirater_datalist` reads."""
    case = simulate_chest_ct(seed)
    folder = Path(directory) / name
    paths = [_save(case.hu, case.affine, folder / "image.nii.gz", overwrite)]
    for k, rater in enumerate(case.raters):
        paths.append(_save(rater, case.affine, folder / f"label_rater{k}.nii.gz", overwrite))
    return paths


def write_example_scans(directory: Path, seed: int = 0, overwrite: bool = False) -> Iterable[Path]:
    """Write the example scans into ``directory``.

    ``mni_t1.nii.gz`` (the real template at 1 mm), ``brats_phantom/`` (a BraTS-layout tumour phantom),
    ``chest_ct.nii.gz`` (a chest CT phantom in Hounsfield units, from seed ``2000 + seed``: never a training
    case of the CT bundle) and ``chest_ct_dicom/``, the same volume as a DICOM series.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False; nothing is replaced silently.
    """
    from revnets.io import write_dicom_series

    directory = Path(directory)
    anatomy = mni_anatomy(1.0)
    paths = [_save(anatomy.t1 * 1000, anatomy.affine, directory / "mni_t1.nii.gz", overwrite)]
    paths += write_brats_case(directory, "brats_phantom", anatomy, seed, overwrite)
    chest = simulate_chest_ct(2000 + seed)
    paths.append(_save(chest.hu, chest.affine, directory / "chest_ct.nii.gz", overwrite))
    write_dicom_series(chest.hu, chest.affine, directory / "chest_ct_dicom", seed=seed, overwrite=overwrite)
    paths.append(directory / "chest_ct_dicom")
    return paths
