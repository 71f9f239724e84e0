"""The real MNI ICBM152 2009a template (T1 and tissue probability maps) that nilearn ships on disk.

Nothing is downloaded: nilearn's ``load_mni152_*`` functions read files inside the nilearn package.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class Anatomy:
    """The template at some spacing.

    Attributes:
        t1: T1 intensities ``(X, Y, Z)`` float32, scaled to [0, 1].
        grey_matter: grey-matter probability ``(X, Y, Z)`` in [0, 1].
        white_matter: white-matter probability ``(X, Y, Z)`` in [0, 1].
        affine: voxel-to-world (RAS, mm) ``(4, 4)``.
    """

    t1: np.ndarray
    grey_matter: np.ndarray
    white_matter: np.ndarray
    affine: np.ndarray

    @property
    def brain_mask(self) -> np.ndarray:
        """Voxels inside the brain ``(X, Y, Z)`` bool."""
        return self.t1 > 0.05


def mni_anatomy(spacing: float = 1.0) -> Anatomy:
    """The MNI ICBM152 2009a template, 197x233x189 at 1 mm, resampled to ``spacing`` mm (linear)."""
    from nilearn import datasets

    images = (
        datasets.load_mni152_template(resolution=1),
        datasets.load_mni152_gm_template(resolution=1),
        datasets.load_mni152_wm_template(resolution=1),
    )
    arrays = [np.asarray(img.get_fdata(), dtype=np.float32) for img in images]
    arrays[0] /= max(float(arrays[0].max()), 1e-6)
    affine = images[0].affine.copy()
    if spacing != 1.0:
        zoom = 1.0 / spacing
        arrays = [ndimage.zoom(a, zoom, order=1) for a in arrays]
        affine[:3, :3] = affine[:3, :3] * spacing
    t1, grey, white = (np.clip(a, 0, 1).astype(np.float32) for a in arrays)
    return Anatomy(t1=t1, grey_matter=grey, white_matter=white, affine=affine)


def tissue_raters(anatomy: Anatomy, thresholds: tuple[float, ...] = (0.35, 0.45, 0.55, 0.65)) -> np.ndarray:
    """Annotators derived from the tissue maps: ``(R, X, Y, Z)`` uint8 labels 0 background, 1 GM, 2 WM.

    Rater ``r`` labels a voxel as the more probable tissue when that tissue's probability exceeds
    ``thresholds[r]``: a stricter rater labels less tissue, so raters disagree at tissue borders.
    """
    tissue = np.where(anatomy.white_matter >= anatomy.grey_matter, 2, 1).astype(np.uint8)
    strongest = np.maximum(anatomy.grey_matter, anatomy.white_matter)
    return np.stack([np.where(strongest > t, tissue, 0).astype(np.uint8) for t in thresholds])
