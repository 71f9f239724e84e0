"""Training losses shared by the models' ``training_loss`` methods."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from torch import Tensor

from revnets.models.protocol import SegmentationLoss


def pick_annotator(x: Tensor, y: Tensor) -> Tensor:
    """One annotator per image: labels ``(B, M, *S)`` of ``M`` annotators to ``(B, 1, *S)``, drawn uniformly.

    Raises a ValueError unless ``y`` has the batch and spatial shape of the images ``x`` ``(B, C, *S)``.
    """
    if y.dim() != x.dim() or y.shape[0] != x.shape[0] or y.shape[2:] != x.shape[2:]:
        raise ValueError(f"Labels {tuple(y.shape)} do not match images {tuple(x.shape)} as (B, M, *S).")
    if y.shape[1] == 1:
        return y
    pick = torch.randint(y.shape[1], (y.shape[0],), device=y.device)
    return y[torch.arange(y.shape[0], device=y.device), pick].unsqueeze(1)


def default_segmentation_loss(output_activation: str) -> SegmentationLoss:
    """Dice + cross-entropy: over one-hot class indices for softmax, per label channel for sigmoid."""
    if output_activation == "softmax":
        return DiceCELoss(to_onehot_y=True, softmax=True)
    return DiceCELoss(sigmoid=True)


def gaussian_prior_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, 1))`` averaged over elements (SegResNetVAE's regulariser)."""
    return -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp())


def reconstruction_error(reconstruction: Tensor, image: Tensor) -> Tensor:
    """Mean squared error of a VAE's reconstruction against the input image, both ``(B, C, *S)``."""
    return F.mse_loss(reconstruction, image)
