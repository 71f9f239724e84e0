"""A multi-rater brain-tissue benchmark: synthetic subjects from the MNI template, raters with structured disagreement.

Each subject is the MNI ICBM152 template (:func:`revnets.data.mni_anatomy`) warped by a random affine and a
smooth random deformation, imaged with its own gamma / grey-white contrast, a multiplicative intensity
non-uniformity, a thick-slice resolution along a random axis and Rician noise. Each rater labels the
subject's warped tissue maps (0 background, 1 grey matter, 2 white matter) by a :class:`RaterModel`:

- a systematic boundary bias: a rater-specific threshold offset (its convention for partial-volume voxels
  at CSF interfaces and for the grey / white border) plus a smooth random field that moves its boundaries
  differently across the brain;
- a convention for the deep grey nuclei (thalamus, basal ganglia: grey in the template's map, often
  labelled white matter or left to the maps by real raters);
- occasional local omissions: small balls where the rater left one tissue class unlabelled.

So the raters disagree on grey vs white matter (deep nuclei, the cortical border), not only on tissue rims,
and the disagreement is not a function of the distance to a boundary. Everything is deterministic per
``(seed, subject)``; subjects are split into train / validation / test by subject.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from revnets.data.mni import Anatomy, mni_anatomy

SPLITS = ("train", "validation", "test")
DEEP_GREY_DEPTH_MM = 32.0
"""Grey matter at least this far inside the brain's outer surface counts as deep grey nuclei."""


@dataclass(frozen=True)
class RaterModel:
    """How one simulated rater labels a subject.

    Attributes:
        name: a short description.
        tissue_offset: added to the tissue threshold 0.5 on ``P(grey) + P(white)``; positive: the rater
            leaves partial-volume voxels at CSF interfaces unlabelled, negative: it includes them.
        grey_white_offset: added to ``P(grey) - P(white)`` before labelling grey where it is positive;
            positive: a thicker cortex.
        bias_amplitude: standard deviation of the smooth random field added to both thresholds, which
            varies over the brain (about 40 mm wavelength) and per subject.
        deep_grey: the label for the deep grey nuclei: ``"grey"``, ``"white"`` or ``"maps"`` (as the maps say).
        omissions: expected number of omitted balls per subject (Poisson).
    """

    name: str
    tissue_offset: float
    grey_white_offset: float
    bias_amplitude: float
    deep_grey: str
    omissions: float


RATERS = (
    RaterModel("inclusive: partial volume counted as tissue", -0.15, 0.0, 0.06, "grey", 1.0),
    RaterModel("strict: partial volume left out, deep nuclei as white matter", 0.15, -0.1, 0.06, "white", 1.0),
    RaterModel("thick cortex, follows the maps in the deep nuclei", 0.0, 0.15, 0.1, "maps", 1.0),
    RaterModel("hurried: large local bias, frequent omissions, deep nuclei as white", 0.05, -0.05, 0.2, "white", 3.0),
)
"""The four raters of the benchmark, by rater number."""


@dataclass(frozen=True)
class Subject:
    """One synthetic subject on the template's grid.

    Attributes:
        image: T1-weighted intensities ``(X, Y, Z)`` float32.
        raters: label maps ``(R, X, Y, Z)`` uint8, 0 background, 1 grey matter, 2 white matter.
        grey_matter: the warped grey-matter probability ``(X, Y, Z)`` (the "truth" the raters label).
        white_matter: the warped white-matter probability ``(X, Y, Z)``.
        deep_grey: the warped deep-grey-nuclei region ``(X, Y, Z)`` bool.
        affine: voxel-to-world ``(4, 4)``.
    """

    image: np.ndarray
    raters: np.ndarray
    grey_matter: np.ndarray
    white_matter: np.ndarray
    deep_grey: np.ndarray
    affine: np.ndarray


@lru_cache(maxsize=2)
def _template(spacing: float) -> tuple[Anatomy, np.ndarray]:
    """The template and its deep-grey region (grey matter deeper than ``DEEP_GREY_DEPTH_MM``), cached."""
    anatomy = mni_anatomy(spacing)
    tissue = anatomy.grey_matter + anatomy.white_matter
    head = ndimage.binary_fill_holes(ndimage.binary_closing(tissue > 0.3, iterations=2))
    depth = ndimage.distance_transform_edt(head) * spacing
    deep = (depth > DEEP_GREY_DEPTH_MM) & (anatomy.grey_matter > anatomy.white_matter) & (tissue > 0.5)
    deep = ndimage.binary_opening(deep)
    return anatomy, deep


def smooth_field(shape: Sequence[int], wavelength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field ``shape`` float32 of zero mean and unit standard deviation.

    Gaussian noise on a coarse grid (one node per ``wavelength`` voxels) upsampled by cubic splines, one
    axis at a time (the spline upsampling of each axis is a matrix, so this is fast).
    """
    field = rng.standard_normal([max(int(np.ceil(s / wavelength)) + 1, 2) for s in shape])
    for axis, size in enumerate(shape):
        nodes = field.shape[axis]
        upsample = ndimage.zoom(np.eye(nodes), (size / nodes, 1), order=3)[:size]  # (size, nodes)
        field = np.moveaxis(np.tensordot(upsample, field, axes=(1, axis)), 0, axis)
    return ((field - field.mean()) / max(float(field.std()), 1e-6)).astype(np.float32)


def _warp_coordinates(shape: Sequence[int], spacing: float, rng: np.random.Generator) -> np.ndarray:
    """Template voxel coordinates ``(3, X, Y, Z)`` sampled by each subject voxel: a random affine (scale
    0.92-1.08 per axis, rotations up to 8 degrees about the centre) and a smooth displacement of 3 mm s.d."""
    angles = np.deg2rad(rng.uniform(-8, 8, 3))
    rotation = np.eye(3)
    for axis, angle in enumerate(angles):
        i, j = [a for a in range(3) if a != axis]
        turn = np.eye(3)
        turn[i, i] = turn[j, j] = np.cos(angle)
        turn[i, j], turn[j, i] = -np.sin(angle), np.sin(angle)
        rotation = rotation @ turn
    matrix = rotation @ np.diag(1 / rng.uniform(0.92, 1.08, 3))
    centre = (np.asarray(shape) - 1) / 2
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1) - centre[:, None]
    coordinates = (matrix @ grid).reshape(3, *shape) + centre[:, None, None, None]
    wavelength = 40.0 / spacing
    for axis in range(3):
        coordinates[axis] += smooth_field(shape, wavelength, rng) * (3.0 / spacing)
    return coordinates.astype(np.float32)


def _image(t1: np.ndarray, grey: np.ndarray, white: np.ndarray, spacing: float, rng: np.random.Generator) -> np.ndarray:
    """The subject's scan from its warped T1 and tissue maps: contrast, non-uniformity, resolution, noise."""
    contrast = rng.uniform(-0.1, 0.1)  # extra white-vs-grey brightness
    image = np.clip(t1 + contrast * (white - grey) * (t1 > 0.05), 0, None) ** rng.uniform(0.7, 1.4)
    image = image * np.exp(rng.uniform(0.1, 0.3) * smooth_field(t1.shape, 80.0 / spacing, rng))
    sigma = np.full(3, rng.uniform(0.0, 0.5))
    sigma[rng.integers(3)] = rng.uniform(1.0, 6.0) / spacing / 2.355  # slice thickness 1-6 mm, as FWHM
    image = ndimage.gaussian_filter(image, sigma)
    noise = rng.uniform(0.01, 0.05) * float(np.percentile(image, 99))
    real = image + noise * rng.standard_normal(image.shape)
    imaginary = noise * rng.standard_normal(image.shape)
    return np.sqrt(real**2 + imaginary**2).astype(np.float32)


def _rater(
    model: RaterModel, grey: np.ndarray, white: np.ndarray, deep: np.ndarray, spacing: float, rng: np.random.Generator
) -> np.ndarray:
    """One rater's labels ``(X, Y, Z)`` uint8 of the warped tissue maps under ``model``."""
    wavelength = 40.0 / spacing
    tissue_bias = model.tissue_offset + model.bias_amplitude * smooth_field(grey.shape, wavelength, rng)
    border_bias = model.grey_white_offset + model.bias_amplitude * smooth_field(grey.shape, wavelength, rng)
    tissue = grey + white > 0.5 + tissue_bias
    labels = np.where(grey - white + border_bias > 0, 1, 2).astype(np.uint8)
    if model.deep_grey != "maps":
        labels[deep] = 1 if model.deep_grey == "grey" else 2
    labels[~tissue] = 0
    inside = np.argwhere(tissue)
    for _ in range(rng.poisson(model.omissions)):
        centre = inside[rng.integers(len(inside))]
        radius = rng.uniform(5.0, 12.0) / spacing
        lo = np.maximum(np.floor(centre - radius).astype(int), 0)
        hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, labels.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        offsets = np.indices(hi - lo).reshape(3, -1).T + lo - centre
        ball = (np.square(offsets).sum(1) <= radius**2).reshape(hi - lo)
        omitted = labels[centre[0], centre[1], centre[2]]  # the class under the centre is left out
        region = labels[box]
        region[ball & (region == omitted)] = 0
    return labels


def synthetic_subject(
    index: int, seed: int = 0, spacing: float = 2.0, raters: Sequence[RaterModel] = RATERS
) -> Subject:
    """Subject ``index`` of the benchmark drawn with ``seed``: the same arguments give the same arrays.

    Args:
        index: the subject's number; subjects of one seed are independent draws.
        seed: the benchmark's seed.
        spacing: voxel size in mm of the template grid the subject lives on (2 mm as the bundles use).
        raters: the rater models, one label map each.
    """
    anatomy, deep_template = _template(float(spacing))
    rng = np.random.default_rng([seed, index])
    coordinates = _warp_coordinates(anatomy.t1.shape, spacing, rng)

    def warp(volume: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(volume, coordinates, order=1, mode="constant", cval=0.0).astype(np.float32)

    grey, white, t1 = warp(anatomy.grey_matter), warp(anatomy.white_matter), warp(anatomy.t1)
    deep = warp(deep_template.astype(np.float32)) > 0.5
    image = _image(t1, grey, white, spacing, rng)
    rater_rngs = [np.random.default_rng([seed, index, 1 + r]) for r in range(len(raters))]
    labels = np.stack([_rater(m, grey, white, deep, spacing, g) for m, g in zip(raters, rater_rngs)])
    return Subject(image, labels, grey, white, deep, anatomy.affine.copy())


def benchmark_splits(
    subjects: int, seed: int = 0, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
) -> dict[str, list[int]]:
    """Subject numbers ``0 .. subjects - 1`` shuffled by ``seed`` into train / validation / test.

    Validation and test get ``round(fraction * subjects)`` subjects each, at least one; train the rest.

    Raises:
        ValueError: fewer than 3 subjects, or fractions that leave no training subject.
    """
    if subjects < 3:
        raise ValueError(f"the benchmark needs at least 3 subjects (train, validation, test), got {subjects}.")
    validation, test = (max(1, round(f * subjects)) for f in fractions[1:])
    if validation + test >= subjects:
        raise ValueError(f"fractions {fractions} leave no training subject out of {subjects}.")
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(subjects).tolist()
    return {
        "train": sorted(order[: subjects - validation - test]),
        "validation": sorted(order[subjects - validation - test : subjects - test]),
        "test": sorted(order[subjects - test :]),
    }


def write_multirater_benchmark(
    directory: str | Path, subjects: int = 20, seed: int = 0, spacing: float = 2.0, overwrite: bool = False
) -> dict[str, list[Path]]:
    """Write the benchmark as multi-rater folders ``directory/{train,validation,test}/subject_XXX/``.

    Each case folder holds ``image.nii.gz`` and ``label_rater{k}.nii.gz`` (read a split with
    :func:`revnets.data.multirater_datalist`); ``directory/benchmark.json`` records the seed, the spacing,
    the rater models and the split of every subject.

    Returns:
        The case folders by split.

    Raises:
        FileExistsError: a file exists and ``overwrite`` is False; nothing is replaced silently.
    """
    directory = Path(directory)
    manifest = directory / "benchmark.json"
    if manifest.exists() and not overwrite:
        raise FileExistsError(f"{manifest} exists: overwrite=True replaces the benchmark.")
    splits = benchmark_splits(subjects, seed)
    folders: dict[str, list[Path]] = {}
    for split, indices in splits.items():
        folders[split] = []
        for index in indices:
            subject = synthetic_subject(index, seed, spacing)
            case = directory / split / f"subject_{index:03d}"
            case.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(subject.image, subject.affine), case / "image.nii.gz")
            for k, labels in enumerate(subject.raters):
                nib.save(nib.Nifti1Image(labels, subject.affine), case / f"label_rater{k}.nii.gz")
            folders[split].append(case)
    record = {
        "seed": seed,
        "spacing": spacing,
        "subjects": subjects,
        "splits": splits,
        "raters": [asdict(m) for m in RATERS],
    }
    manifest.write_text(json.dumps(record, indent=2) + "\n")
    return folders
