"""Channels of a multi-channel case must share one voxel grid before anything is written."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from RevnetsSegmentationLib.geometry import GeometryMismatch, VolumeGeometry, check_matching_geometry, difference
from RevnetsSegmentationLib.workspace import Workspace

LPS = np.array([[-1.0, 0, 0, 90], [0, -1.0, 0, 120], [0, 0, 1.2, -60], [0, 0, 0, 1]])
T1 = VolumeGeometry.from_affine((240, 240, 155), LPS)


def _changed(**fields) -> VolumeGeometry:
    return VolumeGeometry(**{**T1.__dict__, **fields})


def test_geometry_from_an_affine_has_positive_spacing_and_unit_directions() -> None:
    assert T1.spacing == (1.0, 1.0, 1.2)
    assert T1.origin == (90.0, 120.0, -60.0)
    assert np.allclose(T1.directions, np.diag([-1.0, -1.0, 1.0]))


def test_matching_channels_pass_even_with_float_rounding() -> None:
    rounded = _changed(origin=(90.00001, 120.0, -60.0))
    check_matching_geometry([("T1", T1), ("T1ce", rounded), ("T2", T1), ("FLAIR", T1)])
    assert difference(T1, rounded) is None


@pytest.mark.parametrize(
    ("other", "what"),
    [
        (_changed(shape=(240, 240, 154)), "shape (240, 240, 155) vs (240, 240, 154)"),
        (_changed(spacing=(1.0, 1.0, 1.0)), "spacing (1.0, 1.0, 1.2) vs (1.0, 1.0, 1.0)"),
        (_changed(origin=(90.0, 121.0, -60.0)), "origin (90.0, 120.0, -60.0) vs (90.0, 121.0, -60.0)"),
        (_changed(directions=((1.0, 0, 0), (0, -1.0, 0), (0, 0, 1.0))), "directions ((-1.0, 0.0, 0.0)"),
    ],
)
def test_a_channel_off_the_grid_is_named_with_what_differs(other: VolumeGeometry, what: str) -> None:
    with pytest.raises(GeometryMismatch) as mismatch:
        check_matching_geometry([("T1", T1), ("T1ce", T1), ("FLAIR", other)])
    message = str(mismatch.value)
    assert message.startswith(f"FLAIR is not on the voxel grid of T1 ({what}")
    assert "resample it onto T1" in message and "\n" not in message


def test_stacking_files_of_different_grids_is_refused(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    paths = workspace.channel_paths("case", 2)
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), LPS), paths[0])
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), paths[1])
    with pytest.raises(GeometryMismatch, match="case_channel1.nii.gz is not on the voxel grid of case_channel0"):
        workspace.stack_channels("case", 2)
    assert not workspace.scan_path("case").exists()
