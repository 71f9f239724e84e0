"""SamplingInferer's bfloat16 precision: the same maps as float32 within bfloat16's rounding, float32 elsewhere."""

from __future__ import annotations

import pytest
import torch

from revnets.inference import SamplingInferer
from revnets.inference.inferer import fast_bfloat16
from revnets.models import InvResUNet, RevPHiSeg


def _maps(model: torch.nn.Module, precision: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(1, 1, 20, 16, 12)
    inferer = SamplingInferer((16, 16, 16), num_samples=4, seed=3, size_divisor=8, precision=precision)
    return inferer(x, model)


@pytest.mark.parametrize(
    "model",
    [
        InvResUNet(3, 1, 3, channels=(8, 16), blocks=1, variant="full", dropout=0.2),
        RevPHiSeg(3, 1, 3, channels=(8, 16, 16, 32), latent_levels=2, norm="instance"),
    ],
    ids=["invres", "revphiseg"],
)
def test_bfloat16_maps_are_float32_maps_within_bfloat16_rounding(model: torch.nn.Module) -> None:
    torch.manual_seed(1)
    model.eval()
    exact, fast = _maps(model, "float32"), _maps(model, "bfloat16")
    difference = (fast["probabilities"] - exact["probabilities"]).abs()
    assert fast["probabilities"].dtype == torch.float32
    assert difference.max() < 0.05 and difference.mean() < 5e-3
    for name in ("entropy", "mutual_info", "variance"):
        assert (fast[name] - exact[name]).abs().max() < 0.05, name
    if fast_bfloat16(torch.device("cpu")):
        assert difference.max() > 0  # bfloat16 did run
    else:
        assert difference.max() == 0  # no fast bfloat16 here: float32


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        SamplingInferer((16, 16, 16), precision="float16")
