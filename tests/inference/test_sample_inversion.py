"""InvertSamplesd inverts the grid once and looks every sample up: the same labels as inverting each sample."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    CropForegroundd,
    DivisiblePadd,
    EnsureChannelFirstd,
    Invertd,
    LoadImaged,
    Orientationd,
    Spacingd,
)

from revnets.inference import InvertSamplesd

AFFINE = np.array([[0, 0, 2.5, -40], [-3.0, 0, 0, 50], [0, 3.5, 0, -20], [0, 0, 0, 1]])


def _per_sample_inversion(samples: torch.Tensor, data: dict, preprocessing: Compose, labels: list[int]) -> np.ndarray:
    """The reference: each sample through MONAI's nearest-neighbour Invertd, ``(*input spatial, N)``."""
    inverter = Invertd(keys="samples", transform=preprocessing, orig_keys="image", nearest_interp=True)
    restored = []
    for sample in samples:
        one = MetaTensor(sample[None].float())
        out = inverter({"samples": one, "image": data["image"]})["samples"]
        restored.append(np.asarray(labels)[torch.as_tensor(out)[0].round().long().numpy()])
    return np.stack(restored, axis=-1).astype(np.uint8)


@pytest.mark.parametrize("padding_mode", ["border", "zeros"])
def test_looked_up_samples_equal_inverting_each_sample(tmp_path: Path, padding_mode: str) -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((31, 27, 22), np.float32)
    image[3:28, 4:25, 2:20] = rng.random((25, 21, 18)) * 100 + 1  # a foreground box to crop to
    nib.save(nib.Nifti1Image(image, AFFINE), tmp_path / "a.nii.gz")
    preprocessing = Compose(
        [
            LoadImaged("image"),
            EnsureChannelFirstd("image"),
            Orientationd("image", axcodes="RAS"),
            Spacingd("image", pixdim=(4.2, 3.1, 5.3), mode="bilinear", padding_mode=padding_mode),
            CropForegroundd("image", source_key="image", margin=1),
            DivisiblePadd("image", k=4),
        ]
    )
    data = preprocessing({"image": str(tmp_path / "a.nii.gz")})
    grid = data["image"].shape[1:]
    samples = torch.randint(0, 3, (5, *grid), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    labels = [0, 10, 20]

    out = InvertSamplesd("samples", preprocessing, labels=labels)({**data, "samples": samples})["samples"]

    expected = _per_sample_inversion(samples, data, preprocessing, labels)
    assert out.shape == (31, 27, 22, 5)
    assert np.array_equal(np.asarray(out), expected)
    assert len(np.unique(expected)) == 3  # the samples' labels (and the outside's) reached the input's grid
