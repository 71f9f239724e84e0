"""PHiSeg (Baumgartner et al., MICCAI 2019) and RevPHiSeg (Gantenbein et al., 2020), 2D and 3D.

A conditional VAE with a hierarchy of latent maps. With ``R = len(channels)`` resolution levels and ``L``
latent levels, latent level ``i`` (``0`` finest) lives at ``1 / 2**(i + R - L)`` of the image size:

- the **prior** ``p(z | x)`` and the **posterior** ``q(z | x, y)`` are the same network (:class:`LatentHierarchy`)
  on the image, or on the image and the one-hot label minus 0.5: an encoder of ``R`` conv stacks joined by
  average pooling, then, from the coarsest latent level down, a conv stack over the encoder features at that
  level concatenated with the upsampled latent of the level below, and two 1x1 heads for the mean and the
  (softplus) standard deviation of a diagonal Gaussian. When training, the prior is conditioned on the
  posterior's samples, so that the KL terms compare ``q(z_i | z_>i, x, y)`` with ``p(z_i | z_>i, x)``;
- the **likelihood** ``p(y | z)`` (:class:`Likelihood`) lifts every latent to ``2**(R - L)`` times its
  resolution, combines them coarse to fine as a U-Net decoder does, and predicts logits at each latent level;
  their sum over levels ``>= i`` is the level-``i`` prediction, and the sum over all levels is the output.

The loss (:meth:`PHiSeg.training_loss`) is the reference's: the cross-entropy of every level's prediction
(deep supervision), summed over voxels, plus the KL divergence between posterior and prior at every level,
weighted ``4**i`` ("exponential weighting"), both averaged over the batch.

:class:`RevPHiSeg` (``couplings=True``) builds every conv stack as a 1x1 channel change followed by
additive couplings (depth 3 in the encoders and latent blocks, 2 in the decoder), whose activations are
recomputed in backward (``form="reversible"``, its default). ``form="plain"`` runs that same network under
ordinary autograd (the exact twin), and ``form="checkpointed"`` recomputes each conv stack from its input
instead (the third point of comparison; also available for PHiSeg, whose default form is plain).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import torch
import torch.nn.functional as F
from monai.networks.layers.factories import Conv, Pool
from torch import Tensor, nn

from revnets.blocks.conv_stack import UPSAMPLE_MODES, ConvStack
from revnets.core.form import Form, resolve_form
from revnets.models.losses import pick_annotator
from revnets.models.protocol import Sampling, SegmentationLoss, TrainingLoss
from revnets.models.sampling import probabilities


def _stack(stacks: nn.ModuleList, index: int) -> ConvStack:
    return cast(ConvStack, stacks[index])


@dataclass
class Latents:
    """Samples and parameters of a latent hierarchy, finest level first; each ``(B, latent_channels, *S_i)``."""

    z: list[Tensor]
    mu: list[Tensor]
    sigma: list[Tensor]


class LatentHierarchy(nn.Module):
    """Prior or posterior network: ``(B, in_channels, *S)`` to Gaussian latents at ``latent_levels`` levels.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels (prior) or image plus label channels (posterior).
        channels: encoder width at each resolution level, finest first.
        latent_levels: number of latent levels ``L`` (the coarsest ``L`` resolution levels carry one each).
        latent_channels: channels of each latent map.
        stack: builds a conv stack from ``(in_channels, out_channels, depth)``.
        encoder_depth: depth of the encoder's conv stacks.
        latent_depth: depth of the conv stack before each latent's heads.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        channels: Sequence[int],
        latent_levels: int,
        latent_channels: int,
        stack: partial[ConvStack],
        encoder_depth: int,
        latent_depth: int,
    ) -> None:
        super().__init__()
        self.offset = len(channels) - latent_levels
        self.pool = Pool[Pool.AVG, spatial_dims](kernel_size=2)
        widths = [in_channels, *channels]
        self.encoder = nn.ModuleList(stack(widths[r], widths[r + 1], encoder_depth) for r in range(len(channels)))
        lifted = latent_channels * channels[0]
        self.lift = nn.ModuleList(stack(latent_channels, lifted, 2) for _ in range(latent_levels - 1))
        self.blocks = nn.ModuleList(
            stack(channels[i + self.offset] + (lifted if i < latent_levels - 1 else 0), channels[i], latent_depth)
            for i in range(latent_levels)
        )
        conv = Conv[Conv.CONV, spatial_dims]
        self.mu = nn.ModuleList(conv(channels[i], latent_channels, 1) for i in range(latent_levels))
        self.sigma = nn.ModuleList(conv(channels[i], latent_channels, 1) for i in range(latent_levels))
        self._start_at_standard_normal()

    def _start_at_standard_normal(self) -> None:
        """Zero the heads' weights so that every level starts at ``N(0, 1)``, whatever the features' scale.

        The reversible stacks end in an addition, not a normalisation, so their features grow with depth; with
        default heads the prior's ``sigma`` started as low as 1e-4 and the KL term at 1e6-1e10. Zero weights
        (mean bias 0, ``sigma`` bias ``log(e - 1)``) make prior and posterior equal at initialisation (KL 0);
        the heads' weights still receive gradients from the first step.
        """
        for mu, sigma in zip(self.mu, self.sigma):
            for head, bias in ((mu, 0.0), (sigma, math.log(math.e - 1))):
                nn.init.zeros_(cast(Tensor, head.weight))
                nn.init.constant_(cast(Tensor, head.bias), bias)

    def encode(self, x: Tensor) -> list[Tensor]:
        """Encoder features at the latent levels, finest first: ``(B, channels[i + R - L], *S / 2**(i + R - L))``."""
        features = []
        for r, block in enumerate(self.encoder):
            x = block(x if r == 0 else self.pool(x))
            features.append(x)
        return features[self.offset :]

    def latents(
        self, features: list[Tensor], noise: Sequence[Tensor] | None = None, condition: Sequence[Tensor] | None = None
    ) -> Latents:
        """Sample the hierarchy from the coarsest level down.

        Args:
            features: :meth:`encode`'s output.
            noise: standard normal noise per level, shaped like the latents; drawn here when None.
            condition: latents to condition each finer level on instead of this network's own samples
                (the posterior's, when the prior is trained).
        """
        levels = len(self.blocks)
        z: list[Tensor] = [torch.empty(0)] * levels
        mu, sigma = list(z), list(z)
        below: Tensor | None = None
        for i in reversed(range(levels)):
            if below is None:
                h = self.blocks[i](features[i])
            else:
                lifted = _stack(self.lift, i).forward_upsampled(below)
                h = _stack(self.blocks, i).forward_concatenated([features[i], lifted])
            mu[i], sigma[i] = self.mu[i](h), F.softplus(self.sigma[i](h))
            eps = torch.randn_like(mu[i]) if noise is None else noise[i].to(mu[i])
            z[i] = mu[i] + sigma[i] * eps
            below = z[i] if condition is None else condition[i]
        return Latents(z, mu, sigma)

    def forward(
        self, x: Tensor, noise: Sequence[Tensor] | None = None, condition: Sequence[Tensor] | None = None
    ) -> Latents:
        return self.latents(self.encode(x), noise, condition)


class Likelihood(nn.Module):
    """``p(y | z)``: latents (finest first) to per-level logits ``(B, out_channels, *S)`` at the image size.

    Args:
        spatial_dims: 2 or 3.
        out_channels: classes.
        channels: widths per resolution level, finest first (as for :class:`LatentHierarchy`).
        latent_levels: ``L``.
        latent_channels: channels of each latent map.
        stack: builds a conv stack from ``(in_channels, out_channels, depth)``.
        depth: depth of the conv stacks that read a latent and that combine two levels.
    """

    def __init__(
        self,
        spatial_dims: int,
        out_channels: int,
        channels: Sequence[int],
        latent_levels: int,
        latent_channels: int,
        stack: partial[ConvStack],
        depth: int,
    ) -> None:
        super().__init__()
        self.offset = len(channels) - latent_levels
        levels = range(latent_levels)
        self.read = nn.ModuleList(stack(latent_channels, channels[i], depth) for i in levels)
        self.lift = nn.ModuleList(
            nn.ModuleList(stack(channels[i], channels[i], 1) for _ in range(self.offset)) for i in levels
        )
        combined = [channels[i + self.offset] for i in levels[:-1]] + [channels[latent_levels - 1]]
        self.up = nn.ModuleList(stack(combined[i + 1], channels[i], 1) for i in levels[:-1])
        self.combine = nn.ModuleList(stack(2 * channels[i], combined[i], depth) for i in levels[:-1])
        conv = Conv[Conv.CONV, spatial_dims]
        self.heads = nn.ModuleList(conv(combined[i], out_channels, 1) for i in levels)

    def forward(self, z: Sequence[Tensor]) -> list[Tensor]:
        """Logits of each level alone, finest first; the prediction of level ``i`` is the sum over levels ``>= i``."""
        lifted = []
        for i, zi in enumerate(z):
            h = self.read[i](zi)
            for step in cast(list[ConvStack], self.lift[i]):
                h = step.forward_upsampled(h)
            lifted.append(h)
        # Each level's head runs as soon as its features exist, so that backward, which visits the latest
        # operations first, takes a level's head and its combining stack together instead of holding the
        # gradients of every level's features at once.
        h = lifted[-1]
        logits = [self._head(len(z) - 1, h)]
        for i in reversed(range(len(z) - 1)):
            up = _stack(self.up, i).forward_upsampled(h)
            h = _stack(self.combine, i).forward_concatenated([lifted[i], up])
            logits.insert(0, self._head(i, h))
        return logits

    def _head(self, level: int, h: Tensor) -> Tensor:
        """Logits of ``level`` from its combined features ``(B, C, *S / 2**level)``, at the image size."""
        s = self.heads[level](h)
        return F.interpolate(s, scale_factor=2**level, mode="nearest") if level else s


class PHiSeg(nn.Module):
    """PHiSeg, or with ``couplings=True`` RevPHiSeg: several plausible segmentations of one image.

    Input ``(B, in_channels, *S)`` with every spatial size divisible by :attr:`size_divisor`
    (``2**(len(channels) - 1)``); labels are class indices ``(B, 1, *S)``, or ``(B, M, *S)`` from ``M``
    annotators, of which :meth:`training_loss` draws one per image.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels.
        out_channels: classes (softmax).
        channels: widths per resolution level, finest first (the reference: 32, 64, 128, 192, 192, 192, 192).
        latent_levels: latent levels ``L`` (the reference: 5), at most ``len(channels)``.
        latent_channels: channels of each latent map (the reference: 2).
        norm: ``"batch"`` (the reference), ``"instance"`` or ``"group"``.
        couplings: RevPHiSeg's conv stacks (1x1 channel change + additive couplings).
        form: :class:`~revnets.core.Form`: reversible (needs ``couplings``; its default), plain (ordinary
            autograd; the default without couplings) or checkpointed (each conv stack recomputed from its
            input in backward).
        kl_level_weight: the KL term of level ``i`` is weighted ``kl_level_weight**i`` (the reference: 4).
        reversible, memory_saving, checkpointing: the first release's keywords (``reversible`` meant
            ``couplings``); deprecated.
    """

    output_activation = "softmax"
    sampling = Sampling.LATENT_NOISE

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        out_channels: int = 2,
        channels: Sequence[int] = (32, 64, 128, 192, 192, 192, 192),
        latent_levels: int = 5,
        latent_channels: int = 2,
        norm: str = "batch",
        couplings: bool = False,
        form: Form | str | None = None,
        kl_level_weight: float = 4.0,
        reversible: bool | None = None,
        memory_saving: bool | None = None,
        checkpointing: bool | None = None,
    ) -> None:
        super().__init__()
        if reversible is not None:
            warnings.warn(
                "PHiSeg: reversible= is deprecated and will be removed in the next release; use RevPHiSeg or "
                "couplings=True.",
                DeprecationWarning,
                stacklevel=2,
            )
            couplings = reversible
        default = Form.REVERSIBLE if couplings else Form.PLAIN
        form = resolve_form(
            type(self).__name__, form, default, memory_saving=memory_saving, checkpointing=checkpointing
        )
        if form is Form.REVERSIBLE and not couplings:
            raise ValueError(f"{type(self).__name__}: PHiSeg's conv stacks have no reversible form; use RevPHiSeg.")
        if spatial_dims not in UPSAMPLE_MODES:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}.")
        if not 1 <= latent_levels <= len(channels):
            raise ValueError(
                f"latent_levels must be in [1, {len(channels)}] for {len(channels)} levels, got {latent_levels}."
            )
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.channels = tuple(channels)
        self.latent_levels = latent_levels
        self.latent_channels = latent_channels
        self.couplings = couplings
        self.form = form
        self.kl_level_weight = kl_level_weight
        self.size_divisor = 2 ** (len(channels) - 1)
        stack = partial(ConvStack, spatial_dims, norm=norm, couplings=couplings, form=form)
        hierarchy = partial(
            LatentHierarchy,
            spatial_dims,
            channels=channels,
            latent_levels=latent_levels,
            latent_channels=latent_channels,
            stack=stack,
            encoder_depth=3,
            latent_depth=3 if couplings else 2,
        )
        self.prior = hierarchy(in_channels)
        self.posterior = hierarchy(in_channels + out_channels)
        self.likelihood = Likelihood(
            spatial_dims, out_channels, channels, latent_levels, latent_channels, stack, depth=2
        )

    @property
    def latent_scales(self) -> list[int]:
        """Down-sampling factor of each latent level relative to the image, finest first."""
        offset = len(self.channels) - self.latent_levels
        return [2 ** (i + offset) for i in range(self.latent_levels)]

    def check_input(self, x: Tensor) -> None:
        """A ValueError naming the problem unless ``x`` is ``(B, in_channels, *S)`` with divisible sizes."""
        if x.dim() != self.spatial_dims + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"PHiSeg expects (B, {self.in_channels}, {', '.join('S' * self.spatial_dims)}), got {tuple(x.shape)}."
            )
        if any(s % self.size_divisor for s in x.shape[2:]):
            raise ValueError(f"PHiSeg needs spatial sizes divisible by {self.size_divisor}, got {tuple(x.shape[2:])}.")

    def latent_noise(self, x: Tensor, num_samples: int, generator: torch.Generator | None = None) -> list[Tensor]:
        """Standard normal noise for ``num_samples`` prior samples of ``x``: per level
        ``(N, B, latent_channels, *S_i)``."""
        batch, spatial = x.shape[0], x.shape[2:]
        return [
            torch.randn((num_samples, batch, self.latent_channels, *(s // f for s in spatial)), generator=generator).to(
                x
            )
            for f in self.latent_scales
        ]

    def encode_prior(self, x: Tensor) -> list[Tensor]:
        """The prior's encoder features, the part of a prior sample that does not depend on the noise."""
        self.check_input(x)
        return self.prior.encode(x)

    def decode_prior(self, features: list[Tensor], noise: Sequence[Tensor] | None = None) -> Tensor:
        """Logits ``(B, out_channels, *S)`` of one prior sample from :meth:`encode_prior`'s features and
        per-level noise."""
        return torch.stack(self.likelihood(self.prior.latents(features, noise).z)).sum(0)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, out_channels, *S)`` of one sample from the prior."""
        return self.decode_prior(self.encode_prior(x))

    @torch.no_grad()
    def sample(self, x: Tensor, num_samples: int, noise: Sequence[Tensor] | None = None, batch_size: int = 4) -> Tensor:
        """Class probabilities ``(N, B, out_channels, *S)`` of ``num_samples`` prior samples.

        The prior's encoder runs once; its latent blocks and the likelihood run per sample, ``batch_size``
        samples at a time. ``noise`` (per level ``(N, B, latent_channels, *S_i)``, see :meth:`latent_noise`)
        fixes the samples, e.g. to keep them coherent across the windows of a large volume.
        """
        features = self.encode_prior(x)
        noise = self.latent_noise(x, num_samples) if noise is None else noise
        batch = x.shape[0]
        chunks = []
        for start in range(0, num_samples, batch_size):
            count = min(batch_size, num_samples - start)
            repeated = [f.repeat(count, *([1] * (f.dim() - 1))) for f in features]
            eps = [n[start : start + count].flatten(0, 1) for n in noise]
            logits = self.decode_prior(repeated, eps)
            chunks.append(probabilities(logits, "softmax").unflatten(0, (count, batch)))
        return torch.cat(chunks)

    def _posterior(self, x: Tensor, y: Tensor) -> Latents:
        onehot = F.one_hot(y[:, 0].long(), self.out_channels).movedim(-1, 1).to(x)
        return self.posterior(torch.cat([x, onehot - 0.5], dim=1))

    def reconstruct(self, x: Tensor, y: Tensor) -> Tensor:
        """Logits ``(B, out_channels, *S)`` of one posterior sample given the image and its labels ``(B, 1, *S)``."""
        self.check_input(x)
        return torch.stack(self.likelihood(self._posterior(x, y).z)).sum(0)

    def training_loss(self, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None) -> TrainingLoss:
        """The reference's loss for images ``(B, in_channels, *S)`` and labels ``(B, M, *S)`` (one annotator
        drawn per image): terms ``reconstruction`` and ``kl``, one entry per level.

        PHiSeg's loss is its evidence lower bound, with cross-entropy as the likelihood term: a
        ``segmentation_loss`` cannot replace it, and passing one raises a ValueError.
        """
        if segmentation_loss is not None:
            raise ValueError(f"{type(self).__name__} trains on its own ELBO; segmentation_loss must be None.")
        self.check_input(x)
        y = pick_annotator(x, y)
        q = self._posterior(x, y)
        p = self.prior(x, condition=q.z)
        target = y[:, 0].long()
        batch = x.shape[0]
        levels = self.likelihood(q.z)
        reconstruction: list[Tensor] = []
        accumulated = torch.zeros_like(levels[0])
        for s in reversed(levels):
            accumulated = accumulated + s
            reconstruction.insert(0, F.cross_entropy(accumulated, target, reduction="sum") / batch)
        kl = [
            self.kl_level_weight**i * gaussian_kl(q.mu[i], q.sigma[i], p.mu[i], p.sigma[i]) / batch
            for i in range(self.latent_levels)
        ]
        terms = {"reconstruction": torch.stack(reconstruction), "kl": torch.stack(kl)}
        return TrainingLoss(terms["reconstruction"].sum() + terms["kl"].sum(), terms)


class RevPHiSeg(PHiSeg):
    """:class:`PHiSeg` with ``couplings=True``: the same arguments, RevPHiSeg's conv stacks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("couplings", True)
        super().__init__(*args, **kwargs)


def gaussian_kl(mu_q: Tensor, sigma_q: Tensor, mu_p: Tensor, sigma_p: Tensor, eps: float = 1e-10) -> Tensor:
    """``KL(N(mu_q, sigma_q^2) || N(mu_p, sigma_p^2))`` of diagonal Gaussians, summed over all elements."""
    var_q, var_p = sigma_q.square(), sigma_p.square()
    ratio = (var_q + (mu_q - mu_p).square()) / (var_p + eps)
    return 0.5 * (ratio + torch.log(var_p + eps) - torch.log(var_q + eps) - 1).sum()
