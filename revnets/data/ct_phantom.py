"""A LIDC-style chest CT phantom: a thoracic slab in Hounsfield units with lung nodules and four raters.

Every case is generated from one seed (the same seed gives the same voxels, nodules and rater masks):

- **anatomy**: an elliptic body (skin, subcutaneous fat, muscle), ribs and a vertebra in the chest wall, a
  mediastinum with the aorta, two lungs (parenchyma about -850 HU, denser towards the back), a pulmonary
  vessel tree per lung branching from the hilum (radius 4.5 mm tapering to 0.6 mm) and airways (trachea,
  main bronchi, lobar branches: air inside a soft-tissue wall);
- **nodules**, 3-30 mm: solid (0-60 HU), part-solid (a solid core in a ground-glass halo) and ground-glass
  (-700 to -450 HU, soft margins), isolated, juxtapleural (touching the chest wall) or juxtavascular (on a
  vessel), lobulated shapes;
- **imaging**: every structure is a soft occupancy of its signed distance (partial volume at the voxel
  scale), blurred by a point-spread function, plus correlated noise of 15-30 HU (standard deviation).

Each nodule has a membership field in [0, 1] (1 inside the solid part, decaying over a margin that is wide
for ground-glass tissue); the image is made from the same field, so what the raters disagree about is
visible in the image. Four raters, each with a fixed style (:data:`RATER_STYLES`), draw every nodule they
detect as the field above their own level plus a smooth per-nodule jitter: a generous rater draws wide
ground-glass margins, a tight one small ones; small or faint nodules are detected by some raters only
(detection probability rises with diameter and falls for ground-glass); some raters smooth their outlines,
some include the attached vessel stub of a juxtavascular nodule. This reproduces the structure of LIDC-IDRI's
disagreement (Armato et al. 2011): who marks a nodule at all, and where each rater puts a faint margin.

The outputs: a case (:class:`ChestCase`), PHiSeg's ``data_lidc.pickle`` layout of 2D 128 x 128 crops
(:func:`lidc_crops`, :func:`write_lidc_pickle`), and 3D volumes with rater masks in the generic multi-rater
folder layout (``revnets.data.example.write_ct_case``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

SPACING = (1.0, 1.0, 2.0)
"""Voxel size of a case in mm: in-plane (right-left, anterior-posterior), then between slices."""
SHAPE = (288, 224, 40)
"""Voxels of a case: a 288 x 224 mm field of view and an 80 mm slab."""
KINDS = ("solid", "part-solid", "ground-glass")
LOCATIONS = ("isolated", "juxtapleural", "juxtavascular")
LUNG_WINDOW = (-1350.0, 150.0)
"""The Hounsfield range (lung window: level -600, width 1500) mapped to [0, 1] in the LIDC crops."""
CROP = 128


@dataclass(frozen=True)
class RaterStyle:
    """How one rater draws.

    Attributes:
        level: the membership level of the margin the rater draws (low: generous, high: tight).
        jitter: amplitude of the smooth random change of that level within one nodule.
        detection_diameter: diameter (mm) of a solid nodule the rater marks half of the time.
        smooth: the rater rounds the outline off (morphological closing and opening).
        includes_vessel: the rater draws the attached vessel stub of a juxtavascular nodule into it.
    """

    level: float
    jitter: float
    detection_diameter: float
    smooth: bool
    includes_vessel: bool


RATER_STYLES = (
    RaterStyle(level=0.30, jitter=0.10, detection_diameter=3.2, smooth=True, includes_vessel=True),
    RaterStyle(level=0.50, jitter=0.05, detection_diameter=4.0, smooth=False, includes_vessel=False),
    RaterStyle(level=0.65, jitter=0.08, detection_diameter=5.0, smooth=True, includes_vessel=False),
    RaterStyle(level=0.42, jitter=0.15, detection_diameter=4.5, smooth=False, includes_vessel=False),
)


@dataclass(frozen=True)
class Nodule:
    """One nodule: its centre (voxel coordinates), diameter (mm), kind and location."""

    centre: tuple[float, float, float]
    diameter: float
    kind: str
    location: str


@dataclass(frozen=True)
class ChestCase:
    """One phantom case.

    Attributes:
        hu: the CT image ``(X, Y, Z)`` int16 in Hounsfield units; ``X`` runs right to left, ``Y`` anterior
            to posterior, ``Z`` inferior to superior.
        affine: voxel index to RAS millimetres.
        raters: ``(4, X, Y, Z)`` uint8, each rater's nodule mask.
        nodule_index: ``(X, Y, Z)`` uint8: which nodule (1-based) each rater-marked voxel belongs to.
        nodules: the nodules, in the order of ``nodule_index``.
        lungs: ``(X, Y, Z)`` bool, both lungs.
        case_id: ``"chest-<seed>"``.
    """

    hu: np.ndarray
    affine: np.ndarray
    raters: np.ndarray
    nodule_index: np.ndarray
    nodules: tuple[Nodule, ...]
    lungs: np.ndarray
    case_id: str


def ct_affine(shape: tuple[int, int, int] = SHAPE, spacing: tuple[float, float, float] = SPACING) -> np.ndarray:
    """RAS affine of a case: axis 0 towards the patient's left, 1 posterior, 2 superior, centred on 0."""
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])
    affine[:3, 3] = [(shape[0] - 1) * spacing[0] / 2, (shape[1] - 1) * spacing[1] / 2, -(shape[2] - 1) * spacing[2] / 2]
    return affine


class _Canvas:
    """Millimetre coordinates of the grid and soft occupancies of shapes drawn in bounding boxes."""

    def __init__(self, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        self.shape = shape
        self.spacing = np.asarray(spacing)

    def box(self, low_mm: np.ndarray, high_mm: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
        """The grid slices covering ``[low_mm, high_mm]`` and their voxel centres in mm ``(3, *box)``."""
        low = np.maximum(np.floor(low_mm / self.spacing).astype(int), 0)
        high = np.minimum(np.ceil(high_mm / self.spacing).astype(int) + 1, self.shape)
        where = tuple(slice(a, max(a, b)) for a, b in zip(low, high))
        axes = [np.arange(s.start, s.stop) * d for s, d in zip(where, self.spacing)]
        return where, np.stack(np.meshgrid(*axes, indexing="ij"))

    def occupancy(self, distance: np.ndarray, width: float | None = None) -> np.ndarray:
        """Soft inside-ness of a signed distance (mm, negative inside): a ramp over one voxel (or ``width``)."""
        width = width if width is not None else float(self.spacing[:2].mean())
        return np.clip(0.5 - distance / width, 0.0, 1.0).astype(np.float32)


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance (mm) of ``points`` ``(3, *S)`` from the segment ``a``-``b``."""
    ab = b - a
    rel = points - a.reshape(3, *([1] * (points.ndim - 1)))
    t = np.clip(np.tensordot(ab, rel, axes=(0, 0)) / max(float(ab @ ab), 1e-9), 0.0, 1.0)
    return np.linalg.norm(rel - t[None] * ab.reshape(3, *([1] * (points.ndim - 1))), axis=0)


def _tube(canvas: _Canvas, field: np.ndarray, a: np.ndarray, b: np.ndarray, radius: float) -> None:
    """Draw a tube (max of soft occupancy) between ``a`` and ``b`` (mm) into ``field``."""
    where, points = canvas.box(np.minimum(a, b) - radius - 2, np.maximum(a, b) + radius + 2)
    if points.size == 0:
        return
    inside = canvas.occupancy(_segment_distance(points, a, b) - radius)
    np.maximum(field[where], inside, out=field[where])


def _vessel_tree(
    canvas: _Canvas, lung: np.ndarray, root: np.ndarray, direction: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray, float]]]:
    """A branching vessel tree from ``root`` (mm) into ``lung``: soft occupancy and its segments."""
    field = np.zeros(canvas.shape, np.float32)
    segments: list[tuple[np.ndarray, np.ndarray, float]] = []
    stack = [(root, direction / np.linalg.norm(direction), 4.5, 0)]
    limit = np.asarray(canvas.shape) * canvas.spacing
    while stack:
        start, heading, radius, depth = stack.pop()
        length = rng.uniform(14, 26) * (radius / 4.5) ** 0.5 + 6
        end = start + heading * length
        if np.any(end < 0) or np.any(end >= limit):
            continue
        voxel = tuple(np.clip((end / canvas.spacing).astype(int), 0, np.asarray(canvas.shape) - 1))
        if not lung[voxel] and depth > 0:
            continue
        _tube(canvas, field, start, end, radius)
        segments.append((start, end, radius))
        if radius < 0.7 or depth > 8:
            continue
        for _ in range(2):
            turn = rng.normal(size=3) * np.array([1.0, 1.0, 0.5])
            new = heading + 0.7 * turn / np.linalg.norm(turn)
            stack.append((end, new / np.linalg.norm(new), radius * rng.uniform(0.62, 0.78), depth + 1))
    return field, segments


def _lobulated_distance(points: np.ndarray, centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """Approximate signed distance (mm) to a lobulated ellipsoid of mean ``radius`` around ``centre``."""
    rel = points - centre.reshape(3, 1, 1, 1)
    axes = rng.uniform(0.8, 1.2, size=3)
    norm = np.linalg.norm(rel / axes.reshape(3, 1, 1, 1), axis=0)
    unit = rel / np.maximum(np.linalg.norm(rel, axis=0), 1e-6)
    lobes = sum(
        rng.uniform(0.0, 0.12) * np.cos(rng.integers(2, 5) * np.arccos(np.clip(np.tensordot(v, unit, 1), -1, 1)))
        for v in rng.normal(size=(3, 3))
    )
    return norm - radius * (1 + lobes)


def _draw_nodule(
    canvas: _Canvas, nodule: Nodule, rng: np.random.Generator
) -> tuple[tuple[slice, ...], np.ndarray, np.ndarray]:
    """A nodule's grid box, its membership field (solid part 1, ground-glass margins softer) and solid part."""
    radius = nodule.diameter / 2
    centre = np.asarray(nodule.centre) * canvas.spacing
    where, points = canvas.box(centre - 2 * radius - 6, centre + 2 * radius + 6)
    distance = _lobulated_distance(points, centre, radius, rng)
    if nodule.kind == "solid":
        solid = canvas.occupancy(distance)
        membership = solid
    else:
        margin = rng.uniform(1.5, 3.0)
        membership = (1 / (1 + np.exp(distance / (margin / 1.2)))).astype(np.float32)
        if nodule.kind == "part-solid":
            core = rng.uniform(0.3, 0.6) * radius
            solid = canvas.occupancy(_lobulated_distance(points, centre, core, rng))
        else:
            solid = np.zeros_like(membership)
    return where, membership, solid


def _nodule_plan(
    rng: np.random.Generator,
    lungs: np.ndarray,
    airways: np.ndarray,
    vessels: list[tuple[np.ndarray, np.ndarray, float]],
    canvas: _Canvas,
) -> list[Nodule]:
    """Two to five nodules with their kinds, sizes and locations (centres in the lungs, off the airways)."""
    coarse = ndimage.distance_transform_edt(lungs[::2, ::2], sampling=canvas.spacing * [2, 2, 1])
    wall = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[: lungs.shape[0], : lungs.shape[1]] * lungs
    wall[ndimage.binary_dilation(airways, iterations=3)] = 0
    nodules = []
    for _ in range(rng.integers(2, 6)):
        diameter = float(np.exp(rng.uniform(np.log(3.0), np.log(30.0))))
        kind = str(rng.choice(KINDS, p=(0.55, 0.2, 0.25)))
        location = str(rng.choice(LOCATIONS, p=(0.45, 0.3, 0.25)))
        radius = diameter / 2
        if location == "juxtapleural":
            candidates = np.argwhere((wall > 0.6 * radius) & (wall < 0.6 * radius + 1.5))
        elif location == "juxtavascular":
            thick = [s for s in vessels if s[2] >= 1.0]
            start, end, vessel_radius = thick[rng.integers(len(thick))]
            point = start + rng.uniform(0.3, 0.9) * (end - start)
            offset = rng.normal(size=3)
            offset -= (offset @ (end - start)) / max(float((end - start) @ (end - start)), 1e-9) * (end - start)
            point = point + offset / max(float(np.linalg.norm(offset)), 1e-6) * (vessel_radius + 0.6 * radius)
            candidates = np.asarray([np.round(point / canvas.spacing)], dtype=int)
            if not lungs[tuple(np.clip(candidates[0], 0, np.asarray(canvas.shape) - 1))]:
                candidates = np.argwhere(wall > radius + 3)
                location = "isolated"
        else:
            candidates = np.argwhere(wall > radius + 3)
        if len(candidates) == 0:
            continue
        centre = candidates[rng.integers(len(candidates))].astype(float)
        nodules.append(Nodule((float(centre[0]), float(centre[1]), float(centre[2])), diameter, kind, location))
    return nodules


def _detected(style: RaterStyle, nodule: Nodule, rng: np.random.Generator) -> bool:
    """Whether a rater marks the nodule: likelier for large, solid nodules."""
    faintness = {"solid": 1.0, "part-solid": 1.2, "ground-glass": 1.6}[nodule.kind]
    half = style.detection_diameter * faintness
    probability = 1 / (1 + np.exp(-(nodule.diameter - half) / (0.2 * half)))
    return bool(rng.random() < probability)


def _rater_mask(
    style: RaterStyle, membership: np.ndarray, vessel: np.ndarray, nodule: Nodule, rng: np.random.Generator
) -> np.ndarray:
    """One rater's drawing of one nodule in its box."""
    jitter = ndimage.gaussian_filter(rng.normal(size=membership.shape).astype(np.float32), sigma=(3, 3, 1.5))
    jitter *= style.jitter / max(float(jitter.std()), 1e-6)
    mask = membership > np.clip(style.level + jitter, 0.05, 0.95)
    if style.includes_vessel and nodule.location == "juxtavascular":
        mask |= ndimage.binary_dilation(mask, iterations=2) & (vessel > 0.5)
    if style.smooth and mask.any():
        structure = ndimage.generate_binary_structure(3, 1)
        mask = ndimage.binary_opening(ndimage.binary_closing(mask, structure), structure) | (membership > 0.95)
    labelled, count = ndimage.label(mask)
    if count > 1:  # keep the part around the centre: a rater draws one outline
        sizes = ndimage.sum(mask, labelled, range(1, count + 1))
        mask = labelled == 1 + int(np.argmax(sizes))
    return mask


def simulate_chest_ct(
    seed: int, shape: tuple[int, int, int] = SHAPE, spacing: tuple[float, float, float] = SPACING
) -> ChestCase:
    """One chest CT phantom case (see the module's docstring); the same ``seed`` gives the same case."""
    rng = np.random.default_rng(seed)
    canvas = _Canvas(shape, spacing)
    size = np.asarray(shape) * canvas.spacing
    x, y, z = np.meshgrid(*[np.arange(n) * d for n, d in zip(shape, canvas.spacing)], indexing="ij", sparse=True)
    cx, cy = size[0] / 2 + rng.normal(0, 3), size[1] / 2 + rng.normal(0, 3)
    a, b = rng.uniform(128, 140), rng.uniform(90, 102)
    body_distance = (np.sqrt(((x - cx) / a) ** 2 + ((y - cy) / b) ** 2) - 1) * min(a, b)
    body = canvas.occupancy(body_distance)
    muscle = canvas.occupancy(body_distance + rng.uniform(16, 22))
    # Lungs: two ellipses beside the mediastinum, narrowing slightly towards the apex (superior).
    taper = 1 - 0.15 * (z / size[2])
    lung_fields = []
    for side in (-1, 1):
        lx = cx + side * a * rng.uniform(0.42, 0.48)
        la, lb = a * rng.uniform(0.36, 0.42) * taper, b * rng.uniform(0.66, 0.74) * taper
        distance = (np.sqrt(((x - lx) / la) ** 2 + ((y - cy - 4) / lb) ** 2) - 1) * np.minimum(la, lb)
        lung_fields.append(canvas.occupancy(distance))
    lung = np.maximum(*lung_fields) * muscle
    lungs = lung > 0.5
    # Airways: trachea in the midline, main bronchi and one lobar branch per lung.
    airway_air = np.zeros(shape, np.float32)
    airway_wall = np.zeros(shape, np.float32)
    carina = np.array([cx, cy - 18, size[2] * rng.uniform(0.45, 0.6)])
    branches = [(carina + [0, 0, size[2]], carina, 8.0)]
    for side in (-1, 1):
        hilum = carina + [side * a * 0.3, 6, -12]
        branches.append((carina, hilum, 5.5))
        branches.append((hilum, hilum + [side * 14, rng.uniform(-8, 8), rng.uniform(-14, 14)], 3.5))
    for start, end, radius in branches:
        _tube(canvas, airway_wall, start, end, radius + 1.5)
        _tube(canvas, airway_air, start, end, radius)
    # Vessel trees from each hilum.
    vessels = np.zeros(shape, np.float32)
    segments = []
    for side, lung_field in zip((-1, 1), lung_fields):
        root = np.array([cx + side * a * 0.28, cy + 4, carina[2] - 6])
        for _ in range(5):
            heading = np.array([side * 1.0, rng.normal(0, 0.7), rng.normal(0, 0.7)])
            field, tree = _vessel_tree(canvas, lung_field > 0.5, root, heading, rng)
            np.maximum(vessels, field, out=vessels)
            segments += tree
    aorta = np.zeros(shape, np.float32)
    aorta_centre = np.array([cx + 14, cy + 22])
    aorta += canvas.occupancy(np.sqrt((x - aorta_centre[0]) ** 2 + (y - aorta_centre[1]) ** 2) - 12 + 0 * z)
    # Chest wall bones: rib cross-sections around the lungs and a vertebral body.
    bone = canvas.occupancy(np.sqrt((x - cx) ** 2 + ((y - cy - b + 34) / 1.1) ** 2) - 17 + 0 * z)
    for angle in np.linspace(0.15, np.pi - 0.15, 9):
        for side in (-1, 1):
            rib_x = cx + side * (a - 13) * np.cos(angle)
            rib_y = cy + (b - 12) * np.sin(angle) * (1 if angle > 1.2 else -1)
            centre = np.array([rib_x, rib_y, rng.uniform(0, size[2])])
            where, points = canvas.box(centre - [8, 5, 12], centre + [8, 5, 12])
            rib = np.sqrt((((points - centre.reshape(3, 1, 1, 1)) / [[[[6]]], [[[3]]], [[[9]]]]) ** 2).sum(0)) - 1
            np.maximum(bone[where], canvas.occupancy(rib * 4), out=bone[where])
    # Nodules and raters.
    nodules = _nodule_plan(rng, lungs, airway_wall > 0.5, segments, canvas)
    nodule_hu = np.zeros(shape, np.float32)
    nodule_weight = np.zeros(shape, np.float32)
    raters = np.zeros((len(RATER_STYLES), *shape), np.uint8)
    nodule_index = np.zeros(shape, np.uint8)
    for n, nodule in enumerate(nodules, start=1):
        where, membership, solid = _draw_nodule(canvas, nodule, rng)
        ground_glass_hu = rng.uniform(-700, -450)
        solid_hu = rng.uniform(0, 60)
        value = np.where(solid > 0, solid_hu, ground_glass_hu) if nodule.kind != "solid" else solid_hu
        weight = np.maximum(membership, solid)
        better = weight > nodule_weight[where]
        nodule_hu[where] = np.where(better, value, nodule_hu[where])
        nodule_weight[where] = np.where(better, weight, nodule_weight[where])
        for r, style in enumerate(RATER_STYLES):
            if _detected(style, nodule, rng):
                mask = _rater_mask(style, np.maximum(membership, solid), vessels[where], nodule, rng)
                mask &= lung[where] > 0.3  # drawn up to the pleura
                rater_box: tuple[int | slice, ...] = (r, *where)
                raters[rater_box] |= mask
                nodule_index[where][mask] = n
    nodule_weight *= lung
    # Compose the image from the back to the front: outside air, body, lungs, contents.
    posterior = np.clip((y - (cy - b)) / (2 * b), 0, 1)
    parenchyma = -870 + 60 * posterior + rng.normal(0, 8)
    hu = np.full(shape, -1000.0, np.float32)
    hu += body * (-100 + 1000)  # subcutaneous fat
    hu += muscle * (45 - -100)  # chest-wall muscle and mediastinum
    hu = hu * (1 - lung) + lung * parenchyma
    hu = hu * (1 - aorta) + aorta * 45
    hu = hu * (1 - vessels * lung) + vessels * lung * 40
    hu = hu * (1 - airway_wall) + airway_wall * 30
    hu = hu * (1 - airway_air) + airway_air * -990
    hu = hu * (1 - nodule_weight) + nodule_weight * nodule_hu
    hu = hu * (1 - bone) + bone * rng.uniform(450, 750)
    hu = ndimage.gaussian_filter(hu, sigma=(0.6, 0.6, 0.4))
    noise = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), sigma=(0.8, 0.8, 0.3))
    hu += noise / max(float(noise.std()), 1e-6) * rng.uniform(15, 30)
    hu = np.clip(np.round(hu), -1024, 3071).astype(np.int16)
    return ChestCase(
        hu=hu,
        affine=ct_affine(shape, spacing),
        raters=raters,
        nodule_index=nodule_index,
        nodules=tuple(nodules),
        lungs=lungs,
        case_id=f"chest-{seed:04d}",
    )


def window(hu: np.ndarray, hu_range: tuple[float, float] = LUNG_WINDOW) -> np.ndarray:
    """Hounsfield units mapped linearly to [0, 1] over ``hu_range`` (clipped), float32."""
    low, high = hu_range
    return np.clip((hu.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def lidc_crops(case: ChestCase, rng: np.random.Generator | None = None, jitter: int = 8) -> dict[str, dict]:
    """The case's nodules as PHiSeg's LIDC crops: every axial slice through a nodule that a rater marked.

    Each crop is ``CROP x CROP`` voxels centred on the nodule (shifted by up to ``jitter`` voxels, drawn from
    ``rng``), windowed to [0, 1] (:data:`LUNG_WINDOW`), with the four raters' masks of that nodule only (an
    empty mask where a rater did not mark it on that slice), as in ``data_lidc.pickle``.

    Returns:
        ``{"<case_id>_nodule<n>_slice<k>": {"image": (128, 128) float32, "masks": [4 x (128, 128) uint8],
        "series_uid": case_id}}``.
    """
    rng = rng or np.random.default_rng(0)
    image = window(case.hu)
    half = CROP // 2
    padded = np.pad(image, ((half + jitter, half + jitter), (half + jitter, half + jitter), (0, 0)))
    crops = {}
    for n, nodule in enumerate(case.nodules, start=1):
        own = case.raters & (case.nodule_index == n)[None]
        for k in np.flatnonzero(own.any(axis=(0, 1, 2))):
            ci, cj = (int(round(c)) + int(rng.integers(-jitter, jitter + 1)) for c in nodule.centre[:2])
            i0, j0 = ci + jitter, cj + jitter
            masks = np.pad(own[:, :, :, k], ((0, 0), (half + jitter, half + jitter), (half + jitter, half + jitter)))
            crops[f"{case.case_id}_nodule{n}_slice{k:03d}"] = {
                "image": padded[i0 : i0 + CROP, j0 : j0 + CROP, k].copy(),
                "masks": [m[i0 : i0 + CROP, j0 : j0 + CROP].astype(np.uint8) for m in masks],
                "series_uid": case.case_id,
            }
    return crops


def write_lidc_pickle(path: str | Path, seeds: range | list[int], overwrite: bool = False) -> Path:
    """Write the crops of the cases ``seeds`` as a ``data_lidc.pickle`` (read it with ``load_lidc_pickle``).

    Raises:
        FileExistsError: the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists: pass overwrite=True to replace it.")
    crops = {}
    for seed in seeds:
        crops.update(lidc_crops(simulate_chest_ct(seed), np.random.default_rng(seed)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as stream:
        pickle.dump(crops, stream, protocol=4)
    return path


def phantom_lidc_pickle(directory: str | Path, first_seed: int, cases: int) -> Path:
    """``directory/lidc_phantom_<first>-<last>.pickle``: the crops of ``cases`` cases from seed ``first_seed`` on.

    Written on first use and read afterwards (the name fixes its content), so a training config can name it.
    """
    path = Path(directory) / f"lidc_phantom_{first_seed}-{first_seed + cases - 1}.pickle"
    if not path.is_file():
        partial = path.with_name(f".{path.name}.partial")
        write_lidc_pickle(partial, range(first_seed, first_seed + cases), overwrite=True)
        partial.replace(path)
    return path
