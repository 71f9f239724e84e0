"""Each model family trains through its bundle's real train.json (tiny sizes): the run finishes and leaves a
resumable checkpoint, the best model and a history; resuming goes on where the checkpoint stopped."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from monai.bundle import ConfigParser

from tests.training.bundle_runs import FAMILY, TINY, checkpoint, config_files, history, train

DATA = {"invres_brain_tissue": "tissue_dir", "revphiseg_brain_tissue": "tissue_dir", "revmbconv_brats": "brats_dir"}


def _network(bundle: str) -> torch.nn.Module:
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "train.json"))
    parser.update({**TINY, **FAMILY[bundle]})
    return parser.get_parsed_content("network_def")


@pytest.mark.parametrize("bundle", DATA)
def test_train_config_leaves_checkpoint_best_model_and_history(
    bundle: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    train(bundle, request.getfixturevalue(DATA[bundle]), tmp_path, epochs=2)

    epochs = history(tmp_path)["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(math.isfinite(e["train_loss"]) and 0.0 <= e["val_mean_dice"] <= 1.0 for e in epochs)
    state = checkpoint(tmp_path)
    assert set(state) == {"network", "optimizer", "lr_scheduler", "best_model", "history", "trainer"}
    assert (state["trainer"]["iteration"], state["trainer"]["epoch_length"]) == (4, 2)
    network = _network(bundle)
    network.load_state_dict(state["network"])
    network.load_state_dict(torch.load(tmp_path / "models" / "model.pt", weights_only=True))


@pytest.mark.parametrize("bundle", DATA)
def test_best_model_goes_to_the_bundles_models_folder_as_in_the_model_zoo(bundle: str) -> None:
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "train.json"))
    parser["bundle_root"] = "/bundle"
    savers = [h for h in parser["validate#handlers"] if h["_target_"] == "CheckpointSaver"]
    assert [(h["save_dir"], h["key_metric_filename"]) for h in savers] == [("@ckpt_dir", "model.pt")]
    assert parser.get_parsed_content("ckpt_dir") == "/bundle/models"
    assert parser.get_parsed_content("output_dir") == "/bundle/training"


def test_resume_goes_on_from_the_checkpoint_with_its_history_and_best_metric(tissue_dir: Path, tmp_path: Path) -> None:
    train("invres_brain_tissue", tissue_dir, tmp_path, epochs=1)
    first = checkpoint(tmp_path)
    train("invres_brain_tissue", tissue_dir, tmp_path, epochs=3, resume=True)

    state = checkpoint(tmp_path)
    assert state["trainer"]["iteration"] == 6
    epochs = history(tmp_path)["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert epochs[0] == first["history"]["epochs"][0]
    assert state["best_model"]["best_metric"] == max(e["val_mean_dice"] for e in epochs)


def test_without_resume_a_rerun_starts_afresh(tissue_dir: Path, tmp_path: Path) -> None:
    train("invres_brain_tissue", tissue_dir, tmp_path, epochs=2)
    train("invres_brain_tissue", tissue_dir, tmp_path, epochs=1)
    assert [e["epoch"] for e in history(tmp_path)["epochs"]] == [1]
    assert checkpoint(tmp_path)["trainer"]["iteration"] == 2


def test_training_loss_falls_over_a_few_epochs(tissue_dir: Path, tmp_path: Path) -> None:
    train("invres_brain_tissue", tissue_dir, tmp_path, epochs=5, iterations_per_epoch=3)
    losses = [e["train_loss"] for e in history(tmp_path)["epochs"]]
    assert sum(losses[-2:]) / 2 < 0.85 * losses[0], losses
