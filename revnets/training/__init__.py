"""Training through MONAI bundle configs: the pieces that ``bundles/*/configs/train.json`` refer to.

The configs use MONAI's ``SupervisedTrainer`` / ``SupervisedEvaluator`` and handlers; this package adds what
MONAI lacks: a training iteration for losses that need the image or the label inside the model
(:class:`LossIteration`, :class:`ModelLoss`), one resumable checkpoint (:class:`ResumableCheckpoint`,
:class:`BestMetricState`), a JSON training history, annotator drawing and slab hold-out transforms, and the
process-group set-up for ``torchrun``.
"""

from revnets.training.checkpoints import BestMetricState, ResumableCheckpoint
from revnets.training.distributed import (
    default_backend,
    finish_distributed,
    init_distributed,
    is_main_process,
    local_device,
)
from revnets.training.history import TrainingHistory
from revnets.training.iteration import LossIteration, ModelLoss
from revnets.training.transforms import PickAnnotatord, SlabCropd

__all__ = [
    "BestMetricState",
    "LossIteration",
    "ModelLoss",
    "PickAnnotatord",
    "ResumableCheckpoint",
    "SlabCropd",
    "TrainingHistory",
    "default_backend",
    "finish_distributed",
    "init_distributed",
    "is_main_process",
    "local_device",
]
