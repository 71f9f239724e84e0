"""Checked loading shared by the dataset layouts: folders of cases, images on one grid, label values.

Every failure is a :class:`~revnets.data.errors.DataError` whose one-line message names the file or folder.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import LoadImage, MapTransform

from revnets.data.errors import DataError
from revnets.files import AFFINE_TOLERANCE


def case_folders(root: str | Path, layout: str) -> list[Path]:
    """The case folders (one per case, sorted by name) of a dataset ``root``; files and hidden folders are skipped.

    Args:
        root: the dataset folder.
        layout: the layout's name, for the error message (e.g. ``"BraTS"``).

    Raises:
        DataError: ``root`` is missing, not a folder, or has no case folders.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such {layout} dataset folder.")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no case folders: a {layout} dataset has one subfolder per case.")
    return folders


def nifti_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.nii.gz``, else ``folder/stem.nii``, else None."""
    for suffix in (".nii.gz", ".nii"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _files(value: str | Path | Sequence[str | Path]) -> list[str]:
    return [str(value)] if isinstance(value, str | Path) else [str(v) for v in value]


class LoadAlignedImaged(MapTransform):
    """Load images that must lie on one grid, channel first, with errors that name the file.

    Each key holds one file or a list of files; a list is stacked as channels, in order (as MONAI's
    ``LoadImaged`` + ``EnsureChannelFirstd`` do). Files are read one at a time by MONAI's ``LoadImage`` so
    that an unreadable, truncated or non-image file, or one whose spatial shape or affine differs from the
    first file of the first key, is reported by name.

    Args:
        keys: keys of file paths; the first key's first file is the reference grid.
        reader: MONAI image reader (name or instance); None lets MONAI choose by file suffix.
        atol: largest difference between affine entries still counted as the same grid.
        allow_missing_keys: skip keys that are missing (e.g. ``label`` in an unlabelled case).

    Returns:
        The data with each key replaced by a ``MetaTensor`` ``(C, *spatial)`` float32 (C = number of
        files, or the channels of a single 4D file); metadata and affine come from the key's first file.
    """

    def __init__(
        self,
        keys: KeysCollection,
        reader: str | object | None = None,
        atol: float = AFFINE_TOLERANCE,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadImage(reader=reader, image_only=True, ensure_channel_first=True)
        self.atol = atol

    def _load(self, path: str) -> MetaTensor:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file.")
        try:
            return self.loader(path)
        except Exception as error:  # readers raise many types for damaged or foreign files
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise DataError(f"{path} is not a readable image ({reason}).") from error

    def _check_grid(self, path: str, image: MetaTensor, reference: tuple[str, MetaTensor]) -> None:
        ref_path, ref = reference
        if image.shape[1:] != ref.shape[1:]:
            raise DataError(
                f"{path} has spatial shape {tuple(image.shape[1:])}, but {ref_path} has {tuple(ref.shape[1:])}."
            )
        if not np.allclose(image.affine.numpy(), ref.affine.numpy(), atol=self.atol):
            raise DataError(f"{path} has a different affine (voxel-to-world matrix) from {ref_path}.")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        reference = None
        for key in self.key_iterator(d):
            channels: list[MetaTensor] = []
            for path in _files(d[key]):
                image = self._load(path)
                reference = reference or (path, image)
                self._check_grid(path, image, reference)
                channels.append(image)
            if not channels:
                raise DataError(f"{key}: an empty list of files.")
            stacked = cast(MetaTensor, torch.cat(list[torch.Tensor](channels))) if len(channels) > 1 else channels[0]
            if len(channels) > 1:
                stacked.meta["original_channel_dim"] = 0  # channels already first, as LoadImage marks a stack
            d[key] = stacked
        return d


class CheckLabelValuesd(MapTransform):
    """Check that loaded label maps hold only the expected values; the error names the file and the values.

    Args:
        keys: keys of loaded label maps (``MetaTensor`` from :class:`LoadAlignedImaged` or ``LoadImaged``).
        allowed: the values a label may take, e.g. ``(0, 1, 2, 4)`` for BraTS.
        allow_missing_keys: skip keys that are missing.
    """

    def __init__(self, keys: KeysCollection, allowed: Collection[int], allow_missing_keys: bool = False) -> None:
        super().__init__(keys, allow_missing_keys)
        self.allowed = sorted(allowed)

    def __call__(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            values = torch.unique(_plain(d[key]))
            bad = values[~torch.isin(values, torch.tensor(self.allowed, dtype=values.dtype))]
            if len(bad):
                source = self._source(d[key], key, bad)
                raise DataError(f"{source} has label values {_shown(bad)} outside the expected {set(self.allowed)}.")
        return d

    @staticmethod
    def _source(label: torch.Tensor, key: Hashable, bad: torch.Tensor) -> str:
        """The file a label came from; for a label stacked from several files, the channel at fault."""
        source = str(getattr(label, "meta", {}).get("filename_or_obj", key))
        if label.shape[0] > 1:
            channel = int(torch.isin(_plain(label), bad).flatten(1).any(1).nonzero()[0])
            source = f"channel {channel} of the label stacked from {source}"
        return source


def _plain(array: object) -> torch.Tensor:
    return torch.as_tensor(array).as_subclass(torch.Tensor)


def _shown(values: torch.Tensor, limit: int = 10) -> str:
    listed = ", ".join(f"{v:g}" for v in values[:limit].tolist())
    return "{" + listed + (", ..." if len(values) > limit else "") + "}"
