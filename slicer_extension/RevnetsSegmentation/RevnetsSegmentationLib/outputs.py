"""The five files ``revnets predict`` writes for one scan: collected, checked, split into samples, exported.

nibabel is imported where it is used: Slicer imports this module before the Slicer module has had the
chance to install nibabel into Slicer's Python.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The names of ``revnets.inference.OUTPUTS``, repeated because this module runs in Slicer's Python,
# which need not have revnets (the command may run in another Python).
OUTPUTS = ("seg", "samples", "entropy", "mutual_info", "variance")
MAPS = {"entropy": "Predictive entropy", "mutual_info": "Mutual information", "variance": "Variance"}
_OUTPUT_FILE = re.compile(rf"^(?P<stem>.+)_(?P<name>{'|'.join(OUTPUTS)})\.nii\.gz$")


class OutputError(ValueError):
    """The command ended without writing a complete, consistent set of outputs."""


@dataclass(frozen=True)
class PredictionOutputs:
    """The outputs of one scan.

    Attributes:
        stem: the scan's name; files are ``<stem>_<name>.nii.gz``.
        files: path by output name (``seg``, ``samples``, ``entropy``, ``mutual_info``, ``variance``).
        num_samples: how many sample label maps ``samples`` holds.
    """

    stem: str
    files: dict[str, Path]
    num_samples: int

    @classmethod
    def collect(cls, written: Sequence[Path], scan: Path, num_samples: int) -> PredictionOutputs:
        """Check the files the command reported (``wrote <path>`` lines) against the scan it was given.

        All five must be there for one stem, readable, with the scan's voxel grid; ``samples`` must be
        4D with ``num_samples`` label maps.

        Raises:
            OutputError: one sentence naming the missing or inconsistent file.
        """
        import nibabel as nib

        files: dict[str, Path] = {}
        stems = set()
        for path in written:
            match = _OUTPUT_FILE.match(Path(path).name)
            if match:
                files[match["name"]] = Path(path)
                stems.add(match["stem"])
        missing = [name for name in OUTPUTS if name not in files or not files[name].is_file()]
        if missing or len(stems) != 1:
            raise OutputError(f"revnets predict did not write the outputs {', '.join(missing) or 'of one scan'}.")
        reference = nib.load(scan)
        shape, affine = reference.shape[:3], reference.affine
        for name, path in files.items():
            try:
                image = nib.load(path)
            except Exception as error:  # nibabel raises many types for damaged files
                raise OutputError(f"{path} is not a readable NIfTI image ({type(error).__name__}).") from error
            expected = (*shape, num_samples) if name == "samples" else shape
            if image.shape != expected:
                raise OutputError(f"{path} has shape {image.shape}, expected {expected}.")
            if not np.allclose(image.affine, affine, atol=1e-4):
                raise OutputError(f"{path} is not in the space of the scan {scan.name}.")
        return cls(stem=stems.pop(), files={name: files[name] for name in OUTPUTS}, num_samples=num_samples)

    def split_samples(self, folder: Path) -> list[Path]:
        """Write each sample as its own 3D label map ``<stem>_sample<k>.nii.gz`` (k from 1) into ``folder``."""
        import nibabel as nib

        folder.mkdir(parents=True, exist_ok=True)
        image = nib.load(self.files["samples"])
        samples = np.asanyarray(image.dataobj)
        paths = []
        for k in range(self.num_samples):
            path = folder / f"{self.stem}_sample{k + 1}.nii.gz"
            nib.save(nib.Nifti1Image(samples[..., k], image.affine), path)
            paths.append(path)
        return paths

    def export(self, folder: Path, overwrite: bool = False) -> list[Path]:
        """Copy the five NIfTI files into ``folder`` (created if missing); return the copies.

        Raises:
            OutputError: a file of that name exists in ``folder`` and ``overwrite`` is False.
        """
        folder = Path(folder)
        targets = [folder / path.name for path in self.files.values()]
        existing = [target.name for target in targets if target.exists()]
        if existing and not overwrite:
            raise OutputError(f"{folder} already holds {', '.join(existing)}.")
        folder.mkdir(parents=True, exist_ok=True)
        for source, target in zip(self.files.values(), targets):
            shutil.copyfile(source, target)
        return targets
