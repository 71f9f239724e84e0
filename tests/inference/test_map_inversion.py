"""InvertMapsd inverts the float maps in one resampling: the same values as MONAI's Invertd on each map."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, CropForegroundd, EnsureChannelFirstd, Invertd, LoadImaged, Orientationd, Spacingd

from revnets.inference import InvertMapsd

AFFINE = np.array([[0, 0, 2.5, -40], [-3.0, 0, 0, 50], [0, 3.5, 0, -20], [0, 0, 0, 1]])
MAPS = ("probabilities", "entropy", "mutual_info", "expected_cross_entropy")


def _preprocessed(tmp_path: Path) -> tuple[Compose, dict]:
    rng = np.random.default_rng(1)
    image = np.zeros((29, 25, 21), np.float32)
    image[3:26, 4:22, 2:19] = rng.random((23, 18, 17)) * 100 + 1
    nib.save(nib.Nifti1Image(image, AFFINE), tmp_path / "a.nii.gz")
    preprocessing = Compose(
        [
            LoadImaged("image"),
            EnsureChannelFirstd("image"),
            Orientationd("image", axcodes="RAS"),
            Spacingd("image", pixdim=(2.1, 3.3, 4.2), mode="bilinear"),
            CropForegroundd("image", source_key="image", margin=1),
        ]
    )
    return preprocessing, preprocessing({"image": str(tmp_path / "a.nii.gz")})


def _maps(grid: torch.Size) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {key: torch.rand((3 if key == "probabilities" else 1, *grid), generator=generator) for key in MAPS}


def test_stacked_inversion_equals_inverting_each_map(tmp_path: Path) -> None:
    preprocessing, data = _preprocessed(tmp_path)
    maps = _maps(data["image"].shape[1:])

    out = InvertMapsd(list(MAPS), preprocessing, outputs=MAPS)({**data, **maps})

    for key in MAPS:
        inverter = Invertd(keys=key, transform=preprocessing, orig_keys="image", nearest_interp=False)
        expected = torch.as_tensor(inverter({key: MetaTensor(maps[key]), "image": data["image"]})[key])
        assert out[key].shape == (maps[key].shape[0], 29, 25, 21)
        torch.testing.assert_close(torch.as_tensor(out[key]), expected, rtol=0, atol=1e-6)
    assert float(out["entropy"].abs().sum()) > 0


def test_only_the_written_maps_and_the_probabilities_are_inverted(tmp_path: Path) -> None:
    preprocessing, data = _preprocessed(tmp_path)
    maps = _maps(data["image"].shape[1:])

    out = InvertMapsd(list(MAPS), preprocessing, outputs=("seg", "entropy"))({**data, **maps})

    assert set(MAPS) & set(out) == {"probabilities", "entropy"}
    assert out["probabilities"].shape[1:] == out["entropy"].shape[1:] == (29, 25, 21)
