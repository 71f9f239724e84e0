"""Brain-tumour phantoms on the real MNI anatomy: four contrasts and labels in the BraTS convention."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from revnets.data.brats import MODALITIES
from revnets.data.mni import Anatomy

# Relative intensity of CSF, grey matter, white matter, necrosis, edema, enhancing rim per contrast.
_CONTRAST = {
    "t1": (0.25, 0.65, 0.85, 0.20, 0.50, 0.60),
    "t1ce": (0.25, 0.65, 0.85, 0.15, 0.50, 1.30),
    "t2": (1.00, 0.60, 0.45, 0.95, 0.90, 0.70),
    "flair": (0.30, 0.65, 0.55, 0.50, 1.20, 0.80),
}


def _blob(shape: tuple[int, ...], centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """A random smooth star-shaped region ``shape`` bool, of about ``radius`` voxels around ``centre``."""
    grid = np.indices(shape, dtype=np.float32) - centre.reshape(-1, 1, 1, 1)
    noise = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=max(radius / 2, 1.0))
    noise /= max(float(np.abs(noise).max()), 1e-6)
    stretch = rng.uniform(0.7, 1.3, size=3).reshape(-1, 1, 1, 1)
    distance = np.sqrt(((grid / stretch) ** 2).sum(0))
    return distance < radius * (1 + 0.35 * noise)


def simulate_tumour_case(anatomy: Anatomy, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One phantom case on ``anatomy``.

    A tumour of random shape, size and position inside the brain: necrotic core (label 1), enhancing rim
    (label 4) and surrounding edema (label 2). Enhancing tissue is bright on T1ce, edema bright on T2 and
    FLAIR, necrosis dark on T1 and T1ce; Rician-like noise and a smooth bias field are added.

    Returns:
        ``({modality: (X, Y, Z) float32}, labels (X, Y, Z) uint8)``, reproducible for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    shape = anatomy.t1.shape
    brain = anatomy.brain_mask
    inside = np.argwhere(ndimage.binary_erosion(brain, iterations=max(2, shape[0] // 12)))
    centre = inside[rng.integers(len(inside))].astype(np.float32)
    radius = rng.uniform(0.05, 0.10) * shape[0]
    core = _blob(shape, centre, radius, rng) & brain
    tumour = ndimage.binary_dilation(core, iterations=max(1, int(radius * 0.25))) & brain
    edema = _blob(shape, centre, radius * rng.uniform(1.6, 2.2), rng) & brain
    labels = np.zeros(shape, np.uint8)
    labels[edema] = 2
    labels[tumour] = 4
    labels[core] = 1
    csf = brain & (anatomy.grey_matter + anatomy.white_matter < 0.3)
    field = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=shape[0] / 4)
    field = 1 + 0.15 * field / max(float(np.abs(field).max()), 1e-6)
    images = {}
    for modality in MODALITIES:
        c_csf, c_gm, c_wm, c_nec, c_ed, c_enh = _CONTRAST[modality]
        image = c_gm * anatomy.grey_matter + c_wm * anatomy.white_matter + c_csf * csf
        for label, value in ((2, c_ed), (4, c_enh), (1, c_nec)):
            image = np.where(labels == label, value, image)
        image = image * brain * field
        noisy = np.hypot(image + rng.normal(0, 0.03, shape), rng.normal(0, 0.03, shape)) * brain
        images[modality] = (1000 * noisy).astype(np.float32)
    return images, labels
