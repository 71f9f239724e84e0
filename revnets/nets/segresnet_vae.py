"""SegResNetVAE (Myronenko, 2018): the reversible SegResNet twin plus MONAI's VAE regulariser.

The VAE branch is MONAI's, ordinary: from the encoder's coarsest output a strided convolution, a Gaussian
latent of ``vae_nz`` values (fully connected layers), and back up through the *same* decoder levels as the
segmentation (reversible, without skips) to a reconstruction of the input. In training mode
``forward`` returns ``(logits, vae_loss)`` with ``vae_loss`` = KL-type regulariser + MSE of the
reconstruction, as MONAI's; in evaluation mode ``(logits, None)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.blocks.segresnet_block import get_conv_layer, get_upsample_layer
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from monai.utils import UpsampleMode
from torch import Tensor, nn

from revnets.blocks.slab_conv import slab_convolutions
from revnets.core import Form
from revnets.models.losses import default_segmentation_loss, pick_annotator
from revnets.models.protocol import SegmentationLoss, TrainingLoss
from revnets.models.sampling import sample_probabilities
from revnets.nets.segresnet import SegResNet


class _Logits(nn.Module):
    """The segmentation output of a SegResNetVAE, for code that expects ``net(x)`` to be logits."""

    def __init__(self, net: SegResNetVAE) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)[0]


class SegResNetVAE(SegResNet):
    """Reversible twin of ``monai.networks.nets.SegResNetVAE``: same arguments, same outputs.

    ``forward(x)``: ``x`` ``(B, in_channels, *input_image_size)`` to ``(logits, vae_loss)`` in training mode,
    ``(logits, None)`` in evaluation mode.

    Args:
        input_image_size, vae_estimate_std, vae_default_std, vae_nz, spatial_dims, init_filters, in_channels,
            out_channels, dropout_prob, act, norm, use_conv_final, blocks_down, blocks_up, upsample_mode: as in
            MONAI's ``SegResNetVAE`` (see :class:`~revnets.nets.SegResNet` for what is reversible).
        form: :class:`~revnets.core.Form`: reversible (default), plain or checkpointed.
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample` and the default loss.
        branch_width: as in :class:`~revnets.nets.SegResNet`.
    """

    smallest_filters = 16

    def __init__(
        self,
        input_image_size: Sequence[int],
        vae_estimate_std: bool = False,
        vae_default_std: float = 0.3,
        vae_nz: int = 256,
        spatial_dims: int = 3,
        init_filters: int = 8,
        in_channels: int = 1,
        out_channels: int = 2,
        dropout_prob: float | None = None,
        act: str | tuple = ("RELU", {"inplace": True}),
        norm: tuple | str = ("GROUP", {"num_groups": 8}),
        use_conv_final: bool = True,
        blocks_down: tuple = (1, 2, 2, 4),
        blocks_up: tuple = (1, 1, 1),
        upsample_mode: UpsampleMode | str = UpsampleMode.NONTRAINABLE,
        form: Form | str = Form.REVERSIBLE,
        output_activation: str = "softmax",
        branch_width: float | None = None,
    ) -> None:
        super().__init__(
            spatial_dims=spatial_dims,
            init_filters=init_filters,
            in_channels=in_channels,
            out_channels=out_channels,
            dropout_prob=dropout_prob,
            act=act,
            norm=norm,
            use_conv_final=use_conv_final,
            blocks_down=blocks_down,
            blocks_up=blocks_up,
            upsample_mode=upsample_mode,
            form=form,
            output_activation=output_activation,
            branch_width=branch_width,
        )
        zoom = 2 ** (len(self.blocks_down) - 1)
        self.input_image_size = tuple(input_image_size)
        self.fc_insize = [s // (2 * zoom) for s in self.input_image_size]
        self.vae_estimate_std = vae_estimate_std
        self.vae_default_std = vae_default_std
        self.vae_nz = vae_nz
        coarsest = init_filters * zoom
        flat = int(self.smallest_filters * np.prod(self.fc_insize))

        def norm_act(channels: int) -> list[nn.Module]:
            return [get_norm_layer(name=norm, spatial_dims=spatial_dims, channels=channels), get_act_layer(act)]

        self.vae_down = nn.Sequential(
            *norm_act(coarsest),
            get_conv_layer(spatial_dims, coarsest, self.smallest_filters, stride=2, bias=True),
            *norm_act(self.smallest_filters),
        )
        self.vae_fc1 = nn.Linear(flat, vae_nz)
        self.vae_fc2 = nn.Linear(flat, vae_nz)
        self.vae_fc3 = nn.Linear(vae_nz, flat)
        self.vae_act = get_act_layer(act)
        self.vae_fc_up_sample = nn.Sequential(
            get_conv_layer(spatial_dims, self.smallest_filters, coarsest, kernel_size=1),
            get_upsample_layer(spatial_dims, coarsest, upsample_mode=upsample_mode),
            *norm_act(coarsest),
        )
        self.vae_conv_final = self._final_conv(in_channels)
        slab_convolutions(self)

    def vae_loss(self, image: Tensor, coarsest: Tensor) -> Tensor:
        """MONAI's VAE loss of the input ``image`` ``(B, in_channels, *S)`` from the encoder's coarsest output."""
        x = self.vae_down(coarsest).flatten(1)
        mean = self.vae_fc1(x)
        noise = torch.randn_like(mean)
        if self.vae_estimate_std:
            sigma = F.softplus(self.vae_fc2(x))
            regulariser = 0.5 * torch.mean(mean**2 + sigma**2 - torch.log(1e-8 + sigma**2) - 1)
        else:
            sigma = torch.full_like(mean, self.vae_default_std)
            regulariser = torch.mean(mean**2)
        x = self.vae_act(self.vae_fc3(mean + sigma * noise))
        x = self.vae_fc_up_sample(x.view(-1, self.smallest_filters, *self.fc_insize))
        for up in self.up_layers:
            x = up(x)
        reconstruction = self.vae_conv_final(x)
        return regulariser + F.mse_loss(image, reconstruction)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:  # type: ignore[override]
        """``(B, in_channels, *S)`` to ``(logits, vae_loss)`` (training) or ``(logits, None)`` (evaluation)."""
        skips = self.encode(x)
        logits = self.decode(skips)
        return logits, (self.vae_loss(x, skips[-1]) if self.training else None)

    def sample(self, x: Tensor, num_samples: int, flips: bool = True) -> Tensor:
        """Class probabilities ``(N, B, C, *S)`` from MC dropout and test-time flips (segmentation output)."""
        return sample_probabilities(_Logits(self), x, num_samples, self.output_activation, flips)

    def training_loss(
        self, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None
    ) -> TrainingLoss:
        """``segmentation_loss(logits, y)`` (default Dice + CE) plus the VAE loss, as in Myronenko's paper
        (MONAI's tutorial weights the VAE loss 1 too). ``y`` as in :class:`~revnets.nets.SegResNet`."""
        loss = segmentation_loss or default_segmentation_loss(self.output_activation)
        if self.output_activation == "softmax":
            y = pick_annotator(x, y)
        logits, vae = self(x)
        segmentation = loss(logits, y)
        if vae is None:  # evaluation mode has no VAE branch
            vae = torch.zeros_like(segmentation)
        return TrainingLoss(segmentation + vae, {"segmentation": segmentation, "vae": vae})
