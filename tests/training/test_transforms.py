"""The hold-out slabs of a single subject and the annotator drawing of a multi-rater label."""

from __future__ import annotations

import torch
from monai.data import MetaTensor

from revnets.training import PickAnnotatord, SlabCropd


def test_training_and_validation_slabs_split_the_axis_and_move_the_affine() -> None:
    volume = MetaTensor(torch.arange(2 * 5 * 6 * 10, dtype=torch.float32).reshape(2, 5, 6, 10))
    train = SlabCropd("image", axis=2, start=0.0, stop=0.75)({"image": volume})["image"]
    held_out = SlabCropd("image", axis=2, start=0.75, stop=1.0)({"image": volume})["image"]
    assert (train.shape[-1], held_out.shape[-1]) == (8, 2)
    assert torch.equal(torch.cat([train.as_tensor(), held_out.as_tensor()], dim=-1), volume.as_tensor())
    assert held_out.affine[2, 3] == 8.0


def test_a_fixed_annotator_is_kept_for_validation() -> None:
    label = torch.stack([torch.full((3, 3, 3), float(k)) for k in range(4)])
    picked = PickAnnotatord("label", index=1)({"label": label})["label"]
    assert picked.shape == (1, 3, 3, 3)
    assert torch.all(picked == 1)


def test_training_draws_every_annotator() -> None:
    label = torch.stack([torch.full((2, 2, 2), float(k)) for k in range(4)])
    pick = PickAnnotatord("label")
    pick.set_random_state(seed=0)
    drawn = {int(pick({"label": label})["label"][0, 0, 0, 0]) for _ in range(40)}
    assert drawn == {0, 1, 2, 3}
