"""The one-line change: a shipped bundle's train.json, its network made a MONAI network, then only
``network_def#_target_`` pointed at the twin, trains (tiny sizes) and leaves weights the twin loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser, run

from revnets.data import write_brats_dataset
from tests.training.bundle_runs import BUNDLES, FAMILY, TINY, config_files, history

BUNDLE = "revmbconv_brats"
MONAI_ARGUMENTS = {
    "SegResNet": {"init_filters": 8, "blocks_down": [1, 1, 2], "blocks_up": [1, 1]},
    "DynUNet": {"kernel_size": [3, 3, 3, 3], "strides": [1, 2, 2, 2], "upsample_kernel_size": [2, 2, 2],
                "filters": [8, 16, 16, 24]},
    "UNet": {"channels": [8, 16, 24], "strides": [2, 2], "num_res_units": 2},
}
"""What a MONAI user's network_def holds besides spatial_dims and channels: small versions of each network."""


@pytest.fixture(scope="module")
def brats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("brats")
    write_brats_dataset(directory, cases=2, seed=0, spacing=6.0)
    return directory


def monai_bundle_copy(name: str, directory: Path) -> Path:
    """The shipped train.json, read now, with MONAI's ``name`` as its network (channels as shipped)."""
    parser = ConfigParser()
    parser.read_config(config_files(BUNDLE, "train.json"))
    shipped = parser["network_def"]
    parser["network_def"] = {
        "_target_": f"monai.networks.nets.{name}",
        **{key: shipped[key] for key in ("spatial_dims", "in_channels", "out_channels")},
        **MONAI_ARGUMENTS[name],
    }
    path = directory / "configs" / "train.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(parser.config))
    return path


@pytest.mark.parametrize("name", MONAI_ARGUMENTS)
def test_swapping_only_the_target_trains_the_twin_through_the_bundle(
    name: str, brats_dir: Path, tmp_path: Path
) -> None:
    config_file = monai_bundle_copy(name, tmp_path)
    tiny = {key: value for key, value in {**TINY, **FAMILY[BUNDLE]}.items() if not key.startswith("network_def")}

    run(
        config_file=str(config_file),
        bundle_root=str(BUNDLES / BUNDLE),
        dataset_dir=str(brats_dir),
        output_dir=str(tmp_path / "out"),
        ckpt_dir=str(tmp_path / "out" / "models"),  # not the bundle's own models/ (the shipped weights)
        epochs=2,
        **tiny,
        **{"network_def#_target_": f"revnets.nets.{name}"},
    )

    epochs = history(tmp_path / "out")["epochs"]
    assert len(epochs) == 2 and all(torch.isfinite(torch.tensor(e["train_loss"])) for e in epochs)
    parser = ConfigParser()
    parser.read_config(str(config_file))
    monai_net = parser.get_parsed_content("network_def")
    parser["network_def#_target_"] = f"revnets.nets.{name}"
    twin = parser.get_parsed_content("network_def", instantiate=True)
    twin.load_state_dict(torch.load(tmp_path / "out" / "models" / "model.pt", weights_only=True))
    x = torch.randn(1, parser["network_def#in_channels"], 16, 16, 16)
    with torch.no_grad():
        assert twin.eval()(x).shape == monai_net.eval()(x).shape
