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
from revnets.training.iteration import accumulation_window


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


def _trainer(network: nn.Module, batch_size: int, **kwargs) -> SupervisedTrainer:
    return SupervisedTrainer(
        device=torch.device("cpu"),
        max_epochs=1,
        train_data_loader=DataLoader(_cubes(2), batch_size=batch_size),
        network=network,
        optimizer=torch.optim.SGD(network.parameters(), lr=0.1),
        loss_function=None,
        iteration_update=LossIteration(),
        decollate=False,
        **kwargs,
    )


def test_accumulating_two_half_batches_takes_the_step_of_the_whole_batch() -> None:
    torch.manual_seed(1)
    data = _cubes(2)
    whole, halves = ModelLoss(_net()), ModelLoss(_net())
    for trainer in (_trainer(whole, 2), _trainer(halves, 1, accumulation_steps=2)):
        trainer.data_loader = DataLoader(data, batch_size=trainer.data_loader.batch_size)
        trainer.run()
    before = _net().state_dict()
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(halves.model.state_dict()[name], value, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(v, before[k]) for k, v in whole.model.state_dict().items())


@pytest.mark.parametrize(
    ("epoch_length", "steps", "starts", "ends"),
    [
        (5, 2, [1, 3, 5, 6, 8, 10], [2, 4, 5, 7, 9, 10]),
        (None, 3, [1, 4, 7, 10], [3, 6, 9]),
        (4, 1, list(range(1, 11)), list(range(1, 11))),
    ],
)
def test_accumulation_groups_restart_with_each_epoch_and_its_last_iteration_steps(
    epoch_length, steps, starts, ends
) -> None:
    windows = {i: accumulation_window(i, epoch_length, steps) for i in range(1, 11)}
    assert [i for i, (start, _) in windows.items() if start] == starts
    assert [i for i, (_, end) in windows.items() if end] == ends


def test_amp_runs_the_same_iteration_with_the_trainers_scaler() -> None:
    network = ModelLoss(_net())
    trainer = _trainer(network, 1, amp=True)  # without CUDA, autocast("cuda") and the GradScaler stand aside
    before = [p.detach().clone() for p in network.parameters()]
    trainer.run()
    assert trainer.scaler is not None and trainer.state.iteration == 2
    assert any(not torch.equal(p, q) for p, q in zip(network.parameters(), before))
