"""The training step for MONAI's ``SupervisedTrainer`` when the loss needs more than ``(logits, label)``.

``SupervisedTrainer`` computes ``loss_function(network(image), label)``. Two of our model families need more:
the InvRes VAE regulariser compares a reconstruction with the input image, and PHiSeg's ELBO is a method of
the model over image and label (its posterior net sees the label). :class:`LossIteration` is the trainer's
``iteration_update`` for both; :class:`ModelLoss` turns a model's loss method into its ``forward`` so that
``DistributedDataParallel`` can wrap it.
"""

from __future__ import annotations

from typing import Any

from monai.engines import IterationEvents
from monai.utils import CommonKeys
from torch import Tensor, nn

LOSS_INPUTS = ("prediction_and_image", "network")


class LossIteration:
    """``iteration_update`` for :class:`monai.engines.SupervisedTrainer`: forward, loss, backward, step.

    How the loss is computed, by ``loss_inputs``:

    - ``"prediction_and_image"``: ``loss_function(network(image), label, image)``, e.g.
      :class:`~revnets.models.losses.InvResVAELoss`; ``pred`` in the output is the network output's
      ``logits`` when it has them (an :class:`~revnets.models.invres.InvResOutput`), else the output;
    - ``"network"``: ``network(image, label)`` returns the scalar loss itself (a :class:`ModelLoss`, e.g. over
      PHiSeg's ``training_loss``); the trainer's ``loss_function`` is not called and the output has no ``pred``.

    The output is MONAI's dict (``image``, ``label``, ``pred``, ``loss``) and MONAI's ``IterationEvents`` fire
    as in ``SupervisedTrainer``'s own iteration, so MONAI's handlers work unchanged. Automatic mixed
    precision and gradient accumulation are not supported (a ValueError says so).

    Args:
        loss_inputs: one of :data:`LOSS_INPUTS`.
    """

    def __init__(self, loss_inputs: str = "prediction_and_image") -> None:
        if loss_inputs not in LOSS_INPUTS:
            raise ValueError(f"loss_inputs must be one of {LOSS_INPUTS}, got {loss_inputs!r}.")
        self.loss_inputs = loss_inputs

    def __call__(self, engine: Any, batchdata: dict[str, Tensor]) -> dict[str, Tensor]:
        """One iteration on a collated batch with ``image`` ``(B, C_in, *spatial)`` and ``label``."""
        if batchdata is None:
            raise ValueError("LossIteration needs a batch of data, got None.")
        if engine.amp or engine.accumulation_steps > 1:
            raise ValueError("LossIteration supports neither amp nor accumulation_steps > 1 of SupervisedTrainer.")
        image, label = engine.prepare_batch(batchdata, engine.state.device, engine.non_blocking, **engine.to_kwargs)[:2]
        engine.state.output = output = {CommonKeys.IMAGE: image, CommonKeys.LABEL: label}
        engine.network.train()
        engine.optimizer.zero_grad(set_to_none=engine.optim_set_to_none)
        if self.loss_inputs == "network":
            loss = engine.network(image, label)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
        else:
            prediction = engine.network(image)
            output[CommonKeys.PRED] = getattr(prediction, "logits", prediction)
            engine.fire_event(IterationEvents.FORWARD_COMPLETED)
            loss = engine.loss_function(prediction, label, image)
        output[CommonKeys.LOSS] = loss.mean()
        engine.fire_event(IterationEvents.LOSS_COMPLETED)
        output[CommonKeys.LOSS].backward()
        engine.fire_event(IterationEvents.BACKWARD_COMPLETED)
        engine.optimizer.step()
        # MODEL_COMPLETED is where MONAI decollates the output (decollate=True) into a new engine.state.output
        engine.fire_event(IterationEvents.MODEL_COMPLETED)
        return engine.state.output


class ModelLoss(nn.Module):
    """A model whose training loss is one of its methods, as a module that computes it in ``forward``.

    ``forward(image)`` is ``model(image)`` (validation, inference); ``forward(image, label)`` is
    ``model.<method>(image, label)``, or its ``total`` when the method returns a record of loss terms (PHiSeg's
    ``training_loss`` returns ``PHiSegLoss(total, reconstruction, kl)``). Calling the loss through ``forward``
    is what lets ``DistributedDataParallel`` wrap the model and average its gradients. The wrapper has no
    parameters of its own: save and load ``model``'s state dict.

    Args:
        model: the network, e.g. :class:`~revnets.models.PHiSeg`.
        method: the name of the model's loss method, called as ``method(image, label)``.
    """

    def __init__(self, model: nn.Module, method: str = "training_loss") -> None:
        super().__init__()
        if not callable(getattr(model, method, None)):
            raise ValueError(f"{type(model).__name__} has no loss method {method!r}.")
        self.model = model
        self.method = method

    def forward(self, image: Tensor, label: Tensor | None = None) -> Tensor:
        """Logits ``(B, C, *spatial)`` without ``label``; with it, the scalar training loss."""
        if label is None:
            return self.model(image)
        loss = getattr(self.model, self.method)(image, label)
        return getattr(loss, "total", loss)
