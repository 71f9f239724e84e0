"""Per-sample label maps in the input's space, made one at a time when they are written."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class LabelVolumes:
    """``N`` label maps in the input's space, ``(*input_spatial, N)`` ``uint8``, computed one map at a time.

    Each map is a look-up of a sample's classes (on the preprocessed grid) at the grid voxel that every
    input voxel takes its value from, so only the samples on the grid ``(N, V)`` are held: memory does not
    grow with the input's size times ``N``. :func:`revnets.inference.writer.write_nifti` streams the maps into
    the file one after the other; ``np.asarray`` builds the whole array (for tests and small volumes).

    Args:
        classes: class index of each sample at each grid voxel, ``(N, V)`` ``uint8``.
        source: for every input voxel, 1 + the flat index of its grid voxel, or 0 where it has none (class 0
            there), ``(*reversed input spatial)`` (C order, so one map is one contiguous Fortran-order volume).
        labels: the label value of each class index (voxels outside the grid get class 0's); None keeps the
            indices.
    """

    dtype = np.dtype(np.uint8)

    def __init__(self, classes: np.ndarray, source: np.ndarray, labels: np.ndarray | None = None) -> None:
        if classes.ndim != 2 or classes.shape[0] == 0:
            raise ValueError(f"classes must be (N, V) with N >= 1, got shape {classes.shape}.")
        self.classes = classes
        self.source = source
        self.values = np.arange(256, dtype=np.uint8) if labels is None else np.asarray(labels, dtype=np.uint8)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.source.shape[::-1], self.classes.shape[0])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.classes.shape[0]

    def volume(self, index: int) -> np.ndarray:
        """Sample ``index`` in the input's space, ``(*input_spatial)`` ``uint8`` (a Fortran-order view)."""
        values = self.values[self.classes[index]]
        return np.concatenate((self.values[:1], values))[self.source].T

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.volume(index) for index in range(len(self)))

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        array = np.stack(list(self), axis=-1)
        return array if dtype is None else array.astype(dtype)
