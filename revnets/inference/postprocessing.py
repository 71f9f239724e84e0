"""Post-processing of a sampling run, as MONAI dictionary transforms: maps back to the input's space, the
consensus, and the outputs of each scan written as one all-or-none unit.

The chain in ``configs/inference.json`` after :class:`~revnets.inference.SamplingInferer`::

    FlattenSubKeysd(pred) -> InvertMapsd(float maps) -> InvertSamplesd(samples) -> ConsensusLabelsd -> WriteOutputsd

Memory does not grow with the number of samples: the float maps are one per scan, and the samples are
kept on the preprocessed grid and brought back to the input's space one at a time while the 4D NIfTI is
written (:class:`~revnets.inference.label_volumes.LabelVolumes`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Invertd, InvertibleTransform, MapTransform
from monai.transforms.transform import Transform

from revnets.errors import InputError
from revnets.files import OutputUnit, refuse_shared_targets
from revnets.inference.label_volumes import LabelVolumes
from revnets.inference.scans import Scan
from revnets.inference.writer import write_nifti
from revnets.uncertainty import class_argmax

OUTPUTS = ("seg", "samples", "entropy", "mutual_info", "variance")
"""The outputs written by default, per input ``<stem>``: ``<stem>_<name>.nii.gz``."""

OPTIONAL_OUTPUTS = ("probabilities", "expected_cross_entropy")
"""Outputs written only when asked for: the mean class probabilities (4D, one volume per class) and the
expected cross-entropy map (PHiSeg's gamma map)."""


class InvertMapsd(MapTransform):
    """Brings the float maps back to the input's space in one resampling: MONAI's ``Invertd`` on the maps
    stacked along the channel axis, split again afterwards.

    Each ``data[key]`` ``(C_k, *spatial)`` on the preprocessed grid becomes ``(C_k, *input_spatial)``; the
    values are those of inverting each key on its own (interpolation treats channels independently), but
    the resampling grid is built once instead of once per key. Only the maps named in ``outputs`` (and the
    ``probabilities``, which the consensus is read from) are inverted; the others are dropped.

    Args:
        keys: the float maps, e.g. ``["probabilities", "entropy", ...]``.
        transform: the invertible preprocessing.
        outputs: the outputs to be written (:data:`OUTPUTS`, :data:`OPTIONAL_OUTPUTS`).
        orig_keys: the key whose applied operations are inverted (``"image"``).
        required: keys inverted whatever ``outputs`` says.
    """

    def __init__(
        self,
        keys: str | Sequence[str],
        transform: InvertibleTransform,
        outputs: Sequence[str] = OUTPUTS,
        orig_keys: str = "image",
        required: Sequence[str] = ("probabilities",),
    ) -> None:
        super().__init__(keys)
        self.needed = [key for key in self.keys if key in outputs or key in required]
        self.orig_keys = orig_keys
        self.inverter = Invertd(
            keys="maps", transform=transform, orig_keys=orig_keys, nearest_interp=False, to_tensor=True
        )

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = {key: value for key, value in data.items() if key not in self.keys or key in self.needed}
        maps = [torch.as_tensor(d[key]) for key in self.needed]
        stacked = MetaTensor(torch.cat(maps).float())
        restored = self.inverter({"maps": stacked, self.orig_keys: d[self.orig_keys]})["maps"]
        for key, part in zip(self.needed, torch.split(restored, [m.shape[0] for m in maps])):
            d[key] = part
        return d


class InvertSamplesd(MapTransform):
    """Brings per-sample class-index maps back to the input's space, one sample at a time.

    ``data[key]`` ``(N, *spatial)`` (class indices on the preprocessed grid) becomes a
    :class:`~revnets.inference.label_volumes.LabelVolumes` ``(*input_spatial, N)`` of ``uint8`` label values
    (``labels[index]``), nearest-neighbour inverted through ``transform``: each map is made when it is
    written, so memory does not grow with the number of samples times the input's size.

    Nearest-neighbour inversion picks, for every input voxel, one voxel of the grid (or none, outside it)
    whatever the values, so the inversion runs once, on a map of voxel numbers, and each sample is then a
    look-up of its values at those voxels: the same labels as inverting every sample, without resampling
    the input's grid once per sample.

    Args:
        keys: the sample keys.
        transform: the invertible preprocessing.
        orig_keys: the key whose applied operations are inverted (``"image"``).
        labels: the label value of each class index (default: the index).
    """

    def __init__(
        self,
        keys: str | Sequence[str],
        transform: InvertibleTransform,
        orig_keys: str = "image",
        labels: Sequence[int] | None = None,
    ) -> None:
        super().__init__(keys)
        self.orig_keys = orig_keys
        self.labels = None if labels is None else np.asarray(labels, dtype=np.uint8)
        self.inverter = {
            key: Invertd(keys=key, transform=transform, orig_keys=orig_keys, nearest_interp=True) for key in self.keys
        }

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            samples = torch.as_tensor(d[key])
            if samples.shape[0] == 0:
                raise ValueError(f"{key} holds no samples.")
            source = self._source_voxels(key, samples.shape[1:], d[self.orig_keys])
            classes = samples.reshape(samples.shape[0], -1).to(torch.uint8).cpu().numpy()
            d[key] = LabelVolumes(classes, source, self.labels)
        return d

    def _source_voxels(self, key: Hashable, grid: Sequence[int], image: object) -> np.ndarray:
        """For every input voxel, 1 + the flat index of the grid voxel nearest-neighbour inversion takes its
        value from, or 0 where it takes none (outside the grid, where a sample's class is 0): ``int64``
        ``(*reversed input spatial)``.

        The inverted map holds each voxel's coordinates, one channel per axis counted from 1, which float32
        keeps exact on any grid (a single channel of flat indices would not beyond 2**24 voxels).
        """
        axes = [torch.arange(1, size + 1, dtype=torch.float32) for size in grid]
        coordinates = torch.stack(torch.meshgrid(*axes, indexing="ij"))
        restored = torch.as_tensor(self.inverter[key]({key: MetaTensor(coordinates), self.orig_keys: image})[key])
        voxels = torch.ones(restored.shape[1:], dtype=torch.int64)
        inside = torch.ones(restored.shape[1:], dtype=torch.bool)
        stride = 1
        for axis in reversed(range(len(grid))):
            coordinate = restored[axis].round().to(torch.int64)
            inside &= coordinate > 0
            voxels += (coordinate - 1) * stride
            stride *= grid[axis]
        return np.ascontiguousarray(torch.where(inside, voxels, 0).numpy().T)


class ConsensusLabelsd(MapTransform):
    """The consensus label map: the class of highest mean probability, as its label value.

    ``data[keys]`` ``(C, *spatial)`` mean probabilities -> ``data[output_key]`` ``(*spatial)`` ``uint8``.

    Args:
        keys: the mean-probability key.
        labels: the label value of each class (default: the index).
        output_key: where the consensus goes.
    """

    def __init__(self, keys: str, labels: Sequence[int] | None = None, output_key: str = "seg") -> None:
        super().__init__(keys)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.uint8)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            classes = class_argmax(torch.as_tensor(d[key]), 0).cpu().numpy()
            d[self.output_key] = (classes if self.labels is None else self.labels[classes]).astype(np.uint8)
        return d


class WriteOutputsd(Transform):
    """Writes each scan's outputs into ``output_dir`` as one :class:`~revnets.files.OutputUnit`.

    For the data dict of a scan (key ``scan`` names it) every name in ``outputs`` is written as
    ``<output_dir>/<stem>_<name>.nii.gz`` with the input's affine and header: the files appear together or
    not at all, never replace an input file (every file of a BraTS case folder counts), and never replace
    an existing file unless ``overwrite``. :meth:`check` refuses, before any work, what would fail later.
    The files are compressed in parallel threads (zlib releases the GIL), one per core at most.

    Args:
        scans: the scans of the run.
        output_dir: the output folder (made if missing).
        outputs: names from :data:`OUTPUTS` and :data:`OPTIONAL_OUTPUTS`.
        overwrite: replace existing outputs.

    Attributes:
        written: the final files of each scan written so far, by output name.
    """

    def __init__(
        self, scans: Sequence[Scan], output_dir: str | Path, outputs: Sequence[str] = OUTPUTS, overwrite: bool = False
    ) -> None:
        unknown = sorted(set(outputs) - set(OUTPUTS + OPTIONAL_OUTPUTS))
        if unknown or not outputs:
            raise InputError(f"unknown outputs {unknown}: choose among {list(OUTPUTS + OPTIONAL_OUTPUTS)}.")
        if output_dir is None or not str(output_dir).strip():
            raise InputError("the output folder is not set.")
        self.outputs = tuple(dict.fromkeys(outputs))
        self.scans = {str(scan.path): scan for scan in scans}
        protected = [file for scan in scans for file in scan.input_files]
        folder = Path(output_dir)
        self.units = {
            key: OutputUnit(
                {name: folder / f"{scan.stem}_{name}.nii.gz" for name in self.outputs},
                protected=protected,
                overwrite=overwrite,
            )
            for key, scan in self.scans.items()
        }
        self.written: list[dict[str, Path]] = []

    def check(self) -> None:
        """Refuse two scans writing the same file, and targets that exist, are inputs or cannot be written.

        Raises:
            revnets.files.OutputError: naming the file.
        """
        refuse_shared_targets(self.units)
        for unit in self.units.values():
            unit.check()

    def __call__(self, data: Mapping[Hashable, object]) -> Mapping[Hashable, object]:
        key = str(data["scan"])
        scan, unit = self.scans[key], self.units[key]
        with unit, ThreadPoolExecutor(min(len(self.outputs), os.cpu_count() or 1)) as pool:
            writes = [
                pool.submit(write_nifti, _output_array(data[name]), scan.reference, unit.path(name))
                for name in self.outputs
            ]
            for write in writes:
                write.result()
        self.written.append(dict(unit.targets))
        return data


def _output_array(value: object) -> np.ndarray | LabelVolumes:
    """An output in the layout NIfTI stores: maps ``(1, *spatial)`` -> ``(*spatial)``, probabilities
    ``(C, *spatial)`` -> ``(*spatial, C)``; label maps (already ``uint8``, or made when written) unchanged."""
    if isinstance(value, LabelVolumes) or (isinstance(value, np.ndarray) and value.dtype == np.uint8):
        return value
    array = torch.as_tensor(value).detach().cpu().float().numpy()
    return array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
