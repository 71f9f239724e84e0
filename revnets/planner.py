"""The memory planner: what fits a memory budget, for a bundle's network in each form.

A few probe steps at small sizes measure the peak memory of one training step (forward, loss, backward) and
of one inference forward; a linear model of memory against voxels and channels is fitted to them:

    training step:  peak = gradient_bytes(w) + a + (b + c * w) * batch * voxels + d * w * voxels
    inference:      peak = a + b * windows * voxels + d * voxels

where ``w`` scales every width in the network's ``channels`` (1 = the bundle's network),
``gradient_bytes(w)`` is the exact size of the parameter gradients and the last term is what is allocated once
per sample rather than per batch (CPU convolutions unfold one sample at a time). Training also holds the weights and two
Adam moments (``3 * parameter bytes``), added to the step's peak. From the models the planner reads, per
form (reversible, plain, checkpointed): the largest cube and the largest patch of the bundle's proportions,
the batch size at the bundle's patch, the widest network at that patch, and for inference the largest
sliding window and the windows per batch at the bundle's window.

Peaks are measured with :func:`revnets.core.memory.allocated_peak_bytes` on CPU (every tensor and
workspace with its exact size; the same in every run) and CUDA's ``max_memory_allocated`` on a GPU. The
budget is for tensors: leave room for the framework itself (the CUDA context, the Python process).
"""

from __future__ import annotations

import json
import math
import pydoc
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from revnets.core.form import Form
from revnets.core.memory import allocated_peak_bytes, step_peak_bytes
from revnets.errors import InputError
from revnets.models.protocol import SegmentationModel

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "kib": 2**10, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}
WIDTHS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
"""Width scales the planner tries for the widest network that fits."""
PROBE_WIDTHS = (0.5, 1.0)


def parse_size(text: str) -> int:
    """Bytes in ``"8GiB"``, ``"512 MiB"``, ``"16GB"`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise InputError(f"memory size {text!r} is not a number with a unit such as 8GiB, 512MiB or 16GB.")
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass(frozen=True)
class NetworkSpec:
    """A network as a bundle's ``network_def`` describes it: the class and its keyword arguments."""

    cls: type[nn.Module]
    kwargs: dict[str, Any]
    train_patch: tuple[int, ...]
    train_batch: int
    window: tuple[int, ...]

    def effective_width(self, width: float) -> float:
        """The width scale after rounding: total channels at ``width`` over total channels at 1."""
        channels = self.kwargs.get("channels")
        return sum(scaled_channels(channels, width)) / sum(channels) if channels else 1.0

    def build(self, form: Form, width: float = 1.0) -> nn.Module:
        """The network in ``form`` with every entry of ``channels`` scaled by ``width`` (rounded to a multiple of 2)."""
        kwargs = dict(self.kwargs, form=form)
        if "channels" in kwargs:
            kwargs["channels"] = scaled_channels(kwargs["channels"], width)
        elif width != 1.0:
            raise InputError(f"{self.cls.__name__} has no channels argument: the planner cannot scale its width.")
        return self.cls(**kwargs)


def scaled_channels(channels: Sequence[int], width: float) -> list[int]:
    """``channels`` times ``width``, each rounded to the nearest even number of at least 2."""
    return [max(2, 2 * round(c * width / 2)) for c in channels]


def bundle_network(bundle: str | Path, trust: bool = False) -> NetworkSpec:
    """The network of a bundle (a shipped bundle's name or a folder), with its training patch and window.

    The class comes from ``network_def``'s ``_target_`` in ``configs/inference.json``; the training patch
    and batch from ``configs/train.json`` (``patch_size``, ``batch_size``) where given, else the inference
    window (``roi_size``) and 1.

    Raises:
        revnets.trust.UntrustedBundleError: a folder that is not a shipped bundle, and ``trust`` is off.
    """
    from revnets.bundles import BundleError, check_config, resolve_bundle
    from revnets.trust import require_trusted

    folder = resolve_bundle(bundle)
    require_trusted(folder, trust)
    inference_path = folder / "configs" / "inference.json"
    check_config(inference_path)
    inference = json.loads(inference_path.read_text(encoding="utf-8"))
    train_path = folder / "configs" / "train.json"
    train = json.loads(train_path.read_text(encoding="utf-8")) if train_path.is_file() else {}
    definition = dict(inference["network_def"])
    target = definition.pop("_target_")
    cls = pydoc.locate(target)
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise BundleError(f"{inference_path}: network_def's _target_ {target!r} is not a torch module class.")
    definition.pop("form", None)
    dims = int(definition.get("spatial_dims", 3))
    window = tuple(int(s) for s in inference.get("roi_size", [96] * dims))[:dims]
    patch = tuple(int(s) for s in train.get("patch_size", window))[:dims]
    batch = train.get("batch_size", 1)
    return NetworkSpec(cls, definition, patch, batch if isinstance(batch, int) else 1, window)


def _labels(network: nn.Module, batch: int, spatial: Sequence[int]) -> Tensor:
    classes = int(getattr(network, "out_channels", 2))
    if getattr(network, "output_activation", "softmax") == "sigmoid":
        return torch.randint(0, 2, (batch, classes, *spatial)).float()
    return torch.randint(0, classes, (batch, 1, *spatial))


def measure_peak(step: Callable[[], Any], device: torch.device) -> int:
    """Peak bytes of ``step()``: allocated tensors on CPU (deterministic), ``max_memory_allocated`` on CUDA."""
    if device.type == "cuda":
        return step_peak_bytes(step, device)
    return allocated_peak_bytes(step)


def training_peak(network: nn.Module, batch: int, spatial: Sequence[int], device: torch.device) -> int:
    """Measured peak of one training step (forward, the model's loss, backward) of ``network`` in place."""
    network.to(device).train()
    x = torch.randn(batch, int(cast(SegmentationModel, network).in_channels), *spatial, device=device)
    y = _labels(network, batch, spatial).to(device)

    def step() -> None:
        network.zero_grad(set_to_none=True)
        network.training_loss(x, y).total.backward()  # type: ignore[operator]

    step()  # warm-up: lazy initialisation and allocator caches stay out of the measure
    peak = measure_peak(step, device)
    network.zero_grad(set_to_none=True)
    return peak


def inference_peak(network: nn.Module, windows: int, spatial: Sequence[int], device: torch.device) -> int:
    """Measured peak of one forward of ``windows`` windows under ``torch.no_grad`` (eval mode)."""
    network.to(device).eval()
    x = torch.randn(windows, int(cast(SegmentationModel, network).in_channels), *spatial, device=device)

    def step() -> None:
        with torch.no_grad():
            network(x)

    step()
    return measure_peak(step, device)


def parameter_bytes(network: nn.Module) -> int:
    """Bytes of the trainable parameters (their gradients have the same size)."""
    return sum(p.numel() * p.element_size() for p in network.parameters() if p.requires_grad)


@dataclass(frozen=True)
class Probe:
    """One measured step: batch (or windows), spatial size, width scale and peak bytes."""

    batch: int
    spatial: tuple[int, ...]
    width: float
    peak_bytes: int

    @property
    def voxels(self) -> int:
        return self.batch * math.prod(self.spatial)


@dataclass(frozen=True)
class MemoryModel:
    """``peak = gradient_bytes(width) + fixed + (per_voxel + per_voxel_width * width) * batch * voxels
    + per_sample_voxel_width * width * voxels``.

    ``parameter_bytes`` gives the parameter (and gradient) bytes of the network at a width; it is 0 for
    inference models, whose peak holds no gradients.
    """

    fixed: float
    per_voxel: float
    per_voxel_width: float
    per_sample_voxel_width: float
    parameter_bytes: Callable[[float], int] = field(repr=False)
    with_gradients: bool = True
    width_scale: Callable[[float], float] = field(default=lambda width: width, repr=False)

    def step_peak(self, batch: int, spatial: Sequence[int], width: float = 1.0) -> float:
        """Predicted peak bytes of one step (training or inference) at this size."""
        sample = math.prod(spatial)
        width = self.width_scale(width)
        gradients = self.parameter_bytes(width) if self.with_gradients else 0
        per_batch = (self.per_voxel + self.per_voxel_width * width) * batch * sample
        return gradients + self.fixed + per_batch + self.per_sample_voxel_width * width * sample

    def total(self, batch: int, spatial: Sequence[int], width: float = 1.0) -> float:
        """Bytes a training run needs: the step's peak plus weights and two Adam moments (or the weights alone)."""
        states = 3 if self.with_gradients else 1
        return self.step_peak(batch, spatial, width) + states * self.parameter_bytes(width)


def fit(probes: Sequence[Probe], parameter_bytes: Callable[[float], int], with_gradients: bool = True,
        width_scale: Callable[[float], float] = lambda width: width) -> MemoryModel:
    """Least-squares fit of :class:`MemoryModel` to measured probes.

    A term is fitted only when the probes vary what it depends on: the width term needs two widths, the
    per-sample term two batch sizes at one spatial size.
    """
    widths = {p.width for p in probes}
    batches = {p.batch for p in probes}
    columns: list[Callable[[Probe], float]] = [lambda p: 1.0, lambda p: p.voxels]
    if len(widths) > 1:
        columns.append(lambda p: p.voxels * width_scale(p.width))
    if len(batches) > 1:
        columns.append(lambda p: math.prod(p.spatial) * width_scale(p.width))
    rows = [[column(p) for column in columns] for p in probes]
    target = [p.peak_bytes - (parameter_bytes(p.width) if with_gradients else 0) for p in probes]
    solution, *_ = np.linalg.lstsq(np.array(rows, dtype=float), np.array(target, dtype=float), rcond=None)
    coefficients = solution.tolist()
    fixed, per_voxel = coefficients[:2]
    per_voxel_width = coefficients[2] if len(widths) > 1 else 0.0
    per_sample = coefficients[-1] if len(batches) > 1 else 0.0
    return MemoryModel(fixed, per_voxel, per_voxel_width, per_sample, parameter_bytes, with_gradients, width_scale)


def probe_sizes(spec: NetworkSpec, divisor: int) -> list[tuple[int, ...]]:
    """Two small sizes of the bundle's proportions: 64 voxels (at least twice ``divisor``) on the longest side,
    in multiples of ``divisor``, and twice that. Below that, the step's peak sits elsewhere in the network than
    at training sizes (a network's peak is the largest of several terms growing at different rates), and a
    line through tiny probes underestimates large patches."""
    longest = max(spec.train_patch)
    edge = max(2 * divisor, 64 // divisor * divisor)
    base = [max(divisor, edge * s // longest // divisor * divisor) for s in spec.train_patch]
    return [tuple(base), tuple(2 * s for s in base)]


@dataclass(frozen=True)
class FormPlan:
    """What fits the budget for one form; sizes are None where not even the smallest does."""

    form: Form
    training: MemoryModel
    inference: MemoryModel
    cube: int | None
    patch: tuple[int, ...] | None
    batch_size: int
    width: float | None
    window: int | None
    windows_per_batch: int


@dataclass(frozen=True)
class Plan:
    """The planner's answer for a network and a budget, one :class:`FormPlan` per form."""

    budget_bytes: int
    device: str
    spec: NetworkSpec
    divisor: int
    forms: list[FormPlan]

    def table(self) -> str:
        """The plan as a markdown table."""
        patch = "x".join(map(str, self.spec.train_patch))
        window = "x".join(map(str, self.spec.window))
        lines = [
            f"| form | largest cube patch | largest patch of {patch}'s shape | batch at {patch} "
            f"| widest channels at {patch} | largest cube window | windows per batch at {window} |",
            "|---|---:|---:|---:|---|---:|---:|",
        ]
        for plan in self.forms:
            channels = self.spec.kwargs.get("channels")
            width = "none fits" if plan.width is None else (
                f"x{plan.width:g}" + (f" {scaled_channels(channels, plan.width)}" if channels else "")
            )
            lines.append(
                f"| {plan.form.value} | {_size(plan.cube, len(patch.split('x')))} | "
                f"{'none fits' if plan.patch is None else 'x'.join(map(str, plan.patch))} | {plan.batch_size} | "
                f"{width} | {_size(plan.window, len(window.split('x')))} | {plan.windows_per_batch} |"
            )
        return "\n".join(lines)


def _size(edge: int | None, dims: int) -> str:
    return "none fits" if edge is None else "x".join([str(edge)] * dims)


def _largest(fits: Callable[[int], bool], limit: int = 4096) -> int:
    """The largest ``n`` in ``1..limit`` with ``fits(n)`` (monotone: true up to some n, false above); 0 if none."""
    if not fits(1):
        return 0
    low, high = 1, 2
    while high <= limit and fits(high):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def probe_models(spec: NetworkSpec, form: Form, device: torch.device, divisor: int,
                 sizes: Sequence[tuple[int, ...]] | None = None) -> tuple[MemoryModel, MemoryModel]:
    """Probe and fit the training and inference memory models of ``spec`` in ``form``.

    Training: one step at each of ``sizes`` (default :func:`probe_sizes`) at widths :data:`PROBE_WIDTHS`,
    batch 2 (batch norm needs more than one value per channel at the coarsest level), and one at batch 4 on
    the largest size. Inference: one forward of one and of two windows of the largest size, one of the smallest.
    """
    sizes = list(sizes) if sizes is not None else probe_sizes(spec, divisor)
    runs = [(2, spatial, width) for width in PROBE_WIDTHS for spatial in sizes] + [(4, sizes[-1], 1.0)]
    measured = []
    for batch, spatial, width in runs:
        torch.manual_seed(0)
        measured.append(Probe(batch, spatial, width, training_peak(spec.build(form, width), batch, spatial, device)))
    cache: dict[float, int] = {}

    def parameters(width: float) -> int:
        if width not in cache:
            cache[width] = parameter_bytes(spec.build(form, width))
        return cache[width]

    training = fit(measured, parameters, width_scale=spec.effective_width)
    torch.manual_seed(0)
    network = spec.build(form)
    windows = [(1, sizes[0]), (1, sizes[-1]), (2, sizes[-1])]
    inference_probes = [Probe(n, s, 1.0, inference_peak(network, n, s, device)) for n, s in windows]
    inference = fit(inference_probes, parameters, with_gradients=False)
    return training, inference


def read_plan(spec: NetworkSpec, form: Form, training: MemoryModel, inference: MemoryModel, budget: int,
              divisor: int) -> FormPlan:
    """What fits ``budget`` according to the fitted models (no probing)."""
    dims = len(spec.train_patch)
    cube = _largest(lambda k: training.total(1, (k * divisor,) * dims) <= budget)
    scale = _largest(lambda k: training.total(1, _proportional(spec.train_patch, k * divisor, divisor)) <= budget)
    batch_size = _largest(lambda b: training.total(b, spec.train_patch) <= budget)
    fitting = [w for w in WIDTHS if training.total(1, spec.train_patch, w) <= budget]
    window = _largest(lambda k: inference.total(1, (k * divisor,) * dims) <= budget)
    windows = _largest(lambda n: inference.total(n, spec.window) <= budget)
    return FormPlan(
        form, training, inference,
        cube * divisor if cube else None,
        _proportional(spec.train_patch, scale * divisor, divisor) if scale else None,
        batch_size, max(fitting) if fitting else None,
        window * divisor if window else None, windows,
    )


def _proportional(patch: Sequence[int], longest: int, divisor: int) -> tuple[int, ...]:
    """``patch`` scaled so that its longest side is ``longest``, the others rounded down to multiples of
    ``divisor`` (at least ``divisor``)."""
    top = max(patch)
    return tuple(max(divisor, (longest * s // top) // divisor * divisor) for s in patch)


def plan(bundle: str | Path | NetworkSpec, memory: int | str, device: str | torch.device = "cpu",
         forms: Sequence[Form | str] = tuple(Form), trust: bool = False) -> Plan:
    """What fits ``memory`` bytes (or a size such as ``"8GiB"``) for ``bundle``'s network in each form.

    Args:
        bundle: a shipped bundle's name, a bundle folder, or a :class:`NetworkSpec`.
        memory: the budget for the tensors of training (weights, Adam moments, the step's peak) or inference.
        device: ``cpu`` or ``cuda``: where the probe steps run and whose allocator is measured.
        forms: the forms to plan for.
        trust: allow a bundle folder that is not a shipped bundle.
    """
    budget = parse_size(memory) if isinstance(memory, str) else int(memory)
    if budget <= 0:
        raise InputError(f"the memory budget must be positive, got {memory!r}.")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("the planner was asked for cuda, but torch sees no CUDA device.")
    spec = bundle if isinstance(bundle, NetworkSpec) else bundle_network(bundle, trust)
    divisor = int(getattr(spec.build(Form.of(forms[0])), "size_divisor", 1))
    spec = replace(spec, train_patch=_divisible(spec.train_patch, divisor), window=_divisible(spec.window, divisor))
    plans = []
    for name in forms:
        form = Form.of(name)
        plans.append(read_plan(spec, form, *probe_models(spec, form, device, divisor), budget, divisor))
    return Plan(budget, device.type, spec, divisor, plans)


def _divisible(size: Sequence[int], divisor: int) -> tuple[int, ...]:
    return tuple(max(divisor, math.ceil(s / divisor) * divisor) for s in size)
