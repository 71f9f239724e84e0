"""The contract between segmentation models and the code that trains and runs them.

Inference (:mod:`revnets.inference`) and training (:mod:`revnets.training`) depend on this protocol only,
never on a model's class or on attributes they probe for. A model declares how its samples are drawn by
:attr:`SegmentationModel.sampling`:

- :attr:`Sampling.DROPOUT_FLIPS`: a deterministic network sampled by MC dropout and test-time flips;
- :attr:`Sampling.LATENT_NOISE`: a latent-variable model (PHiSeg) that also satisfies
  :class:`LatentNoiseModel`, so one latent noise field per sample can cover a whole volume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from torch import Tensor

from revnets.core.form import Form


class Sampling(str, Enum):
    """How a model draws plausible segmentations."""

    DROPOUT_FLIPS = "dropout_flips"
    LATENT_NOISE = "latent_noise"


@dataclass
class TrainingLoss:
    """What every model's ``training_loss`` returns.

    Attributes:
        total: the scalar to minimise.
        terms: its named parts, each a scalar or a per-level vector (for logging), e.g. ``segmentation``,
            ``reconstruction``, ``kl``.
    """

    total: Tensor
    terms: Mapping[str, Tensor] = field(default_factory=dict)


SegmentationLoss = Callable[[Tensor, Tensor], Tensor]
"""``loss(logits (B, C, *S), labels (B, 1, *S)) -> scalar``, e.g. ``monai.losses.DiceCELoss``."""


@runtime_checkable
class SegmentationModel(Protocol):
    """A segmentation network that revnets can train, sample and run over whole volumes.

    ``forward(x)`` maps ``(B, in_channels, *S)`` (every spatial size a multiple of ``size_divisor``) to logits
    ``(B, out_channels, *S)``.
    """

    spatial_dims: int
    in_channels: int
    out_channels: int
    form: Form
    output_activation: str
    sampling: Sampling

    @property
    def size_divisor(self) -> int: ...

    def __call__(self, x: Tensor) -> Tensor: ...

    def sample(self, x: Tensor, num_samples: int) -> Tensor:
        """Class probabilities ``(N, B, out_channels, *S)`` of ``num_samples`` plausible segmentations."""
        ...

    def training_loss(
        self, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None
    ) -> TrainingLoss:
        """The loss of images ``(B, in_channels, *S)`` against labels ``(B, M, *S)`` (``M`` annotators)."""
        ...


@runtime_checkable
class LatentNoiseModel(SegmentationModel, Protocol):
    """A model whose samples are decided by standard normal latent noise (:attr:`Sampling.LATENT_NOISE`).

    ``latent_scales[i]`` is the down-sampling factor of latent level ``i`` and ``latent_channels`` its
    channels; ``sample(x, n, noise=...)`` takes per level ``(N, B, latent_channels, *S / latent_scales[i])``.
    """

    latent_channels: int

    @property
    def latent_scales(self) -> Sequence[int]: ...

    def sample(self, x: Tensor, num_samples: int, noise: Sequence[Tensor] | None = None) -> Tensor: ...
