#!/usr/bin/env python
"""Benchmark PHiSeg against RevPHiSeg: memory and time of a training step, and accuracy after equal training.

1. Memory and time of one training step (the PHiSeg loss, forward and backward) of each form: ``phiseg``
   (the reference's conv stacks), ``revphiseg`` (reversible couplings, memory-saving backward),
   ``revphiseg-twin`` (the same network under plain autograd) and ``checkpointed`` (PHiSeg with each conv
   stack recomputed from its input). Settings: the paper's LIDC size (2D 128x128, batch 12, the
   reference's widths 32..192, 7 resolution and 5 latent levels) and 3D (64^3, batch 2, widths 8..48).
   Each step runs in a fresh process: bytes saved for backward, peak memory (resident-set high-water mark
   over the step, CPU; ``max_memory_allocated`` on CUDA) and the median time of ``--repeats`` steps after a
   warm-up step.
2. Accuracy: PHiSeg and RevPHiSeg (widths 16..64, 3 latent levels) trained for ``--steps`` steps with the
   same seed on axial 64x64 slices of the MNI multi-rater set (3 mm, 4 annotators); the top quarter of the
   slices is held out. On the held-out slices, 16 samples each: GED (squared, 1 - IoU over grey and white
   matter), S_NCC and the Dice of the mean prediction against the median annotator.

Usage:
    python scripts/benchmark_phiseg.py                  # print the tables
    python scripts/benchmark_phiseg.py --write-docs     # and write them into docs/BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from benchmark_docs import MALLOC_ENV, cpu_name, logical_cores, track_live_tensors, write_section

from revnets.core import Form
from revnets.core.memory import allocated_peak_bytes, in_fresh_process, saved_bytes, step_peak_bytes
from revnets.data.slices import mni_multirater_slices
from revnets.models.catalog import build, forms_of
from revnets.uncertainty import dice, generalized_energy_distance, ncc

FORMS = {
    "phiseg": {"name": "phiseg", "form": Form.PLAIN},
    "revphiseg": {"name": "revphiseg", "form": Form.REVERSIBLE},
    "revphiseg-twin": {"name": "revphiseg", "form": Form.PLAIN},
    "checkpointed": {"name": "phiseg", "form": Form.CHECKPOINTED},
}
"""Columns of the tables: a model of revnets' catalog in one of its forms."""
SETTINGS = {
    "2D 128x128, batch 12": dict(spatial_dims=2, size=128, batch=12, channels=(32, 64, 128, 192, 192, 192, 192)),
    "3D 64^3, batch 2": dict(spatial_dims=3, size=64, batch=2, channels=(8, 16, 32, 48, 48, 48, 48)),
}
QUALITY_NET = dict(spatial_dims=2, out_channels=3, channels=(16, 32, 64, 64, 64), latent_levels=3)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "BENCHMARKS.md"
HEADING = "## PHiSeg and RevPHiSeg"
PEAK_HEADING = "## RevPHiSeg's peak against PHiSeg and checkpointing"
MIB = 2**20


@dataclass
class StepCost:
    saved_mib: float
    peak_mib: float
    seconds: float
    allocated_mib: float = float("nan")


def measure_step(
    form: str, setting: str, repeats: int, threads: int, device: str, batch: int | None = None
) -> StepCost:
    """One form's training step in one setting (run in a fresh process); ``batch`` overrides the setting's."""
    torch.set_num_threads(threads)
    spec = dict(SETTINGS[setting])
    size, default_batch, dims = spec.pop("size"), spec.pop("batch"), spec["spatial_dims"]
    batch = batch or default_batch
    torch.manual_seed(0)
    model = build(FORMS[form]["name"], FORMS[form]["form"], **spec).to(device)
    x = torch.randn(batch, 1, *(size,) * dims, device=device)
    y = torch.randint(0, 2, (batch, 1, *(size,) * dims), device=device)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        model.training_loss(x, y).total.backward()

    def synchronised_step() -> None:
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    saved = saved_bytes(lambda: model.training_loss(x, y).total)
    step()
    peak = step_peak_bytes(step, device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        synchronised_step()
        times.append(time.perf_counter() - start)
    allocated = allocated_peak_bytes(step) if device == "cpu" else float("nan")
    return StepCost(saved / MIB, peak / MIB, float(np.median(times)) if times else float("nan"), allocated / MIB)


def train_and_score(name: str, steps: int, seed: int) -> dict[str, float]:
    """Train one form on the lower three quarters of the slices, score 16 samples on the rest."""
    images, raters = mni_multirater_slices(size=64, spacing=3.0)
    split = int(len(images) * 0.75)
    torch.manual_seed(seed)
    model = build(name, forms_of(name)[0], **QUALITY_NET)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = torch.randint(0, split, (12,), generator=generator)
        x, y = images[batch], raters[batch]
        flip = torch.rand(12, generator=generator) < 0.5
        x, y = (
            torch.where(flip[:, None, None, None], x.flip(-1), x),
            torch.where(flip[:, None, None, None], y.flip(-1), y),
        )
        optimiser.zero_grad(set_to_none=True)
        model.training_loss(x, y).total.backward()
        optimiser.step()
    model.eval()
    geds, nccs, dices = [], [], []
    for image, annotators in zip(images[split:], raters[split:]):
        samples = model.sample(image[None], 16)[:, 0]
        geds.append(float(generalized_energy_distance(samples.argmax(1), annotators, labels=[1, 2])))
        nccs.append(float(ncc(samples, annotators)))
        median = annotators.sort(0).values[len(annotators) // 2]
        dices.append(dice(samples.mean(0).argmax(0), median, [1, 2]).numpy())
    per_class = np.nanmean(np.stack(dices), axis=0)
    return {
        "ged": float(np.mean(geds)),
        "ncc": float(np.nanmean(nccs)),
        "dice_gm": float(per_class[0]),
        "dice_wm": float(per_class[1]),
    }


def peak_table(args: argparse.Namespace) -> None:
    """Peak memory of one training step per form and setting: allocated (deterministic) and resident."""
    track_live_tensors()
    lines = [
        PEAK_HEADING,
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {cpu_name()}, {logical_cores()} logical cores, torch "
        f"{torch.__version__}, by `python scripts/benchmark_phiseg.py {shlex.join(sys.argv[1:])}`.",
        "",
        "One training step (PHiSeg loss, forward and backward), each form in a fresh process. *allocated peak*: "
        "the peak of the bytes allocated during the step (`revnets.core.memory.allocated_peak_bytes`: every "
        "tensor and workspace at its exact size, the same in every run, independent of other jobs); *resident "
        "peak*: the resident-set high-water mark over the step (with "
        f"`{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}`); ratios are allocated peaks over PHiSeg's "
        "and over checkpointed PHiSeg's.",
        "",
        "| setting | form | saved (MiB) | allocated peak (MiB) | / PHiSeg | / checkpointed | resident peak (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for setting in SETTINGS:
        costs = {
            form: in_fresh_process(measure_step, form, setting, args.repeats, args.threads, "cpu", args.batch)
            for form in FORMS
        }
        name = setting if args.batch is None else f"{setting.split(', batch')[0]}, batch {args.batch}"
        for form, cost in costs.items():
            lines.append(
                f"| {name} | {form} | {cost.saved_mib:.0f} | {cost.allocated_mib:.0f} "
                f"| {cost.allocated_mib / costs['phiseg'].allocated_mib:.2f} "
                f"| {cost.allocated_mib / costs['checkpointed'].allocated_mib:.2f} | {cost.peak_mib:.0f} |"
            )
            print(lines[-1], flush=True)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        write_section(DOCS, PEAK_HEADING, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2, help="timed steps per form (median)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each form for the accuracy table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-quality", action="store_true", help="only the memory and time table")
    parser.add_argument("--write-docs", action="store_true", help=f"write the tables into {DOCS.name}")
    parser.add_argument(
        "--peak-only",
        action="store_true",
        help=f"only the peak table (its own section of {DOCS.name}), with the allocated peak",
    )
    parser.add_argument("--batch", type=int, default=None, help="batch size in every setting (default: each setting's)")
    args = parser.parse_args()
    if args.peak_only:
        peak_table(args)
        return

    track_live_tensors()
    machine = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"{cpu_name()}, {logical_cores()} logical cores"
    )
    lines = [
        HEADING,
        "",
        f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine}, torch {torch.__version__}, "
        f"{args.threads} thread(s), by `python scripts/benchmark_phiseg.py {shlex.join(sys.argv[1:])}`.",
        "",
        "One training step (PHiSeg loss, forward and backward). *saved*: bytes autograd keeps for backward; "
        "*peak*: memory the step adds (CPU: resident-set high-water mark after a warm-up step, with "
        f"`{' '.join(f'{k}={v}' for k, v in MALLOC_ENV.items())}`); *ratio*: saved bytes over PHiSeg's.",
        "",
        "| setting | form | saved (MiB) | ratio | peak (MiB) | time (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for setting in SETTINGS:
        costs = {
            form: in_fresh_process(measure_step, form, setting, args.repeats, args.threads, args.device)
            for form in FORMS
        }
        for form, cost in costs.items():
            ratio = cost.saved_mib / costs["phiseg"].saved_mib
            lines.append(
                f"| {setting} | {form} | {cost.saved_mib:.0f} | {ratio:.2f} | {cost.peak_mib:.0f} "
                f"| {cost.seconds:.2f} |"
            )
            print(lines[-1], flush=True)
    if not args.skip_quality:
        lines += [
            "",
            f"Accuracy after {args.steps} steps (batch 12, Adam 1e-3, seed {args.seed}) on axial 64x64 slices "
            "of the MNI multi-rater set at 3 mm (4 annotators from the tissue maps); scored on the held-out top "
            "quarter of the slices with 16 samples each. GED: squared generalised energy distance (lower is "
            "better); S_NCC: higher is better; Dice of the mean prediction against the median annotator.",
            "",
            "| form | GED | S_NCC | Dice GM | Dice WM |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in ("phiseg", "revphiseg"):
            score = train_and_score(name, args.steps, args.seed)
            lines.append(
                f"| {name} | {score['ged']:.3f} | {score['ncc']:.3f} | {score['dice_gm']:.3f} "
                f"| {score['dice_wm']:.3f} |"
            )
            print(lines[-1], flush=True)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        write_section(DOCS, HEADING, section)


if __name__ == "__main__":
    main()
