"""Ignite handlers that the bundles' train.json files need beyond MONAI's own: resuming from the latest
checkpoint, keeping the best-model record across a resume, and a JSON history of loss and validation metrics.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from monai.handlers import CheckpointLoader, CheckpointSaver

from revnets.training.distributed import is_main_process
from revnets.training.iteration import loss_value

CHECKPOINT_PATTERN = re.compile(r"checkpoint_epoch=(\d+)\.pt")
"""File names that MONAI's ``CheckpointSaver(save_interval=N)`` writes for several objects."""

logger = logging.getLogger(__name__)


def checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The resumable checkpoints ``checkpoint_epoch=N.pt`` in ``directory``, oldest epoch first."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_PATTERN.fullmatch(p.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The resumable checkpoint of the latest epoch in ``directory``, or None if there is none."""
    found = checkpoints(directory)
    return found[-1] if found else None


class TrainingCheckpointSaver:
    """MONAI's :class:`~monai.handlers.CheckpointSaver` writing a resumable ``checkpoint_epoch=N.pt``.

    Every ``save_interval`` epochs it saves ``save_dict`` plus the trainer itself (epoch and iteration),
    keeping only the latest file. The trainer is added when the handler is attached, because a config
    cannot refer to the trainer from inside the trainer's own handler list. Attach it after the
    ``ValidationHandler`` and the :class:`TrainingHistory`, so a checkpoint holds its epoch's validation.

    Args:
        checkpoint_dir: where to write.
        save_dict: objects with ``state_dict`` (network, optimizer, scheduler, :class:`BestMetricState`, ...).
        save_interval: epochs between checkpoints.
    """

    def __init__(self, checkpoint_dir: str, save_dict: dict, save_interval: int = 1) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.save_dict = save_dict
        self.save_interval = save_interval

    def attach(self, engine: Any) -> None:
        CheckpointSaver(
            save_dir=self.checkpoint_dir,
            save_dict={**self.save_dict, "trainer": engine},
            save_interval=self.save_interval,
            n_saved=1,
        ).attach(engine)


class ResumeCheckpointLoader:
    """MONAI's :class:`~monai.handlers.CheckpointLoader` on the latest ``checkpoint_epoch=N.pt``, if any.

    Attached to the trainer, it looks for a checkpoint when it is attached (when the trainer is built) and,
    if ``resume`` and one exists, loads ``load_dict`` and the trainer's epoch and iteration from it when
    the trainer starts, so the run goes on from the epoch after it. The
    checkpoint files of older epochs that an earlier, interrupted run left behind are removed.

    Args:
        checkpoint_dir: where the trainer's ``CheckpointSaver`` writes ``checkpoint_epoch=N.pt``.
        load_dict: the objects to restore, the same as :class:`TrainingCheckpointSaver`'s ``save_dict``.
        resume: False starts afresh (existing checkpoints are left alone and overwritten as training goes).
        map_location: passed to ``torch.load``; by default tensors load onto the CPU first.
    """

    def __init__(
        self, checkpoint_dir: str, load_dict: dict, resume: bool = True, map_location: Any = "cpu"
    ) -> None:
        self.checkpoint_dir = checkpoint_dir
        self.load_dict = load_dict
        self.resume = resume
        self.map_location = map_location
        self.path: Path | None = None

    def attach(self, engine: Any) -> None:
        self.path = latest_checkpoint(self.checkpoint_dir) if self.resume else None
        if self.path is None:
            return
        engine.logger.info(f"Resuming from {self.path}.")
        load_dict = {**self.load_dict, "trainer": engine}
        CheckpointLoader(str(self.path), load_dict, map_location=self.map_location).attach(engine)
        if is_main_process():
            for stale in checkpoints(self.checkpoint_dir)[:-1]:
                stale.unlink(missing_ok=True)


class BestMetricState:
    """The best-model record of a key-metric :class:`~monai.handlers.CheckpointSaver`, as a state dict.

    Put it in the resumable checkpoint (``save_dict`` and ``load_dict``) so that after a resume the best-model
    file (``models/model.pt``) is only replaced by a model that beats the best one before the interruption.
    The record holds the best score and a file name, which ``torch.load(..., weights_only=True)`` reads.

    Args:
        saver: the validation ``CheckpointSaver`` with ``save_key_metric=True``.
    """

    def __init__(self, saver: CheckpointSaver) -> None:
        # MONAI's CheckpointSaver keeps the record in an ignite Checkpoint and offers no public getter for it.
        self.checkpoint = saver._key_metric_checkpoint
        if self.checkpoint is None:
            raise ValueError("BestMetricState needs a CheckpointSaver with save_key_metric=True.")

    def state_dict(self) -> dict:
        return {key: [(float(p), f) for p, f in items] for key, items in self.checkpoint.state_dict().items()}

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.checkpoint.load_state_dict(state_dict)


class TrainingHistory:
    """Per epoch: the mean training loss and, when validation ran, its metrics; kept in a JSON file.

    Attach it to the trainer after the ``ValidationHandler`` (handlers run in the order they are attached),
    so that an epoch's entry holds that epoch's validation. Only the main process writes the file; in
    distributed training the loss is the main process's own. Its state dict goes into the resumable
    checkpoint, so a resumed run continues the same history.

    The file: ``{"epochs": [{"epoch": 1, "iteration": 20, "train_loss": 1.2, "val_mean_dice": 0.4, ...},
    ...], "best": {"epoch": ..., "metric": ..., "name": ...}}``.

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
        from ignite.engine import Events

        engine.add_event_handler(Events.EPOCH_STARTED, self._epoch_started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self._iteration_completed)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._epoch_completed)

    def _epoch_started(self, engine: Any) -> None:
        self._losses = []

    def _iteration_completed(self, engine: Any) -> None:
        self._losses.append(loss_value(engine.state.output))

    def _epoch_completed(self, engine: Any) -> None:
        entry: dict[str, Any] = {"epoch": engine.state.epoch, "iteration": engine.state.iteration}
        if self._losses:
            entry["train_loss"] = sum(self._losses) / len(self._losses)
        evaluator = self.evaluator
        if evaluator is not None and evaluator.state.epoch == engine.state.epoch:
            entry.update({name: _number(value) for name, value in evaluator.state.metrics.items()})
        self.epochs.append(entry)
        if is_main_process():
            self.write()

    def summary(self) -> dict:
        """The history and the best validation epoch by the evaluator's key metric."""
        summary: dict[str, Any] = {"epochs": self.epochs}
        name = getattr(getattr(self.evaluator, "state", None), "key_metric_name", None)
        scored = [e for e in self.epochs if name in e]
        if scored:
            best = max(scored, key=lambda e: e[name])
            summary["best"] = {"epoch": best["epoch"], "metric": name, "value": best[name]}
        return summary

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.summary(), indent=1))
        tmp.replace(self.path)

    def state_dict(self) -> dict:
        return {"epochs": json.dumps(self.epochs)}

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.epochs = json.loads(state_dict["epochs"])


def _number(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value
