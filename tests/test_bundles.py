"""Every shipped bundle: metadata valid against the schema kept in the repo, network in/out shapes as
declared (MONAI's verify_net_in_out), weights that load safely, and inference in the input's space."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigParser, verify_net_in_out

from revnets.inference import OUTPUTS, Predictor

BUNDLES_DIR = Path(__file__).resolve().parents[1] / "bundles"
BUNDLES = sorted(p.parent.parent for p in BUNDLES_DIR.glob("*/configs/inference.json"))
LAYOUT = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/train.json",
    "configs/multi_gpu_train.json",
    "configs/logging.conf",
    "models/model.pt",
    "docs/README.md",
    "LICENSE",
)


def test_every_bundle_folder_has_an_inference_config() -> None:
    folders = sorted(p for p in BUNDLES_DIR.iterdir() if p.is_dir())
    assert folders and folders == BUNDLES


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_bundle_has_the_monai_layout(bundle: Path) -> None:
    missing = [name for name in LAYOUT if not (bundle / name).is_file()]
    assert not missing, f"{bundle.name} lacks {missing}"


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_metadata_validates_against_the_bundle_schema(bundle: Path) -> None:
    schema = json.loads((BUNDLES_DIR / "metadata_schema.json").read_text())
    jsonschema.validate(json.loads((bundle / "configs" / "metadata.json").read_text()), schema)


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_network_input_and_output_match_the_metadata(bundle: Path) -> None:
    verify_net_in_out(
        net_id="network_def",
        meta_file=str(bundle / "configs" / "metadata.json"),
        config_file=str(bundle / "configs" / "inference.json"),
        device="cpu",
        n=4,
        any=1,
    )


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_weights_load_with_weights_only_and_fit_the_network(bundle: Path) -> None:
    weights = bundle / "models" / "model.pt"
    assert weights.stat().st_size < 20 * 2**20
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_inference_config_writes_outputs_in_the_input_space(bundle: Path, tmp_path: Path) -> None:
    predictor = Predictor.from_bundle(bundle, device="cpu")
    channels = predictor.network.in_channels
    affine = np.array([[0, 0, 3.0, -40], [-3.0, 0, 0, 50], [0, 3.0, 0, -20], [0, 0, 0, 1]])
    shape = (40, 44, 36) if channels == 1 else (40, 44, 36, channels)
    rng = np.random.default_rng(0)
    scan = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image((rng.random(shape) * 100).astype(np.float32), affine), scan)
    (files,) = predictor.predict([scan], tmp_path / "out", num_samples=2, progress=False)
    assert set(files) == set(OUTPUTS)
    for name, path in files.items():
        image = nib.load(path)
        assert image.shape[:3] == shape[:3] and np.allclose(image.affine, affine), name
