"""SegResNet (Myronenko, 2018) with reversible residual blocks, behind MONAI's constructor.

What is reversible: every ``ResBlock`` of MONAI's ``SegResNet`` (norm-act-conv-norm-act-conv plus identity,
``C -> C``) becomes one :class:`~revnets.core.AdditiveCoupling` whose ``f`` and ``g`` each hold one 3x3(x3)
convolution (:mod:`revnets.nets.couplings`): same receptive field, about as many weights. What stays
ordinary, built by MONAI's own functions: the initial convolution (and its dropout), the strided
convolution that opens each encoder level, the 1x1 convolution plus upsampling of each decoder level with
its additive skip, and the final norm-act-conv.
"""

from __future__ import annotations

from monai.networks.blocks.segresnet_block import get_conv_layer, get_upsample_layer
from monai.networks.layers.factories import Dropout
from monai.networks.layers.utils import get_act_layer, get_norm_layer
from monai.utils import UpsampleMode
from torch import Tensor, nn

from revnets.blocks.slab_conv import slab_convolutions
from revnets.core import Form
from revnets.models.deterministic import DeterministicSegmentation
from revnets.models.sampling import check_output_activation
from revnets.nets.couplings import same_shape_couplings
from revnets.nets.stage import Stage


class _UpsampleAdd(nn.Module):
    """MONAI's decoder step before the blocks: ``upsample(x) + skip`` (the VAE decoder has no skip)."""

    def __init__(self, upsample: nn.Module) -> None:
        super().__init__()
        self.upsample = upsample

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        x = self.upsample(x)
        return x if skip is None else x + skip


class SegResNet(DeterministicSegmentation):
    """Reversible twin of ``monai.networks.nets.SegResNet``: same arguments, same input/output contract.

    ``(B, in_channels, *S) -> (B, out_channels, *S)`` logits (``init_filters`` channels without
    ``use_conv_final``); every spatial size a multiple of ``2**(len(blocks_down) - 1)``.

    Args:
        spatial_dims, init_filters, in_channels, out_channels, dropout_prob, act, norm, norm_name, num_groups,
            use_conv_final, blocks_down, blocks_up, upsample_mode: as in MONAI's ``SegResNet``.
            ``init_filters`` must be even (the couplings split each level's width in halves).
        form: :class:`~revnets.core.Form`: reversible (default), plain (the same modules under ordinary
            autograd) or checkpointed.
        output_activation: ``"softmax"`` or ``"sigmoid"``, used by :meth:`sample` and the default loss.
        branch_width: hidden width of the couplings' branches as a multiple of each level's width (None, the
            default: as many weights as MONAI's convolutions they replace, about 2; smaller widths keep less
            memory in backward, with fewer weights).
    """

    def __init__(
        self,
        spatial_dims: int = 3,
        init_filters: int = 8,
        in_channels: int = 1,
        out_channels: int = 2,
        dropout_prob: float | None = None,
        act: tuple | str = ("RELU", {"inplace": True}),
        norm: tuple | str = ("GROUP", {"num_groups": 8}),
        norm_name: str = "",
        num_groups: int = 8,
        use_conv_final: bool = True,
        blocks_down: tuple = (1, 2, 2, 4),
        blocks_up: tuple = (1, 1, 1),
        upsample_mode: UpsampleMode | str = UpsampleMode.NONTRAINABLE,
        form: Form | str = Form.REVERSIBLE,
        output_activation: str = "softmax",
        branch_width: float | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"SegResNet: spatial_dims must be 2 or 3, got {spatial_dims}.")
        if init_filters % 2:
            raise ValueError(
                f"SegResNet: init_filters must be even for reversible blocks (couplings split channels in halves), "
                f"got {init_filters}."
            )
        if len(blocks_up) >= len(blocks_down):
            raise ValueError(
                f"SegResNet: blocks_up needs fewer levels than blocks_down, got {tuple(blocks_up)} and "
                f"{tuple(blocks_down)}."
            )
        if norm_name:
            if norm_name.lower() != "group":
                raise ValueError(f"SegResNet: norm_name={norm_name!r} is deprecated; pass norm instead.")
            norm = ("group", {"num_groups": num_groups})
        self.spatial_dims = spatial_dims
        self.init_filters = init_filters
        self.blocks_down = tuple(blocks_down)
        self.norm = norm
        self.act = act
        self.upsample_mode = upsample_mode
        self.in_channels = in_channels
        self.out_channels = out_channels if use_conv_final else init_filters
        self.form = Form.of(form)
        self.output_activation = check_output_activation(output_activation)
        self.size_divisor = 2 ** (len(blocks_down) - 1)

        def couplings(channels: int, blocks: int) -> list:
            return same_shape_couplings(
                spatial_dims, channels, 2 * blocks, 3, norm, act, preactivation=True, owner="SegResNet",
                argument="init_filters", branch_width=branch_width, finest=channels == init_filters,
            )

        entry: nn.Module = get_conv_layer(spatial_dims, in_channels, init_filters)
        if dropout_prob is not None:
            entry = nn.Sequential(entry, Dropout[Dropout.DROPOUT, spatial_dims](dropout_prob))
        self.down_layers = nn.ModuleList()
        for level, blocks in enumerate(blocks_down):
            channels = init_filters * 2**level
            if level:
                entry = get_conv_layer(spatial_dims, channels // 2, channels, stride=2)
            self.down_layers.append(Stage(entry, couplings(channels, blocks), self.form))
        self.up_layers = nn.ModuleList()
        levels_up = len(blocks_up)
        for i, blocks in enumerate(blocks_up):
            channels = init_filters * 2 ** (levels_up - i - 1)
            upsample = nn.Sequential(
                get_conv_layer(spatial_dims, 2 * channels, channels, kernel_size=1),
                get_upsample_layer(spatial_dims, channels, upsample_mode=upsample_mode),
            )
            self.up_layers.append(Stage(_UpsampleAdd(upsample), couplings(channels, blocks), self.form))
        self.conv_final = self._final_conv(out_channels) if use_conv_final else None
        slab_convolutions(self)

    def _final_conv(self, channels: int) -> Stage:
        """MONAI's final norm -> act -> 1x1 conv ``init_filters -> channels``."""
        final = nn.Sequential(
            get_norm_layer(name=self.norm, spatial_dims=self.spatial_dims, channels=self.init_filters),
            get_act_layer(self.act),
            get_conv_layer(self.spatial_dims, self.init_filters, channels, kernel_size=1, bias=True),
        )
        return Stage(final, [], self.form)

    def encode(self, x: Tensor) -> list[Tensor]:
        """The output of each encoder level, finest first: ``(B, init_filters * 2**l, *S / 2**l)``."""
        skips = []
        for down in self.down_layers:
            x = down(x)
            skips.append(x)
        return skips

    def decode(self, skips: list[Tensor]) -> Tensor:
        """The encoder outputs of :meth:`encode` to logits ``(B, out_channels, *S)``."""
        x = skips[-1]
        for up, skip in zip(self.up_layers, reversed(skips[:-1])):
            x = up(x, skip)
        return x if self.conv_final is None else self.conv_final(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, *S) -> (B, out_channels, *S)`` logits."""
        return self.decode(self.encode(x))
