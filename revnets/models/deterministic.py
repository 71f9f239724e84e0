"""What every deterministic segmentation network shares: samples by MC dropout and test-time flips, and a
segmentation training loss over its logits (with nnU-Net's weighting when it returns deep supervision)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from revnets.models.losses import default_segmentation_loss, pick_annotator
from revnets.models.protocol import Sampling, SegmentationLoss, TrainingLoss
from revnets.models.sampling import sample_probabilities


class DeterministicSegmentation(nn.Module):
    """Base of the networks whose ``forward`` is one deterministic pass (dropout aside).

    Subclasses set ``spatial_dims``, ``in_channels``, ``out_channels``, ``form``, ``output_activation`` and
    ``size_divisor``; with those they satisfy :class:`~revnets.models.SegmentationModel`.
    """

    sampling = Sampling.DROPOUT_FLIPS
    output_activation: str

    def sample(self, x: Tensor, num_samples: int, flips: bool = True) -> Tensor:
        """Class probabilities ``(N, B, C, *S)`` from MC dropout (active where the network has dropout) and
        test-time flips of ``x`` ``(B, in_channels, *S)``; reproducible under ``torch.manual_seed``."""
        return sample_probabilities(self, x, num_samples, self.output_activation, flips)

    def training_loss(
        self, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None
    ) -> TrainingLoss:
        """``segmentation_loss(logits, y)`` (default Dice + CE) of images ``(B, in_channels, *S)``.

        With a softmax output, ``y`` is class indices ``(B, M, *S)`` of ``M`` annotators, one drawn per
        image; with a sigmoid output, ``y`` is the ``(B, out_channels, *S)`` binary label maps.
        """
        return self.loss_of_output(self(x), x, y, segmentation_loss)

    def loss_of_output(
        self, output: Tensor, x: Tensor, y: Tensor, segmentation_loss: SegmentationLoss | None = None
    ) -> TrainingLoss:
        """:meth:`training_loss` given this network's ``output = self(x)``.

        Logits ``(B, C, *S)`` give the term ``segmentation``; deep-supervision outputs ``(B, 1 + K, C, *S)``
        (e.g. DynUNet in training mode) weight the ``K + 1`` losses by ``2**-i``, normalised (nnU-Net), and
        add the per-head losses as ``deep_supervision``.
        """
        loss = segmentation_loss or default_segmentation_loss(self.output_activation)
        if self.output_activation == "softmax":
            y = pick_annotator(x, y)
        if output.dim() == x.dim():
            segmentation = loss(output, y)
            return TrainingLoss(segmentation, {"segmentation": segmentation})
        terms = torch.stack([loss(head, y) for head in output.unbind(1)])
        weights = 0.5 ** torch.arange(len(terms), dtype=terms.dtype, device=terms.device)
        total = (weights * terms).sum() / weights.sum()
        return TrainingLoss(total, {"segmentation": terms[0], "deep_supervision": terms})
