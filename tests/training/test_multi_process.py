"""multi_gpu_train.json under torchrun: two CPU processes (gloo) train together and end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from revnets.training import init_distributed
from tests.training.bundle_runs import BUNDLES, FAMILY, TINY, checkpoint, config_files, history

REPO = BUNDLES.parent

DUMP_WEIGHTS = {
    "finalize": [
        "$torch.save(@network_def.state_dict(), @output_dir + f'/rank{torch.distributed.get_rank()}.pt')",
        "$revnets.training.finish_distributed()",
    ]
}
"""Merged last: before leaving the process group, every rank saves its own weights."""


def _override_arguments(overrides: dict) -> list[str]:
    return [arg for key, value in overrides.items() for arg in (f"--{key}", json.dumps(value))]


def test_two_processes_finish_with_identical_weights(brats_dir: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump_weights.json"
    dump.write_text(json.dumps(DUMP_WEIGHTS))
    output = tmp_path / "run"
    files = [*config_files("revmbconv_brats", "train.json", "multi_gpu_train.json"), str(dump)]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
        "-m", "monai.bundle", "run",
        "--config_file", json.dumps(files),
        "--bundle_root", str(BUNDLES / "revmbconv_brats"),
        "--dataset_dir", str(brats_dir),
        "--output_dir", str(output),
        "--ckpt_dir", str(output / "models"),
        *_override_arguments({**TINY, **FAMILY["revmbconv_brats"], "num_val": 2, "epochs": 2}),  # 1 held-out case/rank
    ]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    finished = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]

    ranks = [torch.load(output / f"rank{rank}.pt", weights_only=True) for rank in range(2)]
    saved = checkpoint(output)["network"]
    assert ranks[0].keys() == ranks[1].keys() == saved.keys()
    for name in saved:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        assert torch.equal(ranks[0][name], saved[name]), name
    assert checkpoint(output)["trainer"]["iteration"] == 4
    assert [e["epoch"] for e in history(output)["epochs"]] == [1, 2]


def test_multi_gpu_config_outside_torchrun_says_to_use_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(RuntimeError, match="torchrun"):
        init_distributed("gloo")
