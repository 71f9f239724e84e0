"""The bundles the module offers: folders with ``configs/inference.json``, described by their metadata.

Nothing is hard-coded per bundle: the input channels come from
``network_data_format.inputs.image`` (``num_channels``, ``channel_def``) and the output label names from
``label_classes`` (``"0 background, 1 grey matter, 2 white matter"``) in ``configs/metadata.json``. A
``labels`` block there gives each label its colour and its standard terminology (SNOMED CT category and
type, as DICOM and Slicer's segment terminology use them)::

    "labels": {"1": {"name": "grey matter", "color": [200, 200, 235],
                     "terminology": {"category": ["SCT", "123037004", "Anatomical Structure"],
                                     "type": ["SCT", "389081007", "Gray matter"]}}}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# "<value> <name>" where the name starts with a letter and ends before , ; ( ) or the end; a number
# inside a word ("T1") or in parentheses ("TC (1, 4)") is no label.
_LABEL_ENTRY = re.compile(r"(?<![\w(.])(\d+)\s*[:=-]?\s+([A-Za-z][^,;()]*?)\s*(?=[,;()]|$)")
# Colours of labels whose metadata gives none, by label order (background excluded), readable on MRI and CT.
FALLBACK_COLORS = (
    (0.35, 0.75, 0.95), (0.95, 0.85, 0.35), (0.90, 0.35, 0.35), (0.55, 0.85, 0.45), (0.75, 0.50, 0.90),
    (0.95, 0.60, 0.25),
)
Code = tuple[str, str, str]  # (coding scheme, code value, code meaning), e.g. ("SCT", "389081007", "Gray matter")


class BundleError(ValueError):
    """A folder is not a usable bundle; the message names the folder and the missing piece."""


@dataclass(frozen=True)
class LabelStyle:
    """How one output label is shown: name, colour (RGB in 0-1) and standard terminology, if known."""

    name: str
    color: tuple[float, float, float]
    category: Code | None = None
    type: Code | None = None


@dataclass(frozen=True)
class Bundle:
    """What the module needs to know about a bundle to offer it.

    Attributes:
        path: the bundle folder.
        name: the folder name.
        task: the metadata's ``task``.
        channels: names of the input channels in order (``("T1",)``, or four for BraTS).
        labels: output label value -> name, as written in the consensus and sample files.
        num_samples: the bundle's default number of samples, if it states one.
        styles: label value -> :class:`LabelStyle` for every non-zero label.
    """

    path: Path
    name: str
    task: str
    channels: tuple[str, ...]
    labels: dict[int, str] = field(default_factory=dict)
    num_samples: int | None = None
    styles: dict[int, LabelStyle] = field(default_factory=dict)


def read_bundle(folder: Path) -> Bundle:
    """Describe the bundle in ``folder``.

    Raises:
        BundleError: no ``configs/inference.json``, or a missing or unreadable ``configs/metadata.json``
            without ``network_data_format.inputs.image.num_channels``.
    """
    folder = Path(folder)
    inference = _json(folder / "configs" / "inference.json", folder)
    metadata = _json(folder / "configs" / "metadata.json", folder)
    try:
        image = metadata["network_data_format"]["inputs"]["image"]
        num_channels = int(image["num_channels"])
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(
            f"{folder}: configs/metadata.json has no network_data_format.inputs.image.num_channels."
        ) from error
    names = image.get("channel_def") or {}
    channels = tuple(str(names.get(str(k), f"channel {k}")) for k in range(num_channels))
    samples = inference.get("num_samples")
    blocks = metadata.get("labels") if isinstance(metadata.get("labels"), dict) else {}
    labels = parse_labels(str(metadata.get("label_classes", "")))
    labels.update({int(value): str(block["name"]) for value, block in blocks.items() if "name" in block})
    return Bundle(
        path=folder,
        name=folder.name,
        task=str(metadata.get("task", "")),
        channels=channels,
        labels=labels,
        num_samples=samples if isinstance(samples, int) and samples > 0 else None,
        styles=label_styles(labels, blocks, folder),
    )


def label_styles(labels: dict[int, str], blocks: dict, folder: Path) -> dict[int, LabelStyle]:
    """A :class:`LabelStyle` per non-zero label: colour and terminology from the metadata's ``labels``
    block where it gives them, else a colour from :data:`FALLBACK_COLORS` and no terminology.

    Raises:
        BundleError: a ``labels`` entry with a colour that is not three numbers in 0-255, or a code that
            is not ``[scheme, value, meaning]``.
    """
    styles = {}
    for position, value in enumerate(sorted(v for v in labels if v != 0)):
        block = blocks.get(str(value), {})
        color = block.get("color")
        terminology = block.get("terminology", {})
        try:
            if color is not None:
                if len(color) != 3 or not all(0 <= float(c) <= 255 for c in color):
                    raise ValueError(color)
                color = tuple(float(c) / 255 for c in color)
            codes = {key: _code(terminology[key]) for key in ("category", "type") if key in terminology}
        except (TypeError, ValueError) as error:
            raise BundleError(f"{folder}: configs/metadata.json labels.{value} is malformed ({error}).") from error
        styles[value] = LabelStyle(
            name=labels[value], color=color or FALLBACK_COLORS[position % len(FALLBACK_COLORS)], **codes
        )
    return styles


def _code(entry) -> Code:
    if not isinstance(entry, (list, tuple)) or len(entry) != 3 or not all(isinstance(e, str) and e for e in entry):
        raise ValueError(f"expected [scheme, value, meaning], got {entry!r}")
    return tuple(entry)


def find_bundles(root: Path) -> list[Bundle]:
    """Every readable bundle in the sub-folders of ``root`` (``root/*/configs/inference.json``), by name."""
    bundles = []
    for config in sorted(Path(root).glob("*/configs/inference.json")):
        try:
            bundles.append(read_bundle(config.parent.parent))
        except BundleError:
            continue
    return bundles


def parse_labels(text: str) -> dict[int, str]:
    """``"0 background, 1 grey matter, 2 white matter"`` -> ``{0: "background", 1: "grey matter", 2: ...}``.

    Entries are ``<value> <name>`` separated by commas or semicolons; other text around them (``"BraTS
    labels: ..."``, ``"; trained as the regions TC (1, 4)"``) is skipped.
    """
    return {int(match.group(1)): match.group(2) for match in _LABEL_ENTRY.finditer(text)}


def _json(path: Path, folder: Path) -> dict:
    if not path.is_file():
        raise BundleError(f"{folder} is not a bundle folder: {path.relative_to(folder)} is missing.")
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{path} could not be read as JSON ({type(error).__name__}).") from error
    if not isinstance(content, dict):
        raise BundleError(f"{path} does not hold a JSON object.")
    return content
