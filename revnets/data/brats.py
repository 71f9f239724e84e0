"""BraTS 2020/2021 folders: one subfolder per case with ``<case>_t1``, ``_t1ce``, ``_t2``, ``_flair``, ``_seg``.

Labels follow the BraTS convention: 0 background, 1 necrotic / non-enhancing core, 2 edema, 4 enhancing
tumour. Training uses the nested regions tumour core (TC = 1, 4), whole tumour (WT = 1, 2, 4) and enhancing
tumour (ET = 4), in that channel order (MONAI's ``ConvertToMultiChannelBasedOnBratsClasses``, which
:func:`revnets.inference.regions.nested_regions_to_classes` inverts).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

from monai.config import KeysCollection
from monai.transforms import ConvertToMultiChannelBasedOnBratsClassesd, MapTransform

from revnets.data.errors import DataError
from revnets.data.validation import CheckLabelValuesd, LoadAlignedImaged, case_folders, nifti_file

MODALITIES = ("t1", "t1ce", "t2", "flair")
"""The BraTS modalities in channel order, as named in the case files ``<case>_<modality>.nii.gz``."""


def brats_case_files(folder: str | Path) -> tuple[tuple[Path, ...], Path | None]:
    """The modality files (T1, T1ce, T2, FLAIR, in that order) and the label file (or None) of a case folder.

    Files are ``<folder>/<case>_<modality>.nii.gz`` (or ``.nii``) with ``<case>`` the folder's name.

    Raises:
        DataError: a modality file is missing.
    """
    folder = Path(folder)
    images = []
    for modality in MODALITIES:
        found = nifti_file(folder, f"{folder.name}_{modality}")
        if found is None:
            raise DataError(f"BraTS case {folder} has no {folder.name}_{modality}.nii.gz (or .nii).")
        images.append(found)
    return tuple(images), nifti_file(folder, f"{folder.name}_seg")


def brats_datalist(root: str | Path, require_labels: bool = False) -> list[dict]:
    """The cases of a BraTS folder as MONAI data dicts, sorted by case name.

    Args:
        root: the dataset folder, one subfolder per case (other files, such as BraTS 2020's CSVs, are skipped).
        require_labels: raise if a case has no ``<case>_seg`` file, instead of leaving ``label`` out.

    Returns:
        ``[{"image": [t1, t1ce, t2, flair], "label": seg, "case": name}, ...]`` with paths as strings;
        ``label`` is absent for an unlabelled case. Load them with :class:`BratsLoadd`.

    Raises:
        DataError: ``root`` is missing or has no case folders, a case lacks a modality, or (with
            ``require_labels``) a label.
    """
    items = []
    for folder in case_folders(root, "BraTS"):
        images, label = brats_case_files(folder)
        item = {"image": [str(p) for p in images], "case": folder.name}
        if label is not None:
            item["label"] = str(label)
        elif require_labels:
            raise DataError(f"BraTS case {folder} has no {folder.name}_seg.nii.gz (or .nii).")
        items.append(item)
    return items


class BratsLoadd(MapTransform):
    """Load a BraTS case: 4 modalities as channels, checked, and the label as nested regions TC / WT / ET.

    The modalities and the label must share one grid (shape and affine) and the label may hold only
    0, 1, 2 and ``et_label``; unreadable or truncated files, grids that disagree and stray label values
    raise :class:`DataError` naming the file (see :class:`LoadAlignedImaged`, :class:`CheckLabelValuesd`).

    Args:
        keys: the keys to load: the image (a list of modality files) and, optionally, the label.
        label_key: which of ``keys`` is the BraTS label map.
        et_label: the enhancing-tumour label: 4 for BraTS 2018-2022, 3 for BraTS 2023.
        reader: MONAI image reader; None chooses by suffix.
        allow_missing_keys: skip missing keys, e.g. to load labelled and unlabelled cases alike.

    Returns:
        The data with ``image`` a ``MetaTensor`` ``(4, X, Y, Z)`` float32 and ``label`` a ``MetaTensor``
        ``(3, X, Y, Z)`` bool of TC, WT, ET.
    """

    def __init__(
        self,
        keys: KeysCollection = ("image", "label"),
        label_key: str = "label",
        et_label: int = 4,
        reader: str | object | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        labels = [label_key] if label_key in self.keys else []
        self.load = LoadAlignedImaged(self.keys, reader=reader, allow_missing_keys=allow_missing_keys)
        self.check = CheckLabelValuesd(labels, allowed=(0, 1, 2, et_label), allow_missing_keys=True)
        self.regions = ConvertToMultiChannelBasedOnBratsClassesd(labels, et_label=et_label, allow_missing_keys=True)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        return dict(self.regions(self.check(self.load(data))))
