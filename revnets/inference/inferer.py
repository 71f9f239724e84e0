"""Sampling inference over whole volumes: a MONAI ``Inferer`` that draws samples through sliding windows, streamed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import torch
from monai.data import MetaTensor
from monai.inferers import Inferer, sliding_window_inference
from torch import Tensor

from revnets.errors import InputError
from revnets.inference.limits import check_seed
from revnets.models.protocol import SegmentationModel
from revnets.uncertainty import StreamingUncertainty

PRECISIONS = ("float32", "bfloat16")
"""What the network's convolutions may compute in: :class:`SamplingInferer`'s ``precision``."""

MAX_SAMPLES = 1024
"""The most samples one run may draw: the samples output keeps one label map per sample at the input's
resolution (1024 samples of a 1 mm head take about 9 GB on disk), and the maps barely change beyond it."""


class WindowSampler(Protocol):
    """Draws samples of class probabilities for one window of a volume.

    Called as ``sampler(patch, location, first, count)`` with ``patch`` of shape ``(b, C_in, *roi)``,
    ``location`` the window's slices ``(batch, channel, *spatial)`` in the (padded) volume, and the global indices
    ``first .. first + count - 1`` of the samples to draw. Returns ``(count, b, C, *roi)``. A sampler
    whose samples are coherent across windows (PHiSeg: one latent noise per sample for the whole volume)
    uses ``location`` and the indices to pick the same noise in every window.
    """

    def __call__(self, patch: Tensor, location: Sequence[slice], first: int, count: int) -> Tensor: ...


class SampleConsumer(Protocol):
    """Receives the samples of a volume chunk by chunk: ``update((n, B, C, *spatial))``."""

    def update(self, samples: Tensor) -> None: ...


class SamplingInferer(Inferer):
    """Draws ``num_samples`` whole-volume samples of a model and returns their summary, never all samples at once.

    ``inferer(inputs, network)`` (MONAI's inferer interface, as ``SupervisedEvaluator`` calls it) picks the
    model's window sampler (:func:`revnets.inference.samplers.window_sampler`), seeds it, and streams the
    samples through :class:`~revnets.uncertainty.StreamingUncertainty`. Each pass over the volume draws
    ``samples_per_pass`` samples at once (the window's shared work, e.g. PHiSeg's prior net, runs once per
    window for all of them), so memory grows with ``samples_per_pass``, not with ``num_samples``.

    Args:
        roi_size: largest window size, e.g. ``(96, 96, 96)``. Along an axis where the volume is smaller,
            the window shrinks to the volume's size rounded up to a multiple of ``size_divisor``, so a
            small volume is not padded to a large window.
        num_samples: samples drawn per volume, 1 to :data:`MAX_SAMPLES`.
        seed: seed of every volume's samples (the same seed gives the same samples).
        size_divisor: every window size is a multiple of this (the network's, e.g. ``2**(levels - 1)``).
        overlap: fraction of overlap between windows.
        mode: MONAI blend mode, ``"gaussian"`` or ``"constant"``. Blending probabilities keeps them
            probabilities.
        samples_per_pass: samples drawn per pass; None picks as many as fit in ``memory_budget``.
        memory_budget: bytes the stitched samples of one pass may take (default 128 MiB: 17 samples of 3 classes
            of the MNI head at 2 mm; a pass holds a few times this in sliding-window buffers).
        to_classes: maps the network's sample probabilities ``(n, B, C, *spatial)`` to a distribution over
            exclusive classes before the maps are computed (e.g. ``nested_regions_to_classes`` for sigmoid
            BraTS regions); None when the network already gives one (softmax).
        precision: ``"float32"``, or ``"bfloat16"``: on a device with fast bfloat16 (a CPU with AVX512-BF16
            or AMX, a CUDA device that supports it; elsewhere it stays float32) the network runs under
            ``torch.autocast``: its convolutions, and the norms and activations that read their outputs,
            compute in bfloat16, while sums with float32 features (the couplings') and the final softmax
            stay float32. Faster, with mean probabilities that differ from float32's by 1e-4 to 2e-3 on
            average, 12-25x less than another seed's (docs/BENCHMARKS.md).

    Attributes:
        on_pass: None, or called as ``on_pass(done, total)`` after each pass with the samples done so far.
    """

    def __init__(
        self,
        roi_size: Sequence[int],
        num_samples: int = 16,
        seed: int = 0,
        size_divisor: int = 1,
        overlap: float = 0.25,
        mode: str = "gaussian",
        samples_per_pass: int | None = None,
        memory_budget: int = 2**27,
        to_classes: Callable[[Tensor], Tensor] | None = None,
        precision: str = "float32",
    ) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
        if not 1 <= num_samples <= MAX_SAMPLES:
            raise InputError(
                f"the number of samples must be between 1 and {MAX_SAMPLES}, got {num_samples}: each sample is "
                "one label map at the input's resolution in the samples output."
            )
        check_seed(seed)
        self.roi_size = tuple(roi_size)
        self.num_samples = num_samples
        self.seed = seed
        self.size_divisor = size_divisor
        self.overlap = overlap
        self.mode = mode
        self.samples_per_pass = samples_per_pass
        self.memory_budget = memory_budget
        self.to_classes = to_classes
        self.precision = precision
        self.on_pass: Callable[[int, int], None] | None = None

    def __call__(self, inputs: Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        """Sample ``inputs`` ``(B, C_in, *spatial)``; return the summary of the samples, by output name.

        Returns:
            ``probabilities`` (mean class probabilities) ``(B, K, *spatial)``; ``entropy``, ``mutual_info``,
            ``variance`` and ``expected_cross_entropy`` ``(B, 1, *spatial)``; ``samples`` ``(B, N, *spatial)``
            ``uint8`` class index of each sample. ``K`` is the network's ``out_channels``, or the classes of
            ``to_classes``.
        """
        from revnets.inference.samplers import window_sampler  # samplers import this module's protocols

        source = inputs
        inputs = inputs.as_tensor() if isinstance(inputs, MetaTensor) else inputs
        spatial = inputs.shape[2:]
        if min(spatial) < 1:
            raise InputError(f"the volume to segment is empty (spatial shape {tuple(spatial)}).")
        model = cast(SegmentationModel, network)  # window_sampler refuses anything else with a TypeError
        sampler = window_sampler(model, spatial, self.window(spatial), self.seed)
        aggregator = StreamingUncertainty(keep_labels=True, expected_cross_entropy=True)
        consumer = aggregator if self.to_classes is None else _Mapped(aggregator, self.to_classes)
        torch.manual_seed(self.seed)
        with torch.no_grad():
            self.stream(inputs, sampler, self.num_samples, model.out_channels, consumer, on_pass=self.on_pass)
        maps = aggregator.compute()
        summary = {
            "probabilities": maps["mean"],
            "entropy": maps["entropy"][:, None],
            "mutual_info": maps["mutual_information"][:, None],
            "variance": maps["variance"][:, None],
            "expected_cross_entropy": maps["expected_cross_entropy"][:, None],
            "samples": maps["labels"].transpose(0, 1),
        }
        if not isinstance(source, MetaTensor):
            return summary
        # like MONAI's inferers: the outputs carry the input's metadata, so Invertd can bring them back
        return {
            name: MetaTensor(value, meta=source.meta, applied_operations=source.applied_operations)
            for name, value in summary.items()
        }

    def window(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The window used for a volume of spatial shape ``spatial``.

        At least ``2 * size_divisor`` along each axis (within ``roi_size``; a smaller volume is padded), so
        the network's coarsest level keeps more than one voxel per axis: instance normalisation over a
        single voxel is undefined, and a volume of a few voxels still gets a prediction.
        """
        k = self.size_divisor
        return tuple(min(roi, max(2 * k, -(-size // k) * k)) for roi, size in zip(self.roi_size, spatial))

    def passes(self, num_samples: int, num_classes: int, spatial: Sequence[int]) -> list[tuple[int, int]]:
        """``(first, count)`` of each pass."""
        if num_samples < 1:
            raise ValueError(f"num_samples must be at least 1, got {num_samples}.")
        per_pass = self.samples_per_pass
        if per_pass is None:
            voxels = max(1, int(torch.tensor(spatial).prod()))
            per_pass = max(1, self.memory_budget // (4 * num_classes * voxels))
        return [(first, min(per_pass, num_samples - first)) for first in range(0, num_samples, per_pass)]

    def stream(
        self,
        inputs: Tensor,
        sampler: WindowSampler,
        num_samples: int,
        num_classes: int,
        consumer: SampleConsumer,
        on_pass: Callable[[int, int], None] | None = None,
    ) -> None:
        """Sample ``inputs`` of shape ``(B, C_in, *spatial)`` and feed ``(n, B, C, *spatial)`` chunks to ``consumer``.

        ``on_pass(done, total)`` is called after each pass with the number of samples done so far.
        """
        window = self.window(inputs.shape[2:])
        device = inputs.device.type
        bfloat16 = self.precision == "bfloat16" and fast_bfloat16(inputs.device)
        for first, count in self.passes(num_samples, num_classes, inputs.shape[2:]):

            def predictor(
                patch: Tensor, location: Sequence[Sequence[slice]], first: int = first, count: int = count
            ) -> Tensor:
                with torch.autocast(device, dtype=torch.bfloat16, enabled=bfloat16):
                    samples = sampler(patch, location[0], first, count)  # one window per call (sw_batch_size=1)
                return samples.float().transpose(0, 1).flatten(1, 2)

            stitched = sliding_window_inference(
                inputs, window, 1, predictor, overlap=self.overlap, mode=self.mode, with_coord=True
            )
            stitched = stitched.as_tensor() if isinstance(stitched, MetaTensor) else cast(Tensor, stitched)
            consumer.update(stitched.unflatten(1, (count, num_classes)).transpose(0, 1))
            del stitched
            if on_pass is not None:
                on_pass(first + count, num_samples)


def fast_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions natively: a CPU with AVX512-BF16 or AMX (oneDNN), or a
    CUDA device that supports bfloat16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    cpu = device.type == "cpu" and torch.backends.mkldnn.is_available()
    return cpu and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class _Mapped:
    """Feeds ``consumer`` with ``fn(samples)``."""

    def __init__(self, consumer: SampleConsumer, fn: Callable[[Tensor], Tensor]) -> None:
        self.consumer = consumer
        self.fn = fn

    def update(self, samples: Tensor) -> None:
        self.consumer.update(self.fn(samples))
