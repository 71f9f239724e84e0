"""A JSON record of training: per epoch the mean training loss and the validation metrics."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from monai.utils import CommonKeys

from revnets.files import atomic_output
from revnets.training.distributed import is_main_process


class TrainingHistory:
    """Per epoch: the mean training loss and, when validation ran, its metrics; kept in a JSON file.

    Attach it to the trainer after the ``ValidationHandler`` (handlers run in the order they are attached),
    so that an epoch's entry holds that epoch's validation. Only the main process writes the file; in
    distributed training the loss is the main process's own. Put it in the resumable checkpoint
    (:class:`~revnets.training.ResumableCheckpoint`) so that a resumed run continues the same history.

    The file::

        {"epochs": [{"epoch": 1, "iteration": 20, "train_loss": 1.2, "val_mean_dice": 0.4}, ...],
         "best": {"epoch": 7, "metric": "val_mean_dice", "value": 0.81}}

    Args:
        path: the JSON file to write (folders are made).
        evaluator: the validation engine whose ``state.metrics`` are recorded.
    """

    def __init__(self, path: str, evaluator: Any | None = None) -> None:
        self.path = Path(path)
        self.evaluator = evaluator
        self.epochs: list[dict] = []
        self._losses: list[float] = []

    def attach(self, engine: Any) -> None:
        engine.add_event_handler(Events.EPOCH_STARTED, lambda _: self._losses.clear())
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _iteration_completed(self, engine: Any) -> None:
        output = engine.state.output
        first = output[0] if isinstance(output, list) else output  # decollated or not
        self._losses.append(float(torch.as_tensor(first[CommonKeys.LOSS]).detach()))

    def _epoch_completed(self, engine: Any) -> None:
        entry: dict[str, Any] = {"epoch": engine.state.epoch, "iteration": engine.state.iteration}
        if self._losses:
            entry["train_loss"] = sum(self._losses) / len(self._losses)
        if self.evaluator is not None and self.evaluator.state.epoch == engine.state.epoch:
            entry.update({name: _number(value) for name, value in self.evaluator.state.metrics.items()})
        self.epochs.append(entry)
        if is_main_process():
            self.write()

    def summary(self) -> dict:
        """The history and, if validation ran, its best epoch by the evaluator's key metric."""
        summary: dict[str, Any] = {"epochs": self.epochs}
        name = getattr(getattr(self.evaluator, "state", None), "key_metric_name", None)
        scored = [e for e in self.epochs if name in e]
        if scored:
            best = max(scored, key=lambda e: e[name])
            summary["best"] = {"epoch": best["epoch"], "metric": name, "value": best[name]}
        return summary

    def write(self) -> None:
        with atomic_output(self.path) as partial:
            partial.write_text(json.dumps(self.summary(), indent=1) + "\n")

    def state_dict(self) -> dict:
        return {"epochs": self.epochs}

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.epochs = list(state_dict["epochs"])


def _number(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value
