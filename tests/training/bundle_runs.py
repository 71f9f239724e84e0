"""Running the shipped bundles' train.json on tiny data and reading back what a run leaves behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from monai.bundle import run

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"

TINY = {
    "pixdim": [6.0, 6.0, 6.0],
    "patch_size": [16, 16, 16],
    "val_roi_size": [16, 16, 16],
    "iterations_per_epoch": 2,
    "network_def#channels": [8, 16],
}
"""Overrides that make either bundle train in seconds on the 6 mm data: 16^3 patches, a two-level network."""

FAMILY = {
    "invres_brain_tissue": {},
    "revphiseg_brain_tissue": {"network_def#latent_levels": 2},
    "revmbconv_brats": {"network_def#blocks": 1, "num_val": 1},
}
"""Per bundle, what else its config needs on the tiny data (RevMBConv has one block count per level, PHiSeg
at most one latent level per resolution level)."""


def config_files(bundle: str, *names: str) -> list[str]:
    """Paths of ``bundles/<bundle>/configs/<name>`` for each name."""
    return [str(BUNDLES / bundle / "configs" / name) for name in names]


def train(bundle: str, dataset_dir: Path, output_dir: Path, **overrides: Any) -> None:
    """``python -m monai.bundle run --config_file <bundle>/configs/train.json`` in this process, tiny sizes."""
    settings = {**TINY, **FAMILY[bundle], **overrides}
    run(
        config_file=config_files(bundle, "train.json"),
        bundle_root=str(BUNDLES / bundle),
        dataset_dir=str(dataset_dir),
        output_dir=str(output_dir),
        ckpt_dir=str(output_dir / "models"),  # the config's default is the bundle's own models/ (the shipped weights)
        **settings,
    )


def history(output_dir: Path) -> dict:
    """The run's ``training_history.json``."""
    return json.loads((output_dir / "training_history.json").read_text())


def checkpoint(output_dir: Path) -> dict:
    """The run's resumable ``checkpoint.pt``, read with ``weights_only=True``."""
    return torch.load(output_dir / "checkpoint.pt", weights_only=True)
