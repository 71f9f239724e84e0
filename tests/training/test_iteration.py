"""LossIteration with a model that computes its own loss (the PHiSeg path): ModelLoss routes the loss through
``forward``, MONAI's SupervisedTrainer steps on it, and the loss falls."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from ignite.engine import Events
from monai.data import DataLoader
from monai.engines import SupervisedTrainer
from monai.utils import CommonKeys
from torch import Tensor, nn

from revnets.training import LossIteration, ModelLoss


@dataclass
class _Terms:
    total: Tensor
    cross_entropy: Tensor


class _SelfScoringNet(nn.Module):
    """Like PHiSeg: ``forward(x)`` gives logits, ``training_loss(x, y)`` a record of loss terms."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(1, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)

    def training_loss(self, x: Tensor, y: Tensor) -> _Terms:
        cross_entropy = F.cross_entropy(self(x), y[:, 0].long())
        return _Terms(total=cross_entropy, cross_entropy=cross_entropy)


def _cubes(count: int = 4) -> list[dict[str, Tensor]]:
    """Noisy ``(1, 8, 8, 8)`` images of a bright cube and its mask."""
    mask = torch.zeros(1, 8, 8, 8)
    mask[:, 2:6, 2:6, 2:6] = 1
    return [{"image": mask + 0.3 * torch.randn_like(mask), "label": mask} for _ in range(count)]


def test_model_loss_is_the_forward_with_a_label_and_the_logits_without() -> None:
    net = _SelfScoringNet()
    image, label = _cubes(1)[0]["image"][None], _cubes(1)[0]["label"][None]
    wrapped = ModelLoss(net)
    assert torch.equal(wrapped(image), net(image))
    assert torch.equal(wrapped(image, label), net.training_loss(image, label).total)


def test_model_loss_names_a_missing_loss_method() -> None:
    with pytest.raises(ValueError, match="no loss method 'elbo'"):
        ModelLoss(_SelfScoringNet(), method="elbo")


def test_supervised_trainer_steps_on_the_models_own_loss() -> None:
    network = ModelLoss(_SelfScoringNet())
    losses: list[float] = []
    trainer = SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=15,
        train_data_loader=DataLoader(_cubes(), batch_size=2),
        network=network,
        optimizer=torch.optim.Adam(network.parameters(), lr=0.05),
        loss_function=None,
        iteration_update=LossIteration("network"),
        decollate=False,
    )

    @trainer.on(Events.ITERATION_COMPLETED)
    def record(engine: SupervisedTrainer) -> None:
        losses.append(float(engine.state.output[CommonKeys.LOSS]))

    trainer.run()
    assert CommonKeys.PRED not in trainer.state.output
    assert len(losses) == 30
    assert sum(losses[-4:]) / 4 < 0.5 * losses[0], losses
