"""Do the channels of a multi-channel case share one voxel grid? Plain numpy, no MRML.

The Slicer module reads each volume node's dimensions and IJK-to-RAS matrix into a
:class:`VolumeGeometry`. ``revnets predict`` stacks channels voxel by voxel, so they must agree up to
float rounding, as ``revnets.inference.scans.find_scan`` also checks on the written files; checking the
nodes first names the offending channel before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Same tolerance as the revnets command's affine check, in mm (and unitless for directions).
TOLERANCE = 1e-4


class GeometryMismatch(ValueError):
    """Two input channels are not on the same voxel grid; the message names both and what differs."""


@dataclass(frozen=True)
class VolumeGeometry:
    """The voxel grid of a volume.

    Attributes:
        shape: voxels along I, J, K.
        spacing: voxel size along I, J, K in mm.
        origin: RAS position of voxel (0, 0, 0) in mm.
        directions: ``(3, 3)`` unit vectors of the I, J, K axes in RAS, one per column.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    directions: tuple[tuple[float, float, float], ...]

    @classmethod
    def from_affine(cls, shape: Sequence[int], affine: np.ndarray) -> VolumeGeometry:
        """From an IJK-to-RAS ``(4, 4)`` affine (as nibabel gives) and the volume's shape."""
        affine = np.asarray(affine, dtype=float)
        spacing = np.linalg.norm(affine[:3, :3], axis=0)
        directions = affine[:3, :3] / spacing
        return cls(
            shape=tuple(int(s) for s in shape[:3]),
            spacing=tuple(float(s) for s in spacing),
            origin=tuple(float(o) for o in affine[:3, 3]),
            directions=tuple(tuple(float(v) for v in row) for row in directions),
        )


def difference(reference: VolumeGeometry, other: VolumeGeometry, tolerance: float = TOLERANCE) -> str | None:
    """What differs between two grids, e.g. ``"spacing (1, 1, 1) vs (1, 1, 1.2)"``; None when they match."""
    if reference.shape != other.shape:
        return f"shape {reference.shape} vs {other.shape}"
    for name in ("spacing", "origin", "directions"):
        mine, theirs = np.asarray(getattr(reference, name)), np.asarray(getattr(other, name))
        if not np.allclose(mine, theirs, rtol=0.0, atol=tolerance):
            return f"{name} {_rounded(mine)} vs {_rounded(theirs)}"
    return None


def check_matching_geometry(channels: Sequence[tuple[str, VolumeGeometry]], tolerance: float = TOLERANCE) -> None:
    """Raise :class:`GeometryMismatch` unless every ``(name, geometry)`` matches the first one.

    The message is one sentence naming the channel and the property that differs, and how to fix it.
    """
    if not channels:
        return
    reference_name, reference = channels[0]
    for name, geometry in channels[1:]:
        different = difference(reference, geometry, tolerance)
        if different is not None:
            raise GeometryMismatch(
                f"{name} is not on the voxel grid of {reference_name} ({different}): resample it onto "
                f"{reference_name} first (e.g. with the Resample Scalar/Vector/DWI Volume module)."
            )


def _rounded(values: np.ndarray) -> str:
    return str(np.round(values, 4).tolist()).replace("[", "(").replace("]", ")")
