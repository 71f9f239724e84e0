"""Medical Segmentation Decathlon task folders (``TaskXX_Name/dataset.json``, ``imagesTr/``, ``labelsTr/``)."""

from __future__ import annotations

from pathlib import Path

from monai.data import load_decathlon_datalist

from revnets.data.errors import DataError
from revnets.files import NIFTI_SUFFIX


def decathlon_datalist(root: str | Path, section: str = "training") -> list[dict]:
    """One section of a Decathlon task's ``dataset.json`` as MONAI data dicts, through MONAI's reader.

    Nothing is downloaded: ``root`` is a task folder already on disk (as MONAI's ``DecathlonDataset``
    unpacks it). Paths in ``dataset.json`` are relative to ``root``.

    Args:
        root: the task folder, holding ``dataset.json``.
        section: ``"training"``, ``"validation"`` or ``"test"`` (a list of image paths).

    Returns:
        ``[{"image": path, "label": path, "case": name}, ...]`` (``label`` only where the section has one;
        ``case`` is the image's file name without ``.nii(.gz)``), in the order of ``dataset.json``.

    Raises:
        DataError: no ``dataset.json``, not valid JSON, no such section or an empty one, an entry without
            an image, or a file it lists does not exist.
    """
    root = Path(root)
    index = root / "dataset.json"
    if not index.is_file():
        raise DataError(f"{root} has no dataset.json: expected a Medical Segmentation Decathlon task folder.")
    try:
        items = load_decathlon_datalist(index, is_segmentation=True, data_list_key=section, base_dir=root)
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OSError) as error:
        raise DataError(f"{index} cannot be read as a Decathlon datalist ({error}).") from error
    if not items:
        raise DataError(f"{index} lists no cases under {section!r}.")
    for item in items:
        if "image" not in item:
            raise DataError(f"{index} has an entry under {section!r} without an 'image': {item}.")
        for key in ("image", "label"):
            paths = item.get(key, [])
            for path in [paths] if isinstance(paths, str) else paths:
                if not Path(path).is_file():
                    raise DataError(f"{index} lists {path}, which does not exist.")
        first = item["image"] if isinstance(item["image"], str) else item["image"][0]
        item.setdefault("case", NIFTI_SUFFIX.sub("", Path(first).name))
    return items
