"""One training iteration for MONAI's ``SupervisedTrainer`` when the loss needs more than ``(logits, label)``.

``SupervisedTrainer`` computes ``loss_function(network(image), label)``. Two of our models need more: the
InvRes VAE regulariser compares a reconstruction with the input image, and PHiSeg's ELBO is a method of the
model over image and label (its posterior net sees the label). :class:`LossIteration` is the trainer's
``iteration_update``: forward, the model-specific loss, backward, optimizer step, and MONAI's output dict
(``image``, ``label``, ``pred``, ``loss``), so MONAI's handlers (``StatsHandler``, metrics, checkpoints)
work unchanged. It fires none of MONAI's ``IterationEvents`` itself; ignite's ``ITERATION_COMPLETED`` still
fires as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
from monai.utils import CommonKeys
from torch import Tensor, nn

LOSS_INPUTS = ("prediction", "prediction_and_image", "network")


class LossIteration:
    """``iteration_update`` for :class:`monai.engines.SupervisedTrainer`.

    How the trainer's ``loss_function`` is called, by ``loss_inputs``:

    - ``"prediction"``: ``loss_function(network(image), label)``, as SupervisedTrainer does (DiceCE, Dice+BCE);
    - ``"prediction_and_image"``: ``loss_function(network(image), label, image)``, e.g.
      :class:`~revnets.models.losses.InvResVAELoss`; ``pred`` is the output's ``logits`` when it has them;
    - ``"network"``: the network computes its own loss, ``network(image, label)`` returning the scalar loss
      (or ``(loss, logits)``), e.g. PHiSeg's ELBO; ``loss_function`` is not used. Calling the network (not
      one of its methods) keeps DistributedDataParallel's gradient synchronisation.

    The optimizer steps every iteration (gradient accumulation is not supported). With ``engine.amp`` on
    CUDA, the forward runs under autocast and the loss is scaled by the engine's ``GradScaler``.

    Args:
        loss_inputs: one of :data:`LOSS_INPUTS`.
    """

    def __init__(self, loss_inputs: str = "prediction") -> None:
        if loss_inputs not in LOSS_INPUTS:
            raise ValueError(f"loss_inputs must be one of {LOSS_INPUTS}, got {loss_inputs!r}.")
        self.loss_inputs = loss_inputs

    def __call__(self, engine: Any, batchdata: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run one iteration on ``batchdata`` (a collated dict with ``image`` and ``label``)."""
        if batchdata is None:
            raise ValueError("LossIteration needs a batch of data, got None.")
        batch = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)
        image, label = batch[0], batch[1]
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        scaler = engine.scaler if engine.amp else None
        with torch.autocast("cuda", **engine.amp_kwargs) if scaler is not None else nullcontext():
            loss, prediction = self.loss(engine.network, engine.loss_function, image, label)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(engine.optimizer)
            scaler.update()
        else:
            loss.backward()
            engine.optimizer.step()
        engine.state.output = {
            CommonKeys.IMAGE: image,
            CommonKeys.LABEL: label,
            CommonKeys.PRED: prediction.detach(),
            CommonKeys.LOSS: loss.detach(),
        }
        return engine.state.output

    def loss(self, network: nn.Module, loss_function: Callable | None, image: Tensor, label: Tensor) -> tuple[Tensor, Tensor]:
        """The scalar loss and the prediction ``(B, C, *spatial)`` of one forward pass."""
        if self.loss_inputs == "network":
            output = network(image, label)
            loss, prediction = output if isinstance(output, tuple) else (output, label)
            return loss.mean(), prediction
        output = network(image)
        if self.loss_inputs == "prediction_and_image":
            loss = loss_function(output, label, image)
        else:
            loss = loss_function(output, label)
        return loss.mean(), getattr(output, "logits", output)


def loss_value(output: dict[str, Tensor] | list[dict[str, Tensor]]) -> float:
    """The scalar loss of a trainer's ``state.output``, decollated (a list of dicts) or not (a dict); the
    ``output_transform`` of a ``StatsHandler`` that logs the training loss."""
    if isinstance(output, list):
        output = output[0]
    return float(output[CommonKeys.LOSS])
