"""An uncertainty map over its scan as one picture, for docs, model cards and users without 3D Slicer.

Three slices (axial, coronal, sagittal) through the centre of the volume or through the most uncertain
voxel: the scan in grey, the map in colour with an opacity that grows with its value (transparent where
it is about zero), the consensus labels as contours, and a colour bar named after the map. Volumes are
reoriented to RAS first and drawn in the radiological convention that 3D Slicer uses (patient's right on
the left of axial and coronal views, anterior on the left of sagittal views), with the sides marked.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.errors import UserInputError
from revnets.files import AFFINE_TOLERANCE, NIFTI_SUFFIX, OutputUnit, open_nifti

MAP_TITLES = {
    "entropy": "predictive entropy (nats)",
    "mutual_info": "mutual information (nats)",
    "variance": "variance of the class probabilities",
}
POINTS = ("centre", "max")
# Values below this fraction of the colour range are left transparent, so the scan shows where the
# model is sure.
_TRANSPARENT_BELOW = 0.05
_CONTOUR_COLOURS = ("#00e5ff", "#7cfc00", "#ff4dd2", "#ffd000", "#ffffff", "#ff7f0e")
# (name, axis cut, side marks on the left and right of the picture)
_VIEWS = (("axial", 2, ("R", "L")), ("coronal", 1, ("R", "L")), ("sagittal", 0, ("A", "P")))


def map_title(path: Path) -> str:
    """The colour bar's title: what a ``revnets predict`` map file holds, or its file name."""
    name = NIFTI_SUFFIX.sub("", path.name)
    for suffix, title in MAP_TITLES.items():
        if name.endswith(f"_{suffix}"):
            return title
    return name


def render_overlay(
    scan: Path,
    uncertainty: Path,
    output: Path,
    seg: Path | None = None,
    alpha: float = 0.6,
    cmap: str = "inferno",
    at: str = "centre",
    overwrite: bool = False,
) -> Path:
    """Draw ``uncertainty`` over ``scan`` (and the contours of ``seg``) and write the PNG ``output``.

    Args:
        scan: the scan the map was computed for (3D NIfTI).
        uncertainty: a 3D NIfTI map in the scan's space, e.g. ``<stem>_entropy.nii.gz``.
        output: the PNG to write (written under a temporary name, then renamed).
        seg: consensus labels in the scan's space, drawn as one contour colour per label.
        alpha: the map's opacity at its maximum, in (0, 1]; lower values are drawn more transparent.
        cmap: a matplotlib colour map name.
        at: ``"centre"`` (slices through the middle voxel) or ``"max"`` (through the most uncertain voxel).
        overwrite: replace an existing ``output``.

    Raises:
        UserInputError: missing or unreadable files, volumes that are not 3D or not in the same space,
            a bad ``alpha``, ``cmap`` or ``at``.
        revnets.files.OutputError: ``output`` exists (without ``overwrite``), is an input, or cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    if not 0 < alpha <= 1:
        raise UserInputError(f"alpha must be in (0, 1], got {alpha}.")
    if cmap not in matplotlib.colormaps:
        raise UserInputError(f"cmap {cmap} is not a matplotlib colour map (e.g. inferno, magma, viridis, hot).")
    if at not in POINTS:
        raise UserInputError(f"at must be one of {', '.join(POINTS)}, got {at}.")
    if output.suffix.lower() != ".png":
        raise UserInputError(f"the output {output} must end in .png.")
    unit = OutputUnit({"picture": output}, protected=[p for p in (scan, uncertainty, seg) if p], overwrite=overwrite)
    unit.check()
    reference = _canonical(scan)
    volumes = {
        "scan": _finite(scan, reference.get_fdata(dtype=np.float32)),
        "map": _matching(uncertainty, reference, scan),
    }
    if seg is not None:
        volumes["seg"] = np.rint(_matching(seg, reference, scan)).astype(np.int64)
    point = _point(volumes["map"], at)
    figure = _figure(volumes, reference.header.get_zooms()[:3], point, map_title(uncertainty), alpha, cmap)
    _save(figure, unit)
    return output


def _canonical(path: Path) -> nib.Nifti1Image:
    image = open_nifti(path)
    if image.ndim == 4 and image.shape[3] == 1:
        image = image.slicer[..., 0]
    if image.ndim != 3:
        raise UserInputError(f"{path} has shape {image.shape}: expected a 3D volume.")
    return nib.as_closest_canonical(image)


def _matching(path: Path, reference: nib.Nifti1Image, reference_path: Path) -> np.ndarray:
    image = _canonical(path)
    if image.shape != reference.shape:
        raise UserInputError(
            f"{path} has shape {image.shape} but {reference_path} has shape {reference.shape}: "
            "pass the files written for this scan."
        )
    if not np.allclose(image.affine, reference.affine, atol=AFFINE_TOLERANCE):
        raise UserInputError(f"{path} is not in the space of {reference_path}: their affines differ.")
    return _finite(path, image.get_fdata(dtype=np.float32))


def _finite(path: Path, volume: np.ndarray) -> np.ndarray:
    if not np.isfinite(volume).all():
        raise UserInputError(f"{path} contains NaN or infinite values: it cannot be drawn.")
    return volume


def _point(volume: np.ndarray, at: str) -> tuple[int, int, int]:
    if at == "max":
        i, j, k = (int(i) for i in np.unravel_index(np.argmax(volume), volume.shape))
        return (i, j, k)
    x, y, z = volume.shape
    return (x // 2, y // 2, z // 2)


def _plane(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The slice at ``index`` along ``axis`` of a RAS volume, as rows (up) by columns (radiological)."""
    return np.take(volume, index, axis=axis).T[:, ::-1]


def _figure(
    volumes: dict[str, np.ndarray],
    zooms: tuple[float, ...],
    point: tuple[int, int, int],
    title: str,
    alpha: float,
    cmap: str,
):
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    scan, uncertainty = volumes["scan"], volumes["map"]
    grey = np.percentile(scan, [1, 99.5])
    top = float(uncertainty.max()) or 1.0
    norm = Normalize(vmin=0.0, vmax=top)
    labels = [int(v) for v in np.unique(volumes["seg"]) if v != 0] if "seg" in volumes else []
    colours = {label: _CONTOUR_COLOURS[i % len(_CONTOUR_COLOURS)] for i, label in enumerate(labels)}
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4), facecolor="black", layout="constrained")
    image = None
    for ax, (name, axis, sides) in zip(axes, _VIEWS):
        rows, columns = [zooms[a] for a in range(3) if a != axis][::-1]
        ax.imshow(_plane(scan, axis, point[axis]), cmap="gray", vmin=grey[0], vmax=grey[1], origin="lower")
        plane = _plane(uncertainty, axis, point[axis])
        opacity = alpha * np.clip(norm(plane), 0.0, 1.0)
        shown = np.ma.masked_less(plane, _TRANSPARENT_BELOW * top)
        image = ax.imshow(shown, cmap=cmap, norm=norm, alpha=opacity, origin="lower", interpolation="nearest")
        for label, colour in colours.items():
            mask = _plane(volumes["seg"], axis, point[axis]) == label
            if mask.any():
                ax.contour(mask.astype(np.float32), levels=[0.5], colors=[colour], linewidths=0.6)
        ax.set_aspect(rows / columns)
        ax.set_title(f"{name} (slice {point[axis]})", color="white", fontsize=10)
        for x, side, align in ((0.02, sides[0], "left"), (0.98, sides[1], "right")):
            ax.text(x, 0.97, side, color="white", transform=ax.transAxes, ha=align, va="top", fontsize=10)
        ax.axis("off")
    if image is None:
        raise ValueError("no view was drawn: the figure has no axes")
    bar = figure.colorbar(image, ax=axes, orientation="horizontal", fraction=0.06, aspect=60)
    bar.set_label(title, color="white")
    bar.ax.tick_params(colors="white")
    if bar.solids is not None:
        bar.solids.set_alpha(1.0)
    if colours:
        handles = [Line2D([], [], color=colour, label=f"label {label}") for label, colour in colours.items()]
        legend = figure.legend(handles=handles, loc="outside lower right", ncol=len(handles), frameon=False,
                               labelcolor="white", fontsize=9, title="consensus contours", title_fontsize=9)
        legend.get_title().set_color("white")
    return figure


def _save(figure, unit: OutputUnit) -> None:
    import matplotlib.pyplot as plt

    try:
        with unit:
            figure.savefig(unit.path("picture"), format="png", dpi=100, facecolor=figure.get_facecolor())
    finally:
        plt.close(figure)
