#!/usr/bin/env python
"""Train a shipped bundle with its own ``configs/train.json`` and measure it with its own ``configs/evaluate.json``.

One training path: this script only writes the data set a bundle's card names and runs MONAI's bundle runner
on the bundle's configs with the overrides the card names (``RECIPES``)::

    python -m monai.bundle run --config_file configs/train.json --bundle_root B --dataset_dir D <overrides>
    python -m monai.bundle run --config_file "['configs/train.json','configs/evaluate.json']" ... <overrides>

It trains into ``--work`` (the best weights in ``<work>/<bundle>/train/models/model.pt``), evaluates those
weights on the held-out part, and with ``--install`` copies them to the bundle's ``models/model.pt``, writes
the figures into ``docs/training_metrics.json`` and the bundle's ``eval_metrics``, and draws the training and
validation curves into ``docs/training_curves.png``. The same command with the same seed gives the same run.

Usage:
    python scripts/train_bundles.py revmbconv_brats --work /tmp/revnets_training --install
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from benchmark_docs import cpu_name, logical_cores  # noqa: E402

from revnets.data import write_brats_dataset, write_multirater_benchmark  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Recipe:
    """What a bundle's shipped weights were trained on, and the overrides of its ``train.json``.

    Attributes:
        data: writes the data set into a folder (the ``dataset_dir``) and describes it in one line.
        overrides: ``--key value`` overrides of the bundle's configs, for training and evaluation alike.
        evaluation: further overrides for the evaluation only (which cases are held out).
    """

    data: Callable[[Path], str]
    overrides: dict[str, object] = field(default_factory=dict)
    evaluation: dict[str, object] = field(default_factory=dict)


def brats_phantoms(folder: Path) -> str:
    if not folder.is_dir():
        write_brats_dataset(folder, 30, seed=100, spacing=2.0)
    return "30 BraTS-layout tumour phantoms on the MNI anatomy at 2 mm (seeds 100-129); the first 6 held out"


def tissue_benchmark(folder: Path) -> str:
    if not folder.is_dir():
        write_multirater_benchmark(folder, subjects=20, seed=0, spacing=2.0)
    return (
        "the multi-rater tissue benchmark (write_multirater_benchmark(DIR, subjects=20, seed=0, spacing=2.0): "
        "14 training, 3 validation and 3 held-out test subjects warped from the MNI template, four raters each)"
    )


def split(name: str) -> str:
    """A datalist override reading one split of the tissue benchmark under ``dataset_dir``."""
    return f"$revnets.data.multirater_datalist(@dataset_dir + '/{name}')"


BENCHMARK_SPLITS = {
    "train_datalist": split("train"),
    "val_datalist": split("validation"),
    "train#holdout": [],
    "validate#holdout": [],
}


RECIPES = {
    "revmbconv_brats": Recipe(
        brats_phantoms,
        {"num_val": 6, "epochs": 10, "iterations_per_epoch": 15, "val_interval": 5, "patch_size": [32, 32, 32]},
    ),
    "invres_brain_tissue": Recipe(
        tissue_benchmark,
        {**BENCHMARK_SPLITS, "epochs": 40, "iterations_per_epoch": 25, "val_interval": 5},
        {"val_datalist": split("test")},
    ),
    "revphiseg_brain_tissue": Recipe(
        tissue_benchmark,
        # the plain form computes the same function as the reversible one, faster on a CPU that has the memory
        {**BENCHMARK_SPLITS, "epochs": 40, "iterations_per_epoch": 20, "val_interval": 5, "network_def#form": "plain"},
        {"val_datalist": split("test")},
    ),
}


def overrides(settings: dict[str, object]) -> list[str]:
    """``--key value`` arguments of MONAI's bundle runner (values as JSON)."""
    return [arg for key, value in settings.items() for arg in (f"--{key}", json.dumps(value))]


def shown_overrides(settings: dict[str, object]) -> str:
    """:func:`overrides` as a person types them in a POSIX shell: strings bare, the rest as JSON, each word in
    double quotes where the shell would otherwise split or expand it."""
    words = []
    for key, value in settings.items():
        text = value if isinstance(value, str) else json.dumps(value)
        safe = re.fullmatch(r"[\w@%+=:,./#-]+", text)
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")
        words += [f"--{key}", text if safe else f'"{escaped}"']
    return " ".join(words)


def run_bundle(configs: list[Path], settings: dict[str, object]) -> float:
    """``python -m monai.bundle run`` on ``configs``; returns the wall time in minutes."""
    config = json.dumps([str(c) for c in configs]) if len(configs) > 1 else str(configs[0])
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", config, *overrides(settings)]
    print("+", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return (time.perf_counter() - start) / 60


def read_metrics(path: Path) -> dict[str, float | list[float]]:
    """MONAI ``MetricsSaver``'s ``metrics.csv``: the metrics by name (per-class ones as lists)."""
    metrics: dict[str, float | list[float]] = {}
    for line in path.read_text().splitlines():
        name, value = line.split(",", 1)
        if value.startswith("tensor("):  # a per-class metric, written as the repr of a tensor
            metrics[name] = [float(v) for v in value.removeprefix("tensor([").removesuffix("])").split(",")]
        else:
            metrics[name] = float(value)
    return metrics


def plot_curves(histories: dict[str, dict], path: Path, title: str) -> None:
    """Training loss per epoch and the validation key metric where validation ran, one line per history
    (``TrainingHistory``'s JSON, by label)."""
    figure, (loss_axes, metric_axes) = plt.subplots(1, 2, figsize=(9, 3.6))
    for label, history in histories.items():
        epochs = history["epochs"]
        loss_axes.plot([e["epoch"] for e in epochs], [e["train_loss"] for e in epochs], marker=".", label=label)
        validated = [e for e in epochs if "val_mean_dice" in e]
        metric_axes.plot([e["epoch"] for e in validated], [e["val_mean_dice"] for e in validated], marker="o")
    loss_axes.set(xlabel="epoch", ylabel="training loss", title="training", yscale="log")
    metric_axes.set(xlabel="epoch", ylabel="val_mean_dice", title="validation (held-out part)", ylim=(0, 1))
    if len(histories) > 1:
        loss_axes.legend()
    figure.suptitle(textwrap.fill(title, 110), fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def install(bundle: Path, work: Path, record: dict) -> None:
    """Copy the trained weights into the bundle and write its figures, eval_metrics and curves."""
    shutil.copyfile(work / "train" / "models" / "model.pt", bundle / "models" / "model.pt")
    (bundle / "docs" / "training_metrics.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_curves({bundle.name: record["history"]}, bundle / "docs" / "training_curves.png", record["command"])
    metadata_file = bundle / "configs" / "metadata.json"
    metadata = json.loads(metadata_file.read_text())
    metadata["eval_metrics"] = {
        name: [round(v, 4) for v in value] if isinstance(value, list) else round(value, 4)
        for name, value in record["held_out"].items()
    }
    metadata_file.write_text(json.dumps(metadata, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", choices=sorted(RECIPES))
    parser.add_argument("--work", type=Path, required=True, help="folder for the data set and the training run")
    parser.add_argument("--install", action="store_true", help="copy the weights and figures into the bundle")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="evaluate (and install) the finished run already in --work"
    )
    parser.add_argument(
        "--set",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "JSON"),
        help="one more override of the recipe, e.g. --set network_def#_target_ '\"revnets.models.PHiSeg\"'",
    )
    args = parser.parse_args()

    bundle = REPO / "bundles" / args.bundle
    recipe = RECIPES[args.bundle]
    settings = {**recipe.overrides, **{key: json.loads(value) for key, value in args.set}}
    work = args.work / args.bundle
    data = work / "data"
    description = recipe.data(data)
    common = {"bundle_root": str(bundle), "dataset_dir": str(data), **settings}
    train = {**common, "output_dir": str(work / "train"), "ckpt_dir": str(work / "train" / "models")}
    minutes = None if args.evaluate_only else run_bundle([bundle / "configs" / "train.json"], train)
    evaluate = {
        **common,
        **recipe.evaluation,
        "output_dir": str(work / "evaluate"),
        "ckpt_dir": str(work / "train" / "models"),
    }
    run_bundle([bundle / "configs" / "train.json", bundle / "configs" / "evaluate.json"], evaluate)

    flags = shown_overrides(settings)
    record = {
        "command": f"python -m monai.bundle run --config_file configs/train.json --dataset_dir DIR {flags}",
        "data": description,
        "overrides": settings,
        "evaluation_overrides": recipe.evaluation,
        "held_out": read_metrics(work / "evaluate" / "metrics.csv"),
        "history": json.loads((work / "train" / "training_history.json").read_text()),
        "machine": f"{cpu_name()}, {logical_cores()} logical cores, CPU only, shared with other jobs",
        "training_wall_minutes": None if minutes is None else round(minutes, 1),
    }
    print(json.dumps(record["held_out"], indent=2))
    if args.install:
        install(bundle, work, record)


if __name__ == "__main__":
    main()
