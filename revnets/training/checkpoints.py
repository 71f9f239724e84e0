"""Resumable training: one checkpoint file with everything needed to go on, and the best-model record in it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Events
from monai.handlers import CheckpointLoader, CheckpointSaver

from revnets.files import atomic_output
from revnets.training.distributed import is_main_process

CHECKPOINT_NAME = "checkpoint.pt"

logger = logging.getLogger(__name__)


class ResumableCheckpoint:
    """The trainer's handler for ``checkpoint_dir/checkpoint.pt``: the state of ``save_dict`` and the trainer.

    Every ``save_interval`` epochs the main process writes the state dicts of ``save_dict`` (network,
    optimizer, scheduler, :class:`BestMetricState`, history...) and of the trainer (epoch, iteration) to
    one file, atomically replacing the previous one. With ``resume`` and an existing file, MONAI's
    :class:`~monai.handlers.CheckpointLoader` restores all of them when the trainer starts (on every rank),
    and training goes on from the epoch after the saved one, up to the trainer's ``max_epochs``. Without
    ``resume`` an existing file is replaced at the first save, and a warning says so.

    The trainer is added when the handler is attached, because a config cannot refer to the trainer inside
    the trainer's own handler list. Attach it after the ``ValidationHandler`` and the
    :class:`~revnets.training.TrainingHistory` (handlers run in the order they are attached), so that an
    epoch's checkpoint holds that epoch's validation.

    Args:
        checkpoint_dir: the folder of ``checkpoint.pt`` (made if missing).
        save_dict: named objects with ``state_dict`` / ``load_state_dict``.
        resume: restore from ``checkpoint.pt`` if it exists (a bool; anything else raises ``ValueError``).
        save_interval: epochs between saves.
    """

    def __init__(self, checkpoint_dir: str, save_dict: dict, resume: bool = False, save_interval: int = 1) -> None:
        if not isinstance(resume, bool):  # a command-line override of resume arrives as the string "true"
            raise ValueError(f"resume must be True or False (capitalised in a config override), got {resume!r}.")
        if save_interval < 1:
            raise ValueError(f"save_interval must be at least 1, got {save_interval}.")
        self.path = Path(checkpoint_dir) / CHECKPOINT_NAME
        self.save_dict = save_dict
        self.resume = resume
        self.save_interval = save_interval

    def attach(self, engine: Any) -> None:
        objects = {**self.save_dict, "trainer": engine}
        if self.path.is_file() and self.resume:
            logger.info(f"Resuming from {self.path}.")
            # MONAI types map_location as a dict, but passes it to torch.load, which also takes a device name
            CheckpointLoader(str(self.path), objects, map_location="cpu").attach(engine)  # type: ignore[arg-type]
        elif self.path.is_file():
            logger.warning(f"{self.path} exists and resume is off: training starts afresh and replaces it.")
        elif self.resume:
            logger.info(f"No {self.path} to resume from: training starts afresh.")
        if is_main_process():
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.save_interval), self.save, objects)

    def save(self, engine: Any, objects: Mapping[str, Any]) -> None:
        """Write the state dicts of ``objects`` to :attr:`path` (through a temporary file)."""
        with atomic_output(self.path) as partial:
            torch.save({name: obj.state_dict() for name, obj in objects.items()}, partial)


class BestMetricState:
    """The best validation so far, as a state dict: the evaluator's best metric and the best-model saver's record.

    Put it in the resumable checkpoint so that after a resume the best-model file is only replaced by a model
    that beats the best one before the interruption, and the evaluator's log of the best metric goes on from
    there. Everything in it is numbers and a file name, which ``torch.load(..., weights_only=True)`` reads.

    Args:
        evaluator: the validation engine (``state.best_metric``, ``state.best_metric_epoch``).
        saver: its key-metric :class:`~monai.handlers.CheckpointSaver` (``save_key_metric=True``).
    """

    def __init__(self, evaluator: Any, saver: CheckpointSaver) -> None:
        if saver._key_metric_checkpoint is None:
            raise ValueError("BestMetricState needs a CheckpointSaver with save_key_metric=True.")
        self.evaluator = evaluator
        self.saver = saver

    def state_dict(self) -> dict:
        # MONAI's CheckpointSaver loads its record (load_state_dict) but has no getter; ignite's Checkpoint holds it.
        checkpoint = self.saver._key_metric_checkpoint
        if checkpoint is None:
            raise RuntimeError("the CheckpointSaver lost its key-metric checkpoint.")
        saved = checkpoint.state_dict()["_saved"]
        return {
            "best_metric": float(self.evaluator.state.best_metric),
            "best_metric_epoch": int(self.evaluator.state.best_metric_epoch),
            "saved": [(float(priority), name) for priority, name in saved],
        }

    def load_state_dict(self, state_dict: Mapping) -> None:
        self.evaluator.state.best_metric = state_dict["best_metric"]
        self.evaluator.state.best_metric_epoch = state_dict["best_metric_epoch"]
        self.saver.load_state_dict({"_saved": list(state_dict["saved"])})
