#!/usr/bin/env python
"""Benchmark the reversible twins of MONAI's networks (``revnets.nets``) against MONAI's own, in 3D on CPU.

For ``SegResNet``, ``DynUNet`` and ``UNet`` at a MONAI default 3D configuration (:data:`CONFIGS`):

1. one training step (forward, cross-entropy, backward) on ``1 x 1 x S^3`` at the network's base cube
   (:data:`BASE`) of MONAI's network, MONAI's network under MONAI's activation checkpointing
   (``CheckpointUNet``; ``ActivationCheckpointWrapper`` around each block of the others) and the reversible
   twin: bytes saved for backward and peak memory; step times in a part of their own (all four in one process
   with the default allocator, one step each in turn, medians);
2. the largest cube (a multiple of the network's size divisor) the twin trains within the peak of MONAI's
   network at the base cube;
3. the same for SegResNet with more blocks at full resolution (``blocks_down=(n, 2, 2, 4)``, :data:`DEPTHS`):
   how the twin's gain depends on the depth at the finest level;
4. learning parity: MONAI's network and the twin trained for the same steps (same seed, same patches) on
   the brain-tissue task (the real MNI T1 from nilearn, one of ``revnets.data.tissue_raters``' annotators,
   train on the lower three quarters of the axial extent, test on the top quarter), Dice of grey and white
   matter on the held-out slab.

Every memory figure comes from a fresh process (one warm-up step, ``malloc_trim``, the measured step;
``revnets.core.memory.step_peak_bytes``). Results accumulate in ``--results`` (JSON), so an interrupted run
resumes where it stopped.

Usage:
    nice -n 10 python scripts/benchmark_monai_twins.py --write-docs
    python scripts/benchmark_monai_twins.py --quick     # tiny sizes and steps: checks the script runs
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from benchmark_docs import MALLOC_ENV, track_live_tensors
from benchmark_models import OVER_BUDGET, largest_fitting, machine_description, measure_step
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.networks import nets as monai_nets
from monai.networks.blocks.activation_checkpointing import ActivationCheckpointWrapper
from monai.networks.nets.dynunet import DynUNetSkipLayer
from monai.networks.nets.unet import CheckpointUNet
from torch import nn

from revnets import nets as twin_nets
from revnets.core.memory import in_fresh_process, live_at_allocated_peak
from revnets.data import mni_anatomy, tissue_raters
from revnets.uncertainty import dice

if TYPE_CHECKING:
    from matplotlib.axes import Axes

NNUNET_STRIDES = [[1, 1, 1]] + [[2, 2, 2]] * 4
CONFIGS: dict[str, dict] = {
    "SegResNet": {"spatial_dims": 3, "init_filters": 8, "in_channels": 1, "out_channels": 3,
                  "blocks_down": (1, 2, 2, 4), "blocks_up": (1, 1, 1)},
    "DynUNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "kernel_size": [[3, 3, 3]] * 5,
                "strides": NNUNET_STRIDES, "upsample_kernel_size": NNUNET_STRIDES[1:]},
    "UNet": {"spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": (16, 32, 64, 128, 256),
             "strides": (2, 2, 2, 2), "num_res_units": 2},
}
"""MONAI's defaults for SegResNet; nnU-Net's 3D plan for a 128^3-class patch for DynUNet (five levels, 3x3x3
kernels, stride 2, filters 32-64-128-256-320); MONAI's spleen / BraTS tutorial UNet."""
DEPTHS = (1, 2, 4, 8, 16)
"""Blocks at the full-resolution level of the depth series' SegResNets (MONAI's default: 1)."""


def depth_name(blocks: int) -> str:
    return f"SegResNet, blocks_down=({blocks}, 2, 2, 4)"


NETWORKS: dict[str, tuple[str, dict]] = {
    **{name: (name, config) for name, config in CONFIGS.items()},
    **{depth_name(n): ("SegResNet", {**CONFIGS["SegResNet"], "blocks_down": (n, 2, 2, 4)}) for n in DEPTHS},
}
"""Every benchmarked network by name: MONAI's class name and its configuration."""
DIVISOR = {"SegResNet": 8, "DynUNet": 16, "UNet": 16}
BASE = {"SegResNet": 64, "DynUNet": 48, "UNet": 64}
MAX_FACTOR = 2.5  # the cube search goes up to this many times the base side
VARIANTS = ("monai", "monai_checkpointed", "twin", "twin_narrow")
TWINS = ("twin", "twin_narrow")
NARROW_WIDTH = 1.0  # branch_width of the narrow twin: hidden width = the level's width, about half MONAI's weights
LABELS = {"monai": "MONAI", "monai_checkpointed": "MONAI + checkpointing", "twin": "twin (reversible)",
          "twin_narrow": f"twin, branch_width={NARROW_WIDTH:g}"}
REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "monai_twins.md"
FIGURE = REPO_ROOT / "docs" / "figures" / "monai_twins_memory.png"
HEADING = "## Measured"
MIB = 2**20


def _checkpoint_blocks(name: str, net: nn.Module) -> nn.Module:
    """MONAI's network with MONAI's ``ActivationCheckpointWrapper`` around each block (UNet: CheckpointUNet)."""
    if name == "SegResNet":
        net.down_layers = nn.ModuleList(ActivationCheckpointWrapper(m) for m in net.down_layers)
        net.up_layers = nn.ModuleList(ActivationCheckpointWrapper(m) for m in net.up_layers)
    elif name == "DynUNet":
        layer = net.skip_layers
        while isinstance(layer, DynUNetSkipLayer):
            layer.downsample = ActivationCheckpointWrapper(layer.downsample)
            layer.upsample.conv_block = ActivationCheckpointWrapper(layer.upsample.conv_block)
            if not isinstance(layer.next_layer, DynUNetSkipLayer):
                layer.next_layer = ActivationCheckpointWrapper(layer.next_layer)
            layer = layer.next_layer
    return net


def build(name: str, variant: str) -> nn.Module:
    """``variant`` of network ``name`` (:data:`NETWORKS`)."""
    kind, config = NETWORKS[name]
    if variant in TWINS:
        width = NARROW_WIDTH if variant == "twin_narrow" else None
        return getattr(twin_nets, kind)(**config, form="reversible", branch_width=width)
    if variant == "monai_checkpointed" and kind == "UNet":
        return CheckpointUNet(**config)
    net = getattr(monai_nets, kind)(**config)
    return _checkpoint_blocks(kind, net) if variant == "monai_checkpointed" else net


def base_cube(name: str, args: argparse.Namespace) -> int:
    return args.base or BASE[NETWORKS[name][0]]


def divisor(name: str) -> int:
    return DIVISOR[NETWORKS[name][0]]


def parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def step_inputs(name: str, variant: str, size: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """One thread, seed 0: ``variant`` of ``name``, a ``1 x 1 x size^3`` input and a 3-class target."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return build(name, variant), torch.randn(1, 1, size, size, size), torch.randint(0, 3, (1, size, size, size))


def measure(name: str, variant: str, size: int, limit: int | None, with_saved: bool) -> dict:
    """In a fresh process: warm-up step, then the measured step's peak and time (and bytes saved)."""
    net, x, target = step_inputs(name, variant, size)
    peak, seconds, saved = measure_step(net, x, target, limit, with_saved)
    result = {"peak": peak, "seconds": seconds}
    if saved is not None:
        result["saved"] = saved
    return result


def fresh(name: str, variant: str, size: int, limit: int | None = None, with_saved: bool = False) -> dict | None:
    """:func:`measure` in a fresh process; None when it passed ``limit``."""
    try:
        return in_fresh_process(measure, name, variant, size, limit, with_saved)
    except RuntimeError as error:
        if f"exit code {OVER_BUDGET}" in str(error):
            return None
        raise


def timing(name: str, size: int, rounds: int) -> dict[str, float]:
    """In one process: every variant of ``name`` at ``size^3``, a warm-up step each, then ``rounds`` rounds of
    one cross-entropy step per variant in turn; the median seconds of each variant's steps."""
    steps: dict[str, Callable[[], None]] = {}
    for variant in VARIANTS:
        net, x, target = step_inputs(name, variant, size)

        def step(net: nn.Module = net, x: torch.Tensor = x, target: torch.Tensor = target) -> None:
            net.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x), target).backward()

        step()
        steps[variant] = step
    seconds: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for _ in range(rounds):
        for variant, step in steps.items():
            start = time.perf_counter()
            step()
            seconds[variant].append(time.perf_counter() - start)
    return {variant: float(np.median(values)) for variant, values in seconds.items()}


@contextmanager
def default_allocator() -> Iterator[None]:
    """Fresh processes started inside run with glibc's default allocator settings, as users run (the memory
    figures' :data:`MALLOC_ENV` maps every large allocation anew, which costs page faults on each)."""
    saved = {key: os.environ.pop(key) for key in MALLOC_ENV if key in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _label(operators: tuple[str, ...]) -> str:
    """Where an allocation was made: forward or backward, inside a coupling's recompute or not, and the
    outermost ATen operator (``aten::empty`` and the like name no layer)."""
    backward = any(op.startswith("autograd::engine::evaluate_function") for op in operators)
    recompute = any(op.startswith("_ReversibleFunctionBackward") for op in operators)
    aten = next((op for op in operators if op.startswith("aten::")), operators[-1] if operators else "?")
    phase = "backward, coupling recompute" if recompute else "backward" if backward else "forward"
    if not backward and any(op.startswith("_ReversibleFunction") for op in operators):
        phase = "forward, couplings' output"
    return f"{phase}: {aten}"


def breakdown(name: str, variant: str, size: int) -> dict:
    """In a fresh process: the allocated peak of one cross-entropy step at ``size^3`` after a warm-up step,
    and what is live at that peak, summed by :func:`_label`, in values (float32) per voxel of the cube."""
    net, x, target = step_inputs(name, variant, size)

    def step() -> None:
        nn.functional.cross_entropy(net(x), target).backward()

    step()
    net.zero_grad(set_to_none=True)
    peak, live = live_at_allocated_peak(step)
    per_voxel = 4 * size**3
    labels: dict[str, float] = {}
    for allocation in live:
        label = _label(allocation.operators)
        labels[label] = labels.get(label, 0.0) + allocation.nbytes / per_voxel
    return {"peak": peak, "per_voxel": peak / per_voxel, "live": labels}


# ---------------------------------------------------------------- learning parity


def tissue_task(spacing: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The MNI T1 ``(1, 1, X, Y, Z)`` (z-scored in the brain), labels ``(1, 1, X, Y, Z)`` of annotator 1, and the
    first axial index of the held-out top quarter."""
    anatomy = mni_anatomy(spacing)
    image = anatomy.t1
    brain = anatomy.brain_mask
    image = (image - image[brain].mean()) / image[brain].std()
    labels = tissue_raters(anatomy)[1]
    split = int(round(image.shape[2] * 0.75))
    as_tensor = lambda a, dtype: torch.as_tensor(np.ascontiguousarray(a), dtype=dtype)[None, None]  # noqa: E731
    return as_tensor(image, torch.float32), as_tensor(labels, torch.long), split


def random_patches(
    image: torch.Tensor, labels: torch.Tensor, stop: int, patch: int, batch: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random ``patch^3`` crops (random flips) of the volume below axial index ``stop``."""
    xs, ys = [], []
    shape = (*image.shape[2:4], stop)
    for _ in range(batch):
        corner = [int(torch.randint(0, max(s - patch, 0) + 1, (1,), generator=generator)) for s in shape]
        window = tuple(slice(c, c + patch) for c in corner)
        x, y = image[(0, slice(None), *window)], labels[(0, slice(None), *window)]
        for axis in (1, 2, 3):
            if torch.rand(1, generator=generator) < 0.5:
                x, y = x.flip(axis), y.flip(axis)
        xs.append(x)
        ys.append(y)
    return torch.stack(xs), torch.stack(ys)


def held_out_dice(net: nn.Module, image: torch.Tensor, labels: torch.Tensor, start: int, roi: int) -> float:
    """Mean Dice of grey and white matter on the slab from axial index ``start`` (a margin of context above)."""
    net.eval()
    context = max(start - roi // 2, 0)
    with torch.no_grad():
        logits = sliding_window_inference(image[..., context:], (roi,) * 3, 4, net, overlap=0.5)
    prediction = logits.argmax(1)[0, ..., start - context :]
    truth = labels[0, 0, ..., start:]
    return float(dice(prediction, truth.long(), labels=(1, 2)).mean())


def train(name: str, variant: str, steps: int, patch: int, batch: int, spacing: float, seed: int = 0) -> dict:
    """Train ``variant`` of ``name`` for ``steps`` (Adam 1e-3, Dice + CE) from ``seed`` (initial weights and
    patches); held-out Dice."""
    torch.set_num_threads(1)
    image, labels, split = tissue_task(spacing)
    torch.manual_seed(seed)
    net = build(name, variant)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    losses = []
    net.train()
    for _ in range(steps):
        x, y = random_patches(image, labels, split, patch, batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    seconds = time.perf_counter() - start
    return {
        "dice": held_out_dice(net, image, labels, split, patch),
        "final_loss": sum(losses[-10:]) / len(losses[-10:]),
        "seconds": seconds,
    }


# ---------------------------------------------------------------- the run


class Results:
    """The JSON file that accumulates results, so a rerun skips what is done; the memory and learning parts
    may run in two processes at once (each write re-reads the file under a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _read(self) -> dict:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, *keys: str) -> object:
        node = self._read()
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def put(self, value: object, *keys: str) -> None:
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            node = data
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            node[keys[-1]] = value
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(data, indent=1))
            temporary.replace(self.path)

    def append(self, value: object, *keys: str) -> None:
        """Add ``value`` to the list at ``keys`` (once: a value already there is not repeated)."""
        known = self.get(*keys) or []
        if value not in known:
            self.put([*known, value], *keys)

    def once(self, compute: Callable[[], object], *keys: str) -> object:
        known = self.get(*keys)
        if known is None:
            known = compute()
            self.put(known, *keys)
        return known


def _suffix(variant: str) -> str:
    """Result keys of the default twin are ``probes`` / ``largest_cube``, of another ``probes_<variant>`` ..."""
    return "" if variant == "twin" else f"_{variant}"


def run_memory(
    args: argparse.Namespace,
    results: Results,
    log: Callable[[str], None],
    names: list[str],
    variants: tuple[str, ...] = VARIANTS,
) -> None:
    """Parts 1 and 2 (part 3 for the depth series): each of ``variants`` at the base cube, then each twin's
    largest cube within MONAI's peak."""
    for name in names:
        base = base_cube(name, args)
        for variant in variants:
            found = results.once(lambda: fresh(name, variant, base, with_saved=True), name, "base", variant)
            log(f"{name} {variant} {base}^3: {found}")
        budget = results.get(name, "base", "monai", "peak")
        cubes = list(range(base, int(base * MAX_FACTOR) + 1, divisor(name)))
        for variant in (v for v in variants if v in TWINS):
            key = "probes" + _suffix(variant)
            probes: dict[str, dict | None] = results.get(name, key) or {str(base): results.get(name, "base", variant)}

            def fits(size: int) -> bool:
                if str(size) not in probes:
                    probes[str(size)] = fresh(name, variant, size, limit=budget)
                    results.put(probes, name, key)
                    log(f"{name} {variant} {size}^3 within {budget / MIB:.0f} MiB: {probes[str(size)]}")
                found = probes[str(size)]
                return found is not None and found["peak"] <= budget

            # first guess: the twin's peak grows with the volume from its figure at the base cube
            guess = base * (budget / results.get(name, "base", variant, "peak")) ** (1 / 3)
            guess_index = max((i for i, c in enumerate(cubes) if c <= guess), default=0)
            first = [0, guess_index, guess_index + 1]
            largest = results.once(
                lambda: largest_fitting(cubes, fits, first), name, "largest_cube" + _suffix(variant)
            )
            log(f"{name}: largest {variant} cube within MONAI's {base}^3 peak: {largest}")


def run_breakdown(args: argparse.Namespace, results: Results, log: Callable[[str], None]) -> None:
    """What is live at the allocated peak of MONAI's network and of the twin at the base cube, and of the twin
    at the first cube past its largest within MONAI's peak (when part 2 found it)."""
    for name in args.nets:
        base = base_cube(name, args)
        largest = results.get(name, "largest_cube")
        runs = [("monai", base), ("twin", base)]
        if largest:
            runs.append(("twin", largest + divisor(name)))
        for variant, size in runs:
            key = variant if size == base else f"{variant}@{size}"
            found = results.once(lambda: in_fresh_process(breakdown, name, variant, size), name, "breakdown", key)
            log(f"{name} {variant} {size}^3 allocated peak: {found['peak'] / MIB:.0f} MiB")


def run_timing(args: argparse.Namespace, results: Results, log: Callable[[str], None]) -> None:
    """Step time of every variant at the base cube, alternated in one process (:func:`timing`)."""
    for name in args.nets:
        base = base_cube(name, args)
        with default_allocator():
            found = results.once(lambda: in_fresh_process(timing, name, base, args.rounds), name, "time")
        log(f"{name} {base}^3 median step (s): {found}")


def run_learning(args: argparse.Namespace, results: Results, log: Callable[[str], None]) -> None:
    """Part 3: MONAI's network and the twin trained alike on the brain-tissue task."""
    for seed in range(args.seeds):
        for name in args.nets:
            for variant in ("monai", "twin"):
                found = results.once(
                    lambda: train(name, variant, args.steps, args.patch, args.batch, args.spacing, seed),
                    name, "learning", variant, str(seed),
                )
                log(f"{name} {variant} seed {seed} learning: {found}")


# ---------------------------------------------------------------- docs


def memory_table(results: Results, nets: list[str], bases: dict[str, int]) -> str:
    rows = [
        "| network | base cube | variant | parameters (vs MONAI) | saved for backward (MiB) | saved / MONAI "
        "| peak (MiB) | peak / MONAI | step (s, median) | step / MONAI |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in nets:
        ref = results.get(name, "base", "monai")
        times = results.get(name, "time") or {}
        reference = parameters(build(name, "monai"))
        for variant in VARIANTS:
            m = results.get(name, "base", variant)
            if m is None:
                continue
            count = parameters(build(name, variant))
            step = "not measured | -"
            if variant in times:
                step = f"{times[variant]:.2f} | {times[variant] / times['monai']:.2f}"
            rows.append(
                f"| {name} | {bases[name]}^3 | {LABELS[variant]} | {count / 1e6:.2f} M ({count / reference:.3f}x) | "
                f"{m['saved'] / MIB:,.0f} | {m['saved'] / ref['saved']:.2f} | {m['peak'] / MIB:,.0f} | "
                f"{m['peak'] / ref['peak']:.2f} | {step} |"
            )
    return "\n".join(rows)


def cube_table(results: Results, nets: list[str], bases: dict[str, int]) -> tuple[str, list[str]]:
    rows = [
        "| network | MONAI's peak at its base cube (the budget) | variant | cubes probed: peak (MiB) | largest cube "
        "within the budget | volume / base |",
        "|---|---:|---|---|---:|---:|",
    ]
    checks = []
    for name, variant in ((n, v) for n in nets for v in TWINS):
        base = bases[name]
        budget = results.get(name, "base", "monai", "peak")
        if results.get(name, "base", variant) is None:
            continue
        largest = results.get(name, "largest_cube" + _suffix(variant))
        probes = {int(size): found for size, found in (results.get(name, "probes" + _suffix(variant)) or {}).items()}
        probes[base] = results.get(name, "base", variant)
        probed = ", ".join(
            f"{size}^3: " + ("> budget" if found is None else f"{found['peak'] / MIB:,.0f}")
            for size, found in sorted(probes.items())
        )
        volume = (largest / base) ** 3 if largest else 0.0
        capped = " (search cap)" if largest and largest + divisor(name) > base * MAX_FACTOR else ""
        cube = f"{largest}^3{capped}" if largest else f"none (not even {base}^3)"
        rows.append(
            f"| {name} | {budget / MIB:,.0f} MiB at {base}^3 | {LABELS[variant]} | {probed} | {cube} | {volume:.1f}x |"
        )
        checks.append(
            f"- {name}, {LABELS[variant]}: trains {cube} within MONAI's peak at {base}^3, {volume:.1f}x the volume "
            f"(target >= 4x: {'met' if volume >= 4 else 'NOT met'})."
        )
    return "\n".join(rows), checks


def depth_table(results: Results, args: argparse.Namespace) -> tuple[str, list[str]]:
    rows = [
        "| `blocks_down` | MONAI's peak at the base cube (MiB) | twin's peak (MiB) | twin / MONAI | largest twin cube "
        "within MONAI's peak | volume / base |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    checks = []
    for blocks in DEPTHS:
        name = depth_name(blocks)
        monai, twin = results.get(name, "base", "monai"), results.get(name, "base", "twin")
        largest = results.get(name, "largest_cube")
        if monai is None or twin is None or largest is None:
            continue
        base = base_cube(name, args)
        volume = (largest / base) ** 3
        capped = " (search cap)" if largest + divisor(name) > base * MAX_FACTOR else ""
        rows.append(
            f"| ({blocks}, 2, 2, 4) | {monai['peak'] / MIB:,.0f} at {base}^3 | {twin['peak'] / MIB:,.0f} | "
            f"{twin['peak'] / monai['peak']:.2f} | {largest}^3{capped} | {volume:.1f}x |"
        )
        checks.append(
            f"- {name}: the twin trains {largest}^3{capped} within MONAI's peak at {base}^3, {volume:.1f}x the "
            f"volume (target >= 4x: {'met' if volume >= 4 else 'NOT met'})."
        )
    return "\n".join(rows), checks


def breakdown_table(results: Results, nets: list[str], bases: dict[str, int], rows_per_variant: int = 6) -> str:
    rows = [
        "| network | variant | allocated peak (MiB) | values per voxel at the peak | largest parts live at the peak "
        "(values per voxel) |",
        "|---|---|---:|---:|---|",
    ]
    for name in nets:
        for key, found in (results.get(name, "breakdown") or {}).items():
            variant, _, size = key.partition("@")
            parts = sorted(found["live"].items(), key=lambda item: -item[1])[:rows_per_variant]
            listed = "; ".join(f"{label} {value:.0f}" for label, value in parts if value >= 0.5)
            rows.append(
                f"| {name} ({size or bases[name]}^3) | {LABELS[variant]} | {found['peak'] / MIB:,.0f} | "
                f"{found['per_voxel']:.0f} | {listed} |"
            )
    return "\n".join(rows)


def learning_table(results: Results, nets: list[str]) -> tuple[str, list[str]]:
    rows = [
        "| network | seeds | Dice MONAI (mean +- sd over seeds) | Dice twin (mean +- sd) | difference (mean) "
        "| difference per seed | final train loss MONAI / twin (mean) |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    checks = []
    for name in nets:
        runs = {variant: results.get(name, "learning", variant) or {} for variant in ("monai", "twin")}
        seeds = sorted(set(runs["monai"]) & set(runs["twin"]), key=int)
        if not seeds:
            continue

        def mean(variant: str, key: str) -> float:
            return float(np.mean([runs[variant][seed][key] for seed in seeds]))

        def spread(variant: str) -> float:
            return float(np.std([runs[variant][seed]["dice"] for seed in seeds], ddof=1)) if len(seeds) > 1 else 0.0

        diffs = [runs["twin"][seed]["dice"] - runs["monai"][seed]["dice"] for seed in seeds]
        diff = float(np.mean(diffs))
        rows.append(
            f"| {name} | {len(seeds)} | {mean('monai', 'dice'):.3f} +- {spread('monai'):.3f} | "
            f"{mean('twin', 'dice'):.3f} +- {spread('twin'):.3f} | {diff:+.3f} | "
            f"{', '.join(f'{d:+.3f}' for d in diffs)} | {mean('monai', 'final_loss'):.3f} / "
            f"{mean('twin', 'final_loss'):.3f} |"
        )
        verdict = "met" if abs(diff) <= 0.02 else "NOT met: the twin is ahead" if diff > 0 else "NOT met"
        checks.append(
            f"- {name}: held-out Dice {mean('twin', 'dice'):.3f} (twin) vs {mean('monai', 'dice'):.3f} (MONAI), mean "
            f"of {len(seeds)} seeds, difference {diff:+.3f} (target within 0.02: {verdict}; MONAI's own Dice varies "
            f"by {spread('monai'):.3f} (sd) from seed to seed)."
        )
    return "\n".join(rows), checks


def plot(results: Results, nets: list[str], bases: dict[str, int], path: Path) -> None:
    """Per network: saved-for-backward and peak memory at the base cube per variant (bars); then the depth
    series: MONAI's and the twin's peak against the blocks at full resolution, with the twin's volume gain."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = [n for n in DEPTHS if results.get(depth_name(n), "largest_cube")]
    panels = len(nets) + bool(depths)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.2), squeeze=False)
    if depths:
        plot_depths(results, depths, axes[0][-1])
    for ax, name in zip(axes[0], nets):
        variants = [v for v in VARIANTS if results.get(name, "base", v) is not None]
        saved = [results.get(name, "base", v, "saved") / MIB for v in variants]
        peak = [results.get(name, "base", v, "peak") / MIB for v in variants]
        positions = np.arange(len(variants))
        ax.bar(positions - 0.2, saved, 0.4, label="saved for backward")
        ax.bar(positions + 0.2, peak, 0.4, label="peak of the step")
        ax.set_xticks(positions, [LABELS[v].replace(" ", "\n", 1) for v in variants], fontsize=7)
        largest = results.get(name, "largest_cube")
        fits = f"twin fits {largest}^3 in MONAI's peak" if largest else "twin does not fit in MONAI's peak"
        ax.set_title(f"{name}, 1x1x{bases[name]}^3: {fits}", fontsize=10)
        ax.set_ylabel("MiB")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_depths(results: Results, depths: list[int], ax: Axes) -> None:
    """The depth series on ``ax``: peaks (MiB) at the base cube against the blocks at full resolution."""
    names = [depth_name(n) for n in depths]
    base = BASE["SegResNet"]
    for variant, marker in (("monai", "o"), ("twin", "s")):
        peaks = [results.get(name, "base", variant, "peak") / MIB for name in names]
        ax.plot(depths, peaks, marker=marker, label=LABELS[variant])
    for n, name in zip(depths, names):
        gain = (results.get(name, "largest_cube") / base) ** 3
        peak = results.get(name, "base", "twin", "peak") / MIB
        ax.annotate(f"{gain:.1f}x", (n, peak), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(depths, [str(n) for n in depths])
    ax.set_xlabel("SegResNet blocks at full resolution")
    ax.set_ylabel(f"peak at {base}^3 (MiB)")
    ax.set_title("twin's volume gain within MONAI's peak", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)


def cores(results: Results) -> str:
    """How loaded the machine was when the commands of each part started (1-minute load average), and what
    that means: only the step times (the timing part) depend on it."""
    loads: dict[str, list[float]] = results.get("load_at_start") or {}
    measured = "; ".join(f"{part} {', '.join(f'{load:.2f}' for load in values)}" for part, values in loads.items())
    if any(load > 0.5 for load in loads.get("time", [])):
        return (f"load average at the start: {measured}: the step times ran on **shared cores**, so they and their "
                "ratios are upper bounds, not results (memory figures and Dice do not depend on the load).")
    return (f"load average at the start: {measured}; the step times ran on an idle machine (memory figures and "
            "Dice do not depend on the load).")


def docs_section(args: argparse.Namespace, results: Results) -> str:
    bases = {name: base_cube(name, args) for name in args.nets}
    memory = memory_table(results, args.nets, bases)
    cubes, cube_checks = cube_table(results, args.nets, bases)
    learning, learning_checks = learning_table(results, args.nets)
    depth, depth_checks = depth_table(results, args)
    configs = "\n".join(f"  - `{name}`: `{CONFIGS[name]}`" for name in args.nets)
    learned = results.get("learning_settings")
    learning_heading = (
        f"### Learning parity ({learned['steps']} steps, batch {learned['batch']} of {learned['patch']}^3 patches, "
        f"brain tissue at {learned['spacing']:g} mm, seeds 0 to {learned['seeds'] - 1})"
        if learned
        else "### Learning parity (not measured)"
    )
    return "\n".join(
        [
            HEADING,
            "",
            *(
                f"- Command ({part}): `{command}`"
                for part, commands in (results.get("commands") or {}).items()
                for command in commands
            ),
            f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine_description(1)}; {cores(results)}",
            "- Peak: process peak resident set over the resident set before the step (`step_peak_bytes`), one fresh "
            "process per figure, second step after `malloc_trim`, with "
            f"`{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}`. "
            "Saved for backward: `saved_bytes` of forward + cross-entropy (parameters saved by layers included).",
            "- Step time: every variant built in one fresh process with glibc's default allocator, a warm-up step "
            f"each, then {args.rounds} rounds of one step per variant in turn; medians.",
            "- Configurations (3D, `in_channels=1`, `out_channels=3`):",
            configs,
            "",
            "### Memory of one training step at the base cube",
            "",
            memory,
            "",
            "### Where the memory is at the peak",
            "",
            "Allocations live at the allocated peak of one step (`revnets.core.memory.live_at_allocated_peak`, "
            "the profiler's allocation events; exact sizes, the same in every run), summed by phase and the ATen "
            "operator that allocated them, in float32 values per voxel of the cube. Weight gradients count too.",
            "",
            breakdown_table(results, args.nets, bases),
            "",
            "### Largest training cube within MONAI's memory",
            "",
            cubes,
            "",
            "### Deeper at full resolution",
            "",
            "SegResNet as above with `n` residual blocks at its full-resolution level (`blocks_down=(n, 2, 2, 4)`; "
            "MONAI's default is 1): MONAI's network and the reversible twin at the base cube, and the twin's largest "
            "cube within MONAI's peak there (same method as the table above).",
            "",
            depth,
            "",
            learning_heading,
            "",
            learning,
            "",
            "### Targets",
            "",
            *cube_checks,
            *depth_checks,
            *learning_checks,
            "",
            f"![bytes saved for backward and peak memory per network and variant](figures/{FIGURE.name})",
            "",
        ]
    )


def write_docs(args: argparse.Namespace, results: Results) -> None:
    text = DOCS.read_text() if DOCS.exists() else f"# Reversible twins of MONAI's networks\n\n{HEADING}\n"
    head, _, _ = text.partition(HEADING)
    DOCS.write_text(head + docs_section(args, results))
    plot(results, args.nets, {name: base_cube(name, args) for name in args.nets}, FIGURE)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--base", type=int, help="one base cube for every network (default: per network)")
    parser.add_argument(
        "--part", choices=["memory", "breakdown", "depth", "time", "learning", "all", "none"], default="all",
        help="what to measure (the parts may run as separate processes at once; none: only --write-docs)",
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed steps per variant (medians)")
    parser.add_argument("--steps", type=int, default=400, help="training steps of the learning parity")
    parser.add_argument("--seeds", type=int, default=3, help="learning-parity runs per network (seeds 0, 1, ...)")
    parser.add_argument("--patch", type=int, default=32, help="training patch side (a multiple of 16)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--spacing", type=float, default=4.0, help="mm per voxel of the brain-tissue task")
    parser.add_argument("--results", type=Path, default=Path("/tmp/benchmark_monai_twins.json"))
    parser.add_argument("--quick", action="store_true", help="base 32^3, 4 steps: checks that the script runs")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(REPO_ROOT)} and its plot")
    args = parser.parse_args(argv)
    if args.quick:
        args.base, args.steps, args.seeds, args.rounds = 32, 4, 1, 2
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    track_live_tensors()
    results = Results(args.results)

    def log(message: str) -> None:
        print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)

    command = shlex.join(["nice", "-n", "10", "python", "scripts/benchmark_monai_twins.py", *argv])
    load = os.getloadavg()[0]  # before this command's own work: a later reading would count its earlier parts
    if args.part in ("memory", "all"):
        results.append(command, "commands", "memory")
        results.append(load, "load_at_start", "memory")
        run_memory(args, results, log, args.nets)
    if args.part in ("breakdown", "all"):
        results.append(command, "commands", "breakdown")
        run_breakdown(args, results, log)
    if args.part in ("depth", "all"):
        results.append(command, "commands", "depth")
        results.append(load, "load_at_start", "depth")
        run_memory(args, results, log, [depth_name(n) for n in DEPTHS], ("monai", "twin"))
    if args.part in ("time", "all"):
        results.append(command, "commands", "time")
        results.append(load, "load_at_start", "time")
        run_timing(args, results, log)
    if args.part in ("learning", "all"):
        results.append(command, "commands", "learning")
        results.append(load, "load_at_start", "learning")
        settings = {
            "steps": args.steps, "patch": args.patch, "batch": args.batch, "spacing": args.spacing, "seeds": args.seeds
        }
        results.put(settings, "learning_settings")
        run_learning(args, results, log)
    if args.write_docs:
        write_docs(args, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
