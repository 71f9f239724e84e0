"""Every shipped bundle: the model zoo's layout, metadata valid against the schema kept in the repo, network
in/out shapes as declared (MONAI's verify_net_in_out at its default n=1), weights that load safely, a standard
MONAI inference workflow writing in the input's space, and exports (TorchScript by tracing, ONNX with dynamic
spatial axes) that equal the eager network's deterministic pass."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import onnxruntime
import pytest
import torch
from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, onnx_export, verify_net_in_out

from revnets.inference import OUTPUTS, Predictor
from revnets.inference.export import DeterministicPass

BUNDLES_DIR = Path(__file__).resolve().parents[1] / "bundles"
BUNDLES = sorted(p.parent.parent for p in BUNDLES_DIR.glob("*/configs/inference.json"))
LAYOUT = (
    "configs/metadata.json",
    "configs/inference.json",
    "configs/train.json",
    "configs/multi_gpu_train.json",
    "configs/evaluate.json",
    "configs/multi_gpu_evaluate.json",
    "configs/logging.conf",
    "models/model.pt",
    "docs/README.md",
    "docs/data_license.txt",
    "LICENSE",
)
CARD_SECTIONS = (
    "## Model overview",
    "## Data",
    "## Training configuration",
    "## Performance",
    "## MONAI bundle commands",
    "## System configuration",
    "## Limitations",
    "## Citation",
    "## References",
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
        n=1,
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


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_metadata_names_the_model_its_probability_range_and_every_package_the_configs_import(bundle: Path) -> None:
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["name"] and meta["version"] in meta["changelog"]
    assert meta["network_data_format"]["outputs"]["probabilities"]["value_range"] == [0, 1]
    packages = {"pytorch-ignite", "tensorboard", "nibabel", "itk", "SimpleITK", "revnets"}
    assert packages <= set(meta["required_packages_version"])


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_model_card_has_the_model_zoo_sections_and_says_what_an_export_contains(bundle: Path) -> None:
    card = (bundle / "docs" / "README.md").read_text()
    missing = [section for section in CARD_SECTIONS if section not in card]
    assert not missing, f"{bundle.name}'s card lacks {missing}"
    assert "one deterministic pass" in card and "python -m monai.bundle ckpt_export" in card


def _scan_folder(folder: Path, channels: int) -> Path:
    affine = np.array([[0, 0, 3.0, -40], [-3.0, 0, 0, 50], [0, 3.0, 0, -20], [0, 0, 0, 1]])
    shape = (40, 44, 36) if channels == 1 else (40, 44, 36, channels)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image((rng.random(shape) * 100).astype(np.float32), affine), folder / "small.nii.gz")
    return folder


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_inference_config_passes_monais_infer_property_check(bundle: Path, tmp_path: Path) -> None:
    channels = json.loads((bundle / "configs" / "metadata.json").read_text())["network_data_format"]["inputs"]
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        workflow_type="infer",
        bundle_root=str(bundle),
        dataset_dir=str(_scan_folder(tmp_path / "data", channels["image"]["num_channels"])),
        output_dir=str(tmp_path / "out"),
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def _exportable(bundle: Path) -> tuple[DeterministicPass, list[int], torch.Tensor]:
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    network = parser.get_parsed_content("network_def")
    network.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    k = max(network.size_divisor, 8)
    shape = [1, network.in_channels] + [2 * k] * network.spatial_dims
    other_size = [3 * k, 2 * k, 4 * k][: network.spatial_dims]  # not the size the export was traced at
    other = torch.randn(1, network.in_channels, *other_size)
    return DeterministicPass(network), shape, other


def _export_arguments(bundle: Path, shape: list[int]) -> dict:
    return {
        "net_id": "export_network_def",
        "ckpt_file": str(bundle / "models" / "model.pt"),
        "meta_file": str(bundle / "configs" / "metadata.json"),
        "config_file": str(bundle / "configs" / "inference.json"),
        "bundle_root": str(bundle),
        "use_trace": True,
        "input_shape": shape,
    }


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_ckpt_export_writes_torchscript_equal_to_the_eager_pass(bundle: Path, tmp_path: Path) -> None:
    eager, shape, other = _exportable(bundle)
    ckpt_export(filepath=str(tmp_path / "model.ts"), **_export_arguments(bundle, shape))
    exported = torch.jit.load(str(tmp_path / "model.ts"))
    with torch.no_grad():
        for x in (torch.randn(shape), other):
            torch.testing.assert_close(exported(x), eager(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("bundle", BUNDLES, ids=lambda p: p.name)
def test_onnx_export_with_dynamic_spatial_axes_matches_eager_at_another_size(bundle: Path, tmp_path: Path) -> None:
    eager, shape, other = _exportable(bundle)
    axes = {0: "batch", **{2 + i: name for i, name in enumerate("xyz"[: len(shape) - 2])}}
    onnx_export(
        filepath=str(tmp_path / "model.onnx"),
        converter_kwargs={
            "input_names": ["image"], "output_names": ["pred"], "dynamic_axes": {"image": axes, "pred": axes},
            "dynamo": False,
        },
        **_export_arguments(bundle, shape),
    )
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (result,) = session.run(None, {"image": other.numpy()})
    with torch.no_grad():
        expected = eager(other).numpy()
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=0, atol=1e-4)


def test_bundle_json_is_read_as_utf8_whatever_the_c_locale(tmp_path: Path) -> None:
    # Libraries loaded in the same process (and Slicer) may set the C locale, which makes Python's default
    # text encoding ASCII; a bundle's JSON is UTF-8 (a description may name "Gérard" or "µm").
    import locale

    from revnets.bundles import check_config

    config = tmp_path / "configs" / "inference.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"description": "Gérard, 0.5 µm"}, ensure_ascii=False), encoding="utf-8")
    previous = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")
        check_config(config)
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
