"""The temporary folder of one run: the scan as Slicer wrote it, and what ``revnets predict`` writes back.

nibabel is imported where it is used, as in ``outputs``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from RevnetsSegmentationLib.geometry import GeometryMismatch, VolumeGeometry, check_matching_geometry


def safe_stem(name: str) -> str:
    """A file-name stem from a node name: letters, digits, ``-`` and ``_`` only (``"MR Head"`` -> ``"MR_Head"``)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "scan"


class Workspace:
    """A fresh temporary folder, ``input/`` for the scan and ``output/`` for the results; :meth:`remove` deletes it.

    Args:
        parent: where to create it (default: the system's temporary folder).
    """

    def __init__(self, parent: Path | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="revnets-slicer-", dir=parent))
        self.input_dir = self.root / "input"
        self.output_dir = self.root / "output"
        self.input_dir.mkdir()

    def channel_paths(self, stem: str, count: int) -> list[Path]:
        """Where to write the ``count`` channels of the scan ``stem``: the scan file itself for one channel,
        else files in ``input/channels/`` (created) to be joined by :meth:`stack_channels`."""
        if count == 1:
            return [self.scan_path(stem)]
        folder = self.input_dir / "channels"
        folder.mkdir(exist_ok=True)
        return [folder / f"{stem}_channel{k}.nii.gz" for k in range(count)]

    def scan_path(self, stem: str) -> Path:
        """The file given to ``revnets predict``; outputs are named ``<stem>_seg.nii.gz`` and so on."""
        return self.input_dir / f"{stem}.nii.gz"

    def stack_channels(self, stem: str, count: int) -> Path:
        """Stack the channel files written to :meth:`channel_paths` into the 4D scan (channels last) that
        ``revnets predict`` takes, and delete them.

        Raises:
            GeometryMismatch: the channels are not 3D volumes on one voxel grid.
        """
        import nibabel as nib

        if count < 2:
            raise ValueError(f"stacking needs at least two channels, got {count}.")
        channels = self.channel_paths(stem, count)
        images = [nib.load(path) for path in channels]
        if any(image.ndim != 3 for image in images):
            raise GeometryMismatch(f"the channels of {stem} must be 3D volumes.")
        check_matching_geometry(
            [(path.name, VolumeGeometry.from_affine(img.shape, img.affine)) for path, img in zip(channels, images)]
        )
        arrays = [np.asanyarray(image.dataobj) for image in images]
        stacked = np.stack(arrays, axis=-1)
        path = self.scan_path(stem)
        nib.save(nib.Nifti1Image(stacked, images[0].affine), path)
        shutil.rmtree(channels[0].parent)
        return path

    def remove(self) -> None:
        """Delete the folder and everything in it."""
        shutil.rmtree(self.root, ignore_errors=True)
