"""Training through MONAI bundle configs: the pieces that ``bundles/*/configs/train.json`` refers to.

The configs use MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` and handlers; this package adds what
MONAI lacks: a training iteration for losses that need more than the logits (:class:`LossIteration`), resuming
from the latest checkpoint, a JSON training history, annotator drawing and slab hold-out transforms, and the
process-group set-up for ``torchrun``.
"""

from revnets.training.distributed import default_backend, finish_distributed, init_distributed, is_main_process, local_device
from revnets.training.handlers import (
    BestMetricState,
    ResumeCheckpointLoader,
    TrainingCheckpointSaver,
    TrainingHistory,
    latest_checkpoint,
)
from revnets.training.iteration import LossIteration, loss_value
from revnets.training.transforms import PickAnnotatord, SlabCropd

__all__ = [
    "BestMetricState",
    "LossIteration",
    "PickAnnotatord",
    "ResumeCheckpointLoader",
    "SlabCropd",
    "TrainingCheckpointSaver",
    "TrainingHistory",
    "default_backend",
    "finish_distributed",
    "init_distributed",
    "is_main_process",
    "latest_checkpoint",
    "local_device",
    "loss_value",
]
