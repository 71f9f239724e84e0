#!/usr/bin/env python
"""Validate the memory planner: its predicted peak against the measured peak of real training steps.

For a bundle's network in one form, :func:`revnets.planner.probe_models` fits the memory model on its few
small probe steps; then real training steps at larger patches (the bundle's patch shape scaled so that its
longest side is each of ``--sizes``) and batch sizes are measured and compared with the prediction. The
measure is :func:`revnets.core.memory.allocated_peak_bytes` on CPU (every tensor and workspace with its
exact size, the same in every run) and ``max_memory_allocated`` on CUDA, the same measure the probes use.

Usage:
    python scripts/benchmark_planner.py --bundle lung_nodule_ct_revphiseg --sizes 128 192 256
    python scripts/benchmark_planner.py ... --write-docs   # also docs/BENCHMARKS.md and the plot
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch
from benchmark_docs import cpu_name, logical_cores, write_section

from revnets.core import Form
from revnets.planner import _proportional, bundle_network, probe_models, probe_sizes, training_peak

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "BENCHMARKS.md"
FIGURE = REPO_ROOT / "docs" / "figures" / "planner_predicted_measured.png"
HEADING = "## Memory planner: predicted against measured"
MIB = 2**20
TOLERANCE = 0.10


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default="lung_nodule_ct_revphiseg", help="a shipped bundle's name or folder")
    parser.add_argument("--forms", nargs="+", default=["reversible", "plain"], choices=[f.value for f in Form])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 192, 256],
                        help="longest side of each validated patch (multiples of the network's size divisor)")
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 4], help="batch sizes validated at each size")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS.relative_to(REPO_ROOT)} and the plot")
    return parser.parse_args(argv)


def validate(args: argparse.Namespace) -> tuple[list[dict[str, object]], str]:
    """One row per (form, patch, batch): predicted and measured peak bytes; and the probe sizes used."""
    device = torch.device(args.device)
    spec = bundle_network(args.bundle)
    divisor = int(getattr(spec.build(Form.of(args.forms[0])), "size_divisor", 1))
    probes = probe_sizes(spec, divisor)
    rows = []
    for name in args.forms:
        form = Form.of(name)
        training, _ = probe_models(spec, form, device, divisor, probes)
        for size in args.sizes:
            patch = _proportional(spec.train_patch, size, divisor)
            for batch in args.batches:
                torch.manual_seed(0)
                measured = training_peak(spec.build(form), batch, patch, device)
                predicted = training.step_peak(batch, patch)
                rows.append(dict(form=form.value, patch=patch, batch=batch, predicted=predicted, measured=measured))
                print(f"{form.value} {patch} x{batch}: predicted {predicted / MIB:.1f} MiB, "
                      f"measured {measured / MIB:.1f} MiB", flush=True)
    return rows, ", ".join("x".join(map(str, p)) for p in probes)


def markdown_table(rows: list[dict[str, object]]) -> str:
    lines = ["| form | patch | batch | predicted (MiB) | measured (MiB) | error |", "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        error = (row["predicted"] - row["measured"]) / row["measured"]
        lines.append(
            f"| {row['form']} | {'x'.join(map(str, row['patch']))} | {row['batch']} | {row['predicted'] / MIB:.1f} "
            f"| {row['measured'] / MIB:.1f} | {error:+.1%} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, object]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5))
    top = max(max(r["predicted"], r["measured"]) for r in rows) / MIB * 1.1
    axis.plot([0, top], [0, top], color="grey", linewidth=1, label="predicted = measured")
    axis.fill_between([0, top], [0, top * (1 - TOLERANCE)], [0, top * (1 + TOLERANCE)], color="grey", alpha=0.15,
                      label=f"±{TOLERANCE:.0%}")
    for form in dict.fromkeys(r["form"] for r in rows):
        mine = [r for r in rows if r["form"] == form]
        axis.scatter([r["measured"] / MIB for r in mine], [r["predicted"] / MIB for r in mine], label=form)
    axis.set_xlabel("measured peak of a training step (MiB)")
    axis.set_ylabel("planner's prediction (MiB)")
    axis.set_xlim(0, top)
    axis.set_ylim(0, top)
    axis.legend()
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = f"{cpu_name()}, {logical_cores()} logical cores, torch {torch.__version__}, {args.threads} thread(s)"
    rows, probes = validate(args)
    worst = max(abs(r["predicted"] - r["measured"]) / r["measured"] for r in rows)
    table = markdown_table(rows)
    verdict = "met" if worst <= TOLERANCE else "MISSED"
    summary = f"Predicted within {TOLERANCE:.0%} of measured at every size: {verdict} (worst {worst:.1%})."
    print(table, "", summary, sep="\n")
    if args.write_docs:
        command = shlex.join(["python", "scripts/benchmark_planner.py", *argv])
        section = "\n".join([
            HEADING,
            "",
            f"The planner's memory model of `{args.bundle}`'s network, fitted on its probe steps at {probes} (batch "
            "2 and 4, widths x0.5 and x1), against real training steps at larger patches (peak of the bytes "
            "allocated during forward, loss and backward: `revnets.core.memory.allocated_peak_bytes`, the same "
            "in every run, so the figures do not depend on other jobs on the machine).",
            "",
            f"- Command: `{command}`",
            f"- Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine}",
            "",
            table,
            "",
            summary,
            "",
            f"![predicted against measured peak](figures/{FIGURE.name})",
            "",
        ])
        write_section(DOCS, HEADING, section)
        plot(rows, FIGURE, f"{args.bundle}: planner vs measured\n{machine}")
        print(f"wrote {DOCS} and {FIGURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
