"""Samples written as NIfTI one map at a time: the same file as the whole array, in one map's memory."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from revnets.inference.label_volumes import LabelVolumes
from revnets.inference.writer import write_nifti


def _volumes(num_samples: int, spatial: tuple[int, int, int], seed: int = 0) -> LabelVolumes:
    """Random samples on a grid of 30 voxels, looked up at random grid voxels (0: outside the grid)."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, (num_samples, 30)).astype(np.uint8)
    source = rng.integers(0, 31, spatial[::-1])
    return LabelVolumes(classes, source, np.array([7, 10, 20]))


def _reference(scale: float = 1.0) -> nib.Nifti1Image:
    image = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.diag([2.0, -3.0, 4.0, 1.0]))
    image.header.set_slope_inter(scale, 1.0)  # an input's scaling must not reach the label maps
    return image


def test_each_volume_looks_its_sample_up_and_outside_the_grid_is_class_0() -> None:
    volumes = _volumes(4, (5, 6, 7))
    expected = np.array([7, 10, 20])[np.concatenate(([0], volumes.classes[2]))[volumes.source]].T
    assert volumes.shape == (5, 6, 7, 4) and len(volumes) == 4
    assert np.array_equal(volumes.volume(2), expected)
    assert (volumes.volume(2)[volumes.source.T == 0] == 7).all()
    assert np.array_equal(np.asarray(volumes)[..., 2], expected)


@pytest.mark.parametrize("compressed", [True, False])
def test_streamed_file_has_the_bytes_of_the_whole_array(tmp_path: Path, compressed: bool) -> None:
    volumes = _volumes(3, (5, 6, 7))
    write_nifti(volumes, _reference(2.0), tmp_path / "streamed", compressed=compressed)
    write_nifti(np.asarray(volumes), _reference(2.0), tmp_path / "whole", compressed=compressed)
    read = gzip.open if compressed else open
    with read(tmp_path / "streamed", "rb") as streamed, read(tmp_path / "whole", "rb") as whole:
        assert streamed.read() == whole.read()
    image = nib.Nifti1Image.from_bytes(read(tmp_path / "streamed", "rb").read())
    assert np.array_equal(np.asarray(image.dataobj), np.asarray(volumes))
    assert image.dataobj.slope == 1.0 and image.dataobj.inter == 0.0


def test_writing_holds_one_map_at_a_time(tmp_path: Path) -> None:
    volumes = _volumes(40, (40, 40, 40))
    one_map = 40**3
    tracemalloc.start()
    try:
        write_nifti(volumes, _reference(), tmp_path / "samples.nii", compressed=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * one_map  # a map and its bytes (about 2.3 maps); the whole array would be 40
    assert (tmp_path / "samples.nii").stat().st_size == 352 + 40 * one_map


def test_no_samples_is_an_error() -> None:
    with pytest.raises(ValueError, match="N >= 1"):
        LabelVolumes(np.zeros((0, 30), np.uint8), np.zeros((2, 2, 2), np.int64))
