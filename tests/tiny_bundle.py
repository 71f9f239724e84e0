"""A tiny bundle with random weights, for exercising the inference path, the CLI and the Slicer logic fast."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from revnets.models import InvResUNet, RevPHiSeg

_NETWORK = {
    "_target_": "revnets.models.InvResUNet",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [4, 8],
    "blocks": 1,
    "dropout": 0.3,
}


def make_tiny_bundle(directory: Path, in_channels: int = 1) -> Path:
    """Write ``directory/tiny_bundle`` (configs/inference.json, models/model.pt) and return its path.

    It reuses the preprocessing and predictor sections of the shipped ``invres_brain_tissue`` bundle,
    with a very small network, 4 mm internal spacing and random weights.
    """
    shipped = Path(__file__).resolve().parents[1] / "bundles" / "invres_brain_tissue"
    bundle = directory / "tiny_bundle"
    shutil.copytree(shipped / "configs", bundle / "configs")
    config_file = bundle / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    network = dict(_NETWORK, in_channels=in_channels)
    config["network_def"] = network
    config["pixdim"] = [4.0, 4.0, 4.0]
    config["roi_size"] = [16, 16, 16]
    config["num_samples"] = 3
    config_file.write_text(json.dumps(config, indent=2))
    (bundle / "models").mkdir()
    torch.manual_seed(0)
    model = InvResUNet(**{k: v for k, v in network.items() if k != "_target_"})
    torch.save(model.state_dict(), bundle / "models" / "model.pt")
    return bundle


_PHISEG = {
    "_target_": "revnets.models.RevPHiSeg",
    "spatial_dims": 3,
    "in_channels": 1,
    "out_channels": 3,
    "channels": [4, 4, 4],
    "latent_levels": 2,
    "latent_channels": 2,
    "norm": "instance",
}


def make_tiny_phiseg_bundle(directory: Path) -> Path:
    """Write ``directory/tiny_phiseg_bundle``: the shipped ``revphiseg_brain_tissue`` configs with a very small
    RevPHiSeg (instance norm, size divisor 4), 4 mm internal spacing and random weights; return its path."""
    shipped = Path(__file__).resolve().parents[1] / "bundles" / "revphiseg_brain_tissue"
    bundle = directory / "tiny_phiseg_bundle"
    shutil.copytree(shipped / "configs", bundle / "configs")
    config_file = bundle / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    config["network_def"] = dict(_PHISEG)
    config["pixdim"] = [4.0, 4.0, 4.0]
    config["roi_size"] = [16, 16, 16]
    config["num_samples"] = 2
    config_file.write_text(json.dumps(config, indent=2))
    (bundle / "models").mkdir()
    torch.manual_seed(0)
    model = RevPHiSeg(**{k: v for k, v in _PHISEG.items() if k != "_target_"})
    torch.save(model.state_dict(), bundle / "models" / "model.pt")
    return bundle
