"""The shipped train.json (and multi_gpu_train.json) follow the MONAI model zoo: MONAI's own property check passes,
every handler is a component, best weights go to the bundle's models/, AMP is one switch, TensorBoard beside stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from monai.bundle import ConfigParser, ConfigWorkflow

from tests.training.bundle_runs import BUNDLES, FAMILY, TINY, config_files

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
