"""The training step for MONAI's ``SupervisedTrainer`` through the models' own ``training_loss``.

Every model in :mod:`revnets.models` computes its loss from image and label with ``training_loss`` (see
:class:`~revnets.models.SegmentationModel`): the InvRes VAE regulariser compares a reconstruction with the
input image, and PHiSeg's ELBO needs the label inside the network (its posterior). :class:`ModelLoss` turns
that method into a module's ``forward`` so that ``DistributedDataParallel`` can wrap it, and
:class:`LossIteration` is the trainer's ``iteration_update`` that calls it.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from monai.engines import IterationEvents
from monai.utils import CommonKeys
from torch import Tensor, nn

from revnets.models.protocol import SegmentationLoss, SegmentationModel


class LossIteration:
    """``iteration_update`` for :class:`monai.engines.SupervisedTrainer`: forward, loss, backward, step.

    The trainer's ``network`` is a :class:`ModelLoss` (possibly inside ``DistributedDataParallel``):
    ``network(image, label)`` returns the scalar loss; the trainer's ``loss_function`` is not called and
    the output has no ``pred``. The output is MONAI's dict (``image``, ``label``, ``loss``) and MONAI's
    ``IterationEvents`` fire as in ``SupervisedTrainer``'s own iteration, so MONAI's handlers work
    unchanged. The trainer's ``amp`` (``torch.autocast("cuda", **amp_kwargs)`` around the loss and its
    ``GradScaler`` around backward and step; the reversible backward recomputes under the forward's autocast
    state) and ``accumulation_steps`` (the loss divided by the steps, one optimiser step every
    ``accumulation_steps`` iterations and at the end of an epoch) work as in ``SupervisedTrainer``.
    """

    def __call__(self, engine: Any, batchdata: dict[str, Tensor]) -> dict[str, Tensor]:
        """One iteration on a collated batch with ``image`` ``(B, C_in, *spatial)`` and ``label``."""
        if batchdata is None:
            raise ValueError("LossIteration needs a batch of data, got None.")
        image, label = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[:2]
        engine.state.output = output = {CommonKeys.IMAGE: image, CommonKeys.LABEL: label}
        steps = engine.accumulation_steps
        starts, ends = accumulation_window(engine.state.iteration, engine.state.epoch_length, steps)
        scaler = engine.scaler if engine.amp else None
        engine.network.train()
        if starts:
            engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        with torch.autocast("cuda", **engine.amp_kwargs) if scaler is not None else nullcontext():
            loss = engine.network(image, label)
        engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        output[CommonKeys.LOSS] = loss.mean()
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        share = output[CommonKeys.LOSS] / steps
        (share if scaler is None else scaler.scale(share)).backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        if ends and scaler is not None:
            scaler.step(engine.optimizer)
            scaler.update()
        elif ends:
            engine.optimizer.step()
        # MODEL_COMPLETED is where MONAI decollates the output (decollate=True) into a new engine.state.output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


def accumulation_window(iteration: int, epoch_length: int | None, steps: int) -> tuple[bool, bool]:
    """Whether the 1-based ``iteration`` starts (zero the gradients) and ends (step) a group of ``steps``
    accumulated iterations; groups restart with each epoch of ``epoch_length`` iterations, whose last
    iteration always steps."""
    index = iteration - 1 if epoch_length is None else (iteration - 1) % epoch_length
    ends = (index + 1) % steps == 0 or (epoch_length is not None and index + 1 == epoch_length)
    return index % steps == 0, ends


class ModelLoss(nn.Module):
    """A model whose training loss is its ``training_loss`` method, as a module that computes it in ``forward``.

    ``forward(image)`` is ``model(image)`` (validation, inference); ``forward(image, label)`` is
    ``model.training_loss(image, label, segmentation_loss).total``. Calling the loss through ``forward`` is
    what lets ``DistributedDataParallel`` wrap the model and average its gradients. The wrapper has no
    parameters of its own: save and load ``model``'s state dict.

    Args:
        model: a :class:`~revnets.models.SegmentationModel`.
        segmentation_loss: ``loss(logits, label)`` handed to ``training_loss`` (None: the model's default;
            PHiSeg's loss is its ELBO and takes none).
    """

    def __init__(self, model: nn.Module, segmentation_loss: SegmentationLoss | None = None) -> None:
        super().__init__()
        if not isinstance(model, SegmentationModel):
            raise TypeError(f"{type(model).__name__} is not a revnets SegmentationModel (it has no training_loss).")
        self.model = model
        self.segmentation_loss = segmentation_loss

    def forward(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """Logits ``(B, C, *spatial)`` without ``label``; with it, the scalar training loss."""
        if label is None:
            return self.model(image)
        return self.model.training_loss(image, label, self.segmentation_loss).total
