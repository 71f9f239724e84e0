"""Multi-rater data: several annotations of one image.

Two layouts:

- the generic folder: one subfolder per case with ``image.nii.gz`` and ``label_rater{k}.nii.gz``
  (k = 0, 1, ...), as :func:`revnets.data.write_multirater_set` writes it;
- LIDC-IDRI lung-nodule crops as prepared for PHiSeg and the Probabilistic U-Net: ``data_lidc.pickle``
  (Stefan Knegt's Probabilistic-Unet-Pytorch), a dict keyed by slice id whose entries are
  ``{"image": (H, W) float in [0, 1], "masks": [4 x (H, W) binary], "series_uid": str}``, 128 x 128 crops.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import torch
from monai.data import Dataset
from monai.transforms import Transform

from revnets.data.errors import DataError
from revnets.data.validation import case_folders, nifti_file

_RATER = re.compile(r"^label_rater(\d+)\.nii(\.gz)?$")


def _rater_files(folder: Path) -> list[str]:
    """``label_rater{k}.nii.gz`` (or ``.nii``) files of a case folder, by rater number k."""
    raters: dict[int, Path] = {}
    for path in sorted(folder.iterdir(), key=lambda p: not p.name.endswith(".gz")):  # .nii.gz before .nii
        match = _RATER.match(path.name)
        if match and path.is_file():
            raters.setdefault(int(match.group(1)), path)
    return [str(raters[k]) for k in sorted(raters)]


def multirater_datalist(root: str | Path) -> list[dict]:
    """The cases of a generic multi-rater folder as MONAI data dicts, sorted by case name.

    Load them with ``LoadAlignedImaged(keys=("image", "label"))``, which stacks the raters as channels
    ``(R, *spatial)`` and checks that each rater's shape and affine match the image.

    Args:
        root: the dataset folder, one subfolder per case.

    Returns:
        ``[{"image": path, "label": [rater paths, by rater number], "case": name}, ...]``.

    Raises:
        DataError: ``root`` is missing or has no case folders, or a case has no image or no label files.
    """
    items = []
    for folder in case_folders(root, "multi-rater"):
        image = nifti_file(folder, "image")
        if image is None:
            raise DataError(f"multi-rater case {folder} has no image.nii.gz (or .nii).")
        labels = _rater_files(folder)
        if not labels:
            raise DataError(f"multi-rater case {folder} has no label_rater<k>.nii.gz files.")
        items.append({"image": str(image), "label": labels, "case": folder.name})
    return items


# Pickle runs code while loading (any importable callable can be named in the stream). Only these
# globals may be resolved: numpy's array and scalar reconstructors (numpy >= 2 and the numpy.core path that
# older pickles name) and the bytes decoder of protocol-2 pickles. Dicts, lists, strings and numbers need
# no globals at all.
_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds containers and numpy arrays only, and refuses every other global."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}; only numpy arrays are allowed")
        return super().find_class(module, name)


def _check_slice(path: Path, key: object, entry: object) -> None:
    where = f"{path} entry {key!r}"
    if not isinstance(entry, dict) or not {"image", "masks", "series_uid"} <= entry.keys():
        raise DataError(f"{where} is not a dict with 'image', 'masks' and 'series_uid' (data_lidc.pickle layout).")
    image, masks = entry["image"], entry["masks"]
    if not isinstance(image, np.ndarray) or image.ndim != 2 or not np.issubdtype(image.dtype, np.number):
        raise DataError(f"{where}: 'image' must be a 2D numeric array, got {type(image).__name__}.")
    if not isinstance(masks, list | tuple | np.ndarray) or len(masks) == 0:
        raise DataError(f"{where}: 'masks' must be a non-empty list of annotator masks.")
    for mask in masks:
        if not isinstance(mask, np.ndarray) or mask.shape != image.shape:
            raise DataError(f"{where}: every mask must be an array of the image's shape {image.shape}.")
        if not np.isin(mask, (0, 1)).all():
            raise DataError(f"{where}: masks must be binary (0/1), found values {np.unique(mask)[:5].tolist()}.")


def load_lidc_pickle(path: str | Path) -> dict:
    """Read a ``data_lidc.pickle`` (PHiSeg / Probabilistic U-Net preparation of LIDC-IDRI) and check its layout.

    Pickle can run arbitrary code while loading, so this does not use ``pickle.load``: a restricted
    unpickler resolves only numpy arrays, dtypes and scalars (``find_class`` allow-list); a file that
    names any other function or class is refused with :class:`DataError` before anything runs.

    Returns:
        The dict as stored: ``{slice_id: {"image": (H, W) array, "masks": [R x (H, W) binary arrays],
        "series_uid": str}}``.

    Raises:
        DataError: missing file, not a pickle (or truncated), a forbidden global, or not this layout
            (every entry needs 'image', 'masks' and 'series_uid'; masks binary and of the image's shape;
            the same number of masks throughout).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    try:
        with path.open("rb") as stream:
            data = _ArrayUnpickler(stream, encoding="latin1").load()
    except Exception as error:  # a damaged or foreign file can fail in many ways
        raise DataError(f"{path} is not a readable LIDC pickle ({str(error) or type(error).__name__}).") from error
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path} holds {type(data).__name__}, not a non-empty dict of slices (data_lidc.pickle).")
    for key, entry in data.items():
        _check_slice(path, key, entry)
    counts = {len(entry["masks"]) for entry in data.values()}
    if len(counts) > 1:
        raise DataError(f"{path}: entries have different numbers of annotator masks {sorted(counts)}.")
    return data


class LIDCDataset(Dataset):
    """LIDC-IDRI crops with their annotators' masks, from a ``data_lidc.pickle`` (see :func:`load_lidc_pickle`).

    Items, sorted by slice id, are ``{"image": (1, H, W) float32, "label": (R, H, W) uint8, "case": slice id,
    "series_uid": str}`` tensors (R = 4 annotators in LIDC), before ``transform``. Intensities are kept as
    stored (in [0, 1]); split training and test by ``series_uid`` (one scan), not by slice, as PHiSeg does.

    Args:
        path: the pickle file.
        transform: MONAI transform(s) applied to each item, e.g. ``revnets.training.PickAnnotatord``.
    """

    def __init__(self, path: str | Path, transform: Transform | None = None) -> None:
        slices = load_lidc_pickle(path)
        items = [
            {
                "image": torch.from_numpy(np.asarray(entry["image"], dtype=np.float32)[None].copy()),
                "label": torch.from_numpy(np.stack([np.asarray(m, dtype=np.uint8) for m in entry["masks"]])),
                "case": str(key),
                "series_uid": str(entry["series_uid"]),
            }
            for key, entry in sorted(slices.items(), key=lambda item: str(item[0]))
        ]
        super().__init__(items, transform)
