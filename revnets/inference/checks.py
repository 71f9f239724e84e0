"""Checks on loaded voxels, as a MONAI dictionary transform placed right after the loader in a preprocessing chain."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from monai.transforms import MapTransform

from revnets.errors import InputError


class CheckImaged(MapTransform):
    """Refuses images that cannot be segmented: NaN or infinite voxels, or one value everywhere (nothing to
    find, and an empty foreground crop).

    Raises:
        InputError: naming the file (from the image's ``filename_or_obj`` metadata).
    """

    def __init__(self, keys: str | Sequence[str]) -> None:
        super().__init__(keys)

    def __call__(self, data: Mapping[Hashable, object]) -> dict[Hashable, object]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = torch.as_tensor(d[key])
            name = _file_name(d[key])
            if not torch.isfinite(image).all():
                raise InputError(f"{name} contains NaN or infinite voxels.")
            if image.numel() == 0 or bool((image == image.flatten()[0]).all()):
                raise InputError(f"{name} has the same value in every voxel: there is nothing to segment.")
        return d


def _file_name(image: object) -> str:
    meta = getattr(image, "meta", {}) or {}
    name = meta.get("filename_or_obj", "the image")
    return ", ".join(map(str, name)) if isinstance(name, (list, tuple)) else str(name)
