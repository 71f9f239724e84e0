"""LossIteration over the models' own ``training_loss``: ModelLoss routes the loss through ``forward``, MONAI's
SupervisedTrainer steps on it, and the loss falls."""

from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from monai.data import DataLoader
from monai.engines import SupervisedTrainer
from monai.losses import DiceLoss
from monai.utils import CommonKeys
from torch import Tensor, nn

from revnets.models import InvResUNet
from revnets.training import LossIteration, ModelLoss


def _net() -> nn.Module:
    """A one-level InvRes U-Net with one coupling: small enough to train in seconds."""
    torch.manual_seed(0)
    return InvResUNet(3, 1, 2, channels=(4, 8), blocks=1)


def _cubes(count: int = 4) -> list[dict[str, Tensor]]:
    """Noisy ``(1, 8, 8, 8)`` images of a bright cube and its mask."""
    mask = torch.zeros(1, 8, 8, 8)
    mask[:, 2:6, 2:6, 2:6] = 1
    return [{"image": mask + 0.3 * torch.randn_like(mask), "label": mask} for _ in range(count)]


def test_model_loss_is_the_forward_with_a_label_and_the_logits_without() -> None:
    net = _net()
    image, label = _cubes(1)[0]["image"][None], _cubes(1)[0]["label"][None]
    loss = DiceLoss(to_onehot_y=True, softmax=True)
    wrapped = ModelLoss(net, loss)
    assert torch.equal(wrapped(image), net(image))
    assert torch.equal(wrapped(image, label), net.training_loss(image, label, loss).total)
    assert torch.equal(wrapped(image, label), loss(net(image), label))


def test_model_loss_refuses_a_network_without_the_model_protocol() -> None:
    with pytest.raises(TypeError, match="Conv3d is not a revnets SegmentationModel"):
        ModelLoss(nn.Conv3d(1, 2, 3))


def test_supervised_trainer_steps_on_the_models_own_loss() -> None:
    network = ModelLoss(_net())
    losses: list[float] = []
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=15,
        train_data_loader=DataLoader(_cubes(), batch_size=2),
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), lr=0.05),
        loss_function=None,
        iteration_update=LossIteration(),
        decollate=False,
    )

    @trainer.on(Events.ITERATION_COMPLETED)
    def record(engine: SupervisedTrainer) -> None:
        losses.append(float(engine.state.output[CommonKeys.LOSS]))

    trainer.run()
    assert CommonKeys.PRED not in trainer.state.output
    assert len(losses) == 30
    assert sum(losses[-4:]) / 4 < 0.5 * losses[0], losses
