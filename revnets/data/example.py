"""Example data written to disk: the real MNI T1, BraTS-layout tumour phantoms, a multi-rater tissue set."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np
from tqdm.auto import tqdm

from revnets.data.brats import MODALITIES
from revnets.data.mni import Anatomy, mni_anatomy, tissue_raters
from revnets.data.phantom import simulate_tumour_case


def _save(array: np.ndarray, affine: np.ndarray, path: Path, overwrite: bool) -> Path:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True (--overwrite) to replace it.")
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


def write_example_scans(directory: Path, seed: int = 0, overwrite: bool = False) -> Iterable[Path]:
    """Write ``directory/mni_t1.nii.gz`` (the real template at 1 mm) and ``directory/brats_phantom/``.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False; nothing is replaced silently.
    """
    directory = Path(directory)
    anatomy = mni_anatomy(1.0)
    paths = [_save(anatomy.t1 * 1000, anatomy.affine, directory / "mni_t1.nii.gz", overwrite)]
    paths += write_brats_case(directory, "brats_phantom", anatomy, seed, overwrite)
    return paths
