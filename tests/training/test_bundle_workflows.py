"""The shipped train.json (and multi_gpu_train.json) follow the MONAI model zoo: MONAI's own property check passes,
every handler is a component, best weights go to the bundle's models/, AMP is one switch, TensorBoard beside stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow, run

from tests.training.bundle_runs import BUNDLES, FAMILY, TINY, config_files, train

DATA = {"invres_brain_tissue": "tissue_dir", "revphiseg_brain_tissue": "tissue_dir", "revmbconv_brats": "brats_dir"}


@pytest.mark.parametrize("bundle", DATA)
def test_train_workflow_passes_monais_property_check(
    bundle: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    workflow = ConfigWorkflow(
        config_file=config_files(bundle, "train.json"),
        workflow_type="train",
        bundle_root=str(BUNDLES / bundle),
        dataset_dir=str(request.getfixturevalue(DATA[bundle])),
        output_dir=str(tmp_path),
        ckpt_dir=str(tmp_path / "models"),
        **TINY,
        **FAMILY[bundle],
    )
    workflow.initialize()
    assert workflow.check_properties() == []


@pytest.mark.parametrize("bundle", DATA)
def test_every_handler_is_a_component_and_amp_is_one_switch(bundle: str) -> None:
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "train.json"))
    train, validate = parser["train#handlers"], parser["validate#handlers"]
    assert all(isinstance(h, dict) and "_target_" in h for h in train + validate)
    for handlers in (train, validate):
        targets = [h["_target_"] for h in handlers]
        assert "StatsHandler" in targets and "TensorBoardStatsHandler" in targets
    assert parser["amp"] is False
    assert parser["train#trainer#amp"] == parser["validate#evaluator#amp"] == "@amp"


@pytest.mark.parametrize("bundle", DATA)
def test_multi_gpu_validation_does_not_pad_the_held_out_data(bundle: str) -> None:
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "train.json", "multi_gpu_train.json"))
    assert parser["validate#sampler#even_divisible"] is False
    assert parser["train#sampler#even_divisible"] is True


@pytest.mark.parametrize("bundle", DATA)
def test_evaluate_config_reports_the_held_out_figures_of_the_trained_weights(
    bundle: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data = request.getfixturevalue(DATA[bundle])
    train(bundle, data, tmp_path / "train", epochs=1)
    settings = {**TINY, **FAMILY[bundle]}
    if bundle != "revmbconv_brats":
        settings["eval_samples"] = 3
    run(
        config_file=config_files(bundle, "train.json", "evaluate.json"),
        bundle_root=str(BUNDLES / bundle),
        dataset_dir=str(data),
        output_dir=str(tmp_path / "eval"),
        ckpt_dir=str(tmp_path / "train" / "models"),
        **settings,
    )
    metrics = dict(line.split(",", 1) for line in (tmp_path / "eval" / "metrics.csv").read_text().splitlines())
    assert 0.0 <= float(metrics["val_mean_dice"]) <= 1.0
    if bundle != "revmbconv_brats":
        assert {"val_ged", "val_ncc", "val_ece"} <= set(metrics)
        assert float(metrics["val_ged"]) >= 0.0 and 0.0 <= float(metrics["val_ece"]) <= 1.0
    assert (tmp_path / "eval" / "val_mean_dice_raw.csv").is_file()


@pytest.mark.parametrize("bundle", DATA)
def test_multi_gpu_evaluate_keeps_every_held_out_case_once(bundle: str) -> None:
    parser = ConfigParser()
    parser.read_config(config_files(bundle, "train.json", "evaluate.json", "multi_gpu_evaluate.json"))
    assert parser["validate#sampler#even_divisible"] is False
    assert parser["validate#dataloader#sampler"] == "@validate#sampler"
    assert parser["validate#handlers"][0]["_target_"] == "CheckpointLoader"
