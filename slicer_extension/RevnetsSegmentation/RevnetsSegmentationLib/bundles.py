"""The bundles the module offers: folders with ``configs/inference.json``, described by their metadata.

Nothing is hard-coded per bundle: the input channels come from
``network_data_format.inputs.image`` (``num_channels``, ``channel_def``) and the output label names from
``label_classes`` (``"0 background, 1 grey matter, 2 white matter"``) in ``configs/metadata.json``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

# "<value> <name>" where the name starts with a letter and ends before , ; ( ) or the end; a number
# inside a word ("T1") or in parentheses ("TC (1, 4)") is no label.
_LABEL_ENTRY = re.compile(r"(?<![\w(.])(\d+)\s*[:=-]?\s+([A-Za-z][^,;()]*?)\s*(?=[,;()]|$)")


class BundleError(ValueError):
    """A folder is not a usable bundle; the message names the folder and the missing piece."""


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
    """

    path: Path
    name: str
    task: str
    channels: tuple[str, ...]
    labels: dict[int, str] = field(default_factory=dict)
    num_samples: int | None = None


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
    return Bundle(
        path=folder,
        name=folder.name,
        task=str(metadata.get("task", "")),
        channels=channels,
        labels=parse_labels(str(metadata.get("label_classes", ""))),
        num_samples=samples if isinstance(samples, int) and samples > 0 else None,
    )


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
