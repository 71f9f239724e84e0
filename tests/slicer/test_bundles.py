"""The module offers the shipped bundles and user folders, described from their metadata."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from RevnetsSegmentationLib.bundles import FALLBACK_COLORS, BundleError, find_bundles, parse_labels, read_bundle

BUNDLES_DIR = Path(__file__).resolve().parents[2] / "bundles"


def test_every_shipped_bundle_is_offered() -> None:
    offered = {bundle.name for bundle in find_bundles(BUNDLES_DIR)}
    assert offered == {p.parent.parent.name for p in BUNDLES_DIR.glob("*/configs/inference.json")}


def test_tissue_bundle_takes_a_t1_and_names_its_labels() -> None:
    bundle = read_bundle(BUNDLES_DIR / "invres_brain_tissue")
    assert bundle.channels == ("T1",)
    assert bundle.labels == {0: "background", 1: "grey matter", 2: "white matter"}
    assert bundle.num_samples == json.loads((bundle.path / "configs" / "inference.json").read_text())["num_samples"]
    assert "grey / white matter" in bundle.task


def test_channels_and_labels_come_from_the_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "tumour"
    shutil.copytree(BUNDLES_DIR / "invres_brain_tissue" / "configs", folder / "configs")
    metadata_file = folder / "configs" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata.pop("labels")
    metadata["label_classes"] = "0 background; 1 necrosis, 2 edema, 4 enhancing tumour"
    metadata["network_data_format"]["inputs"]["image"].update(
        num_channels=4, channel_def={"0": "T1", "1": "T1ce", "2": "T2"}
    )
    metadata_file.write_text(json.dumps(metadata))
    bundle = read_bundle(folder)
    assert bundle.channels == ("T1", "T1ce", "T2", "channel 3")
    assert bundle.labels == {0: "background", 1: "necrosis", 2: "edema", 4: "enhancing tumour"}
    assert [style.color for style in bundle.styles.values()] == list(FALLBACK_COLORS[:3])
    assert all(style.type is None for style in bundle.styles.values())


def test_labels_block_gives_colours_and_snomed_terminology() -> None:
    bundle = read_bundle(BUNDLES_DIR / "invres_brain_tissue")
    grey = bundle.styles[1]
    assert grey.name == "grey matter" and grey.color == (200 / 255, 200 / 255, 235 / 255)
    assert grey.category == ("SCT", "123037004", "Anatomical Structure")
    assert grey.type == ("SCT", "389081007", "Gray matter")
    tumour = read_bundle(BUNDLES_DIR / "revmbconv_brats")
    assert sorted(tumour.styles) == [1, 2, 4] and all(s.type[0] == "SCT" for s in tumour.styles.values())


@pytest.mark.parametrize(
    "entry", [{"name": "x", "color": [300, 0, 0]}, {"name": "x", "terminology": {"type": ["SCT", "1"]}}]
)
def test_a_malformed_labels_block_is_a_readable_error(tmp_path: Path, entry: dict) -> None:
    folder = tmp_path / "bundle"
    shutil.copytree(BUNDLES_DIR / "invres_brain_tissue" / "configs", folder / "configs")
    metadata_file = folder / "configs" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["labels"]["1"] = entry
    metadata_file.write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="labels.1 is malformed"):
        read_bundle(folder)


def test_labels_are_found_among_other_text() -> None:
    text = (
        "BraTS labels: 0 background, 1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumour; "
        "trained as the regions TC (1, 4), WT (1, 2, 4), ET (4)"
    )
    assert parse_labels(text) == {
        0: "background", 1: "necrotic / non-enhancing core", 2: "edema", 4: "enhancing tumour"
    }
    assert parse_labels("1: T1 hyperintense lesion (active)") == {1: "T1 hyperintense lesion"}


def test_label_text_without_numbers_gives_no_names() -> None:
    assert parse_labels("grey matter and white matter") == {}
    assert parse_labels("") == {}


def test_a_folder_that_is_not_a_bundle_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"is not a bundle folder: configs/inference.json is missing"):
        read_bundle(tmp_path)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "inference.json").write_text("{}")
    (tmp_path / "configs" / "metadata.json").write_text("{not json")
    with pytest.raises(BundleError, match="metadata.json could not be read as JSON"):
        read_bundle(tmp_path)
    (tmp_path / "configs" / "metadata.json").write_text("{}")
    with pytest.raises(BundleError, match="has no network_data_format.inputs.image.num_channels"):
        read_bundle(tmp_path)
    assert find_bundles(tmp_path.parent) == []
