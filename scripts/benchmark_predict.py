#!/usr/bin/env python
"""Benchmark the main job: ``revnets predict`` with 16 samples on the full MNI T1 (197x233x189), per bundle.

Each bundle runs as its own ``revnets predict`` process (the command users type, so start-up, loading,
preprocessing, sampling, inversion to the input space and writing are all in the time); the wall time and
the process's peak resident set (``wait4``) are recorded, ``--repeats`` times for each of ``--precisions``
(``revnets predict --precision``), the precisions alternating; the table keeps the median wall time. The
example scan is written first with ``revnets example`` into a temporary folder.

With ``--sweep N...`` it runs each bundle once per number of samples instead and writes its own section:
peak memory against the number of samples (the per-sample label maps and their inversion to the input
space are streamed, so the peak should barely grow).

Usage:
    python scripts/benchmark_predict.py                       # every bundle in bundles/
    python scripts/benchmark_predict.py --bundles invres_brain_tissue --samples 16 --write-docs
    python scripts/benchmark_predict.py --bundles invres_brain_tissue --sweep 4 16 64 --write-docs
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from benchmark_docs import cpu_name, logical_cores, write_section

from revnets.inference.inferer import fast_bfloat16

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "BENCHMARKS.md"
HEADING = "## Whole-volume inference: `revnets predict`"
SWEEP_HEADING = "## `revnets predict`: peak memory against the number of samples"
TARGET_SECONDS = 30


def run_timed(command: list[str]) -> tuple[float, float]:
    """Run ``command``; return its wall time in seconds and its peak resident set in MiB."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{shlex.join(command)} failed:\n{stderr}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    bundles = sorted(p.parent.parent.name for p in (REPO_ROOT / "bundles").glob("*/configs/inference.json"))
    parser.add_argument("--bundles", nargs="+", default=bundles, choices=bundles)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument(
        "--sweep", type=int, nargs="+", default=None, metavar="N", help="numbers of samples to compare"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precisions", nargs="+", default=["bfloat16", "float32"], choices=["bfloat16", "float32"],
        help="revnets predict --precision values, timed alternately (default both; the bundles' own is bfloat16)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per bundle and precision; the median is kept")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name}")
    args = parser.parse_args()

    revnets = [sys.executable, "-m", "revnets.cli"]
    cpu = f"{cpu_name()}, {logical_cores()} logical cores"
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu
    if args.sweep:
        section = _sweep(revnets, args, machine)
        print(section)
        if args.write_docs:
            write_section(DOCS, SWEEP_HEADING, section)
        return
    rows = []
    native = fast_bfloat16(torch.device(args.device))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*revnets, "example", tmp], check=True, stdout=subprocess.DEVNULL)
        for bundle in args.bundles:
            inputs = _inputs(Path(tmp), bundle)
            output = Path(tmp) / f"out_{bundle}"
            runs: dict[str, list[tuple[float, float]]] = {precision: [] for precision in args.precisions}
            for _ in range(args.repeats):  # the precisions alternate, so drifts of the machine hit both alike
                for precision in args.precisions:
                    command = _predict(revnets, inputs, bundle, output, args.samples, args.device, precision)
                    runs[precision].append(run_timed(command))
                    print(bundle, precision, runs[precision][-1], flush=True)
            for precision, timings in runs.items():
                seconds = statistics.median(t for t, _ in timings)
                peak = max(m for _, m in timings)
                within = "yes" if seconds <= TARGET_SECONDS else "no"
                spread = f"{min(t for t, _ in timings):.0f}-{max(t for t, _ in timings):.0f}"
                rows.append(
                    f"| {bundle} | {inputs[0].name} | {precision} | {args.samples} | {seconds:.0f} ({spread}) | "
                    f"{peak:.0f} | {within} |"
                )
                print(rows[-1], flush=True)
    section = "\n".join(
        [
            HEADING,
            "",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine}, torch {torch.__version__}, by "
            f"`python scripts/benchmark_predict.py {shlex.join(sys.argv[1:])}`. One `revnets predict` process per "
            "bundle on its example input from `revnets example` (MRI bundles: the full-resolution MNI T1, "
            "197x233x189 at 1 mm; the BraTS phantom case; the chest CT phantom): start-up, preprocessing, sampling, "
            f"inversion to the input space and writing the five NIfTI files. Target: <= {TARGET_SECONDS} s. Each "
            f"bundle ran {args.repeats} times per precision, the precisions alternating; the wall time is the "
            "median (range in brackets), the peak the largest. bfloat16 is "
            + ("native on this device (oneDNN reports AVX512-BF16/AMX), so it ran in bfloat16." if native else
               "not native on this device, so it ran in float32 too."),
            "",
            "| bundle | input | precision | samples | wall (s) | peak RSS (MiB) | within target |",
            "|---|---|---|---:|---:|---:|---|",
            *rows,
        ]
    ) + "\n"
    print(section)
    if args.write_docs:
        write_section(DOCS, HEADING, section)


def _predict(
    revnets: list[str], inputs: list[Path], bundle: str, output: Path, samples: int, device: str,
    precision: str | None = None,
) -> list[str]:
    command = [
        *revnets, "predict", *map(str, inputs), "--bundle", bundle, "--output", str(output),
        "--samples", str(samples), "--device", device, "--progress", "none", "--overwrite",
    ]
    return command if precision is None else [*command, "--precision", precision]


def _sweep(revnets: list[str], args: argparse.Namespace, machine: str) -> str:
    """Each bundle at each number of samples in ``args.sweep``: wall time and peak RSS, and the peak's ratio to
    the one at 16 samples (or the first count)."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*revnets, "example", tmp], check=True, stdout=subprocess.DEVNULL)
        for bundle in args.bundles:
            inputs = _inputs(Path(tmp), bundle)
            runs = {}
            for samples in args.sweep:
                output = Path(tmp) / f"out_{bundle}_{samples}"
                runs[samples] = run_timed(_predict(revnets, inputs, bundle, output, samples, args.device))
                print(bundle, samples, runs[samples], flush=True)
            base = runs.get(16, runs[args.sweep[0]])[1]
            for samples, (seconds, peak) in runs.items():
                rows.append(f"| {bundle} | {samples} | {seconds:.0f} | {peak:.0f} | {peak / base:.2f} |")
    return "\n".join(
        [
            SWEEP_HEADING,
            "",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine}, torch {torch.__version__}, by "
            f"`python scripts/benchmark_predict.py {shlex.join(sys.argv[1:])}`: one `revnets predict` process per "
            "bundle and number of samples on the full-resolution MNI T1 (197x233x189, 1 mm); peak RSS from "
            "`wait4`, and its ratio to the peak at 16 samples (target: at most 1.25 at 64 samples). Wall times "
            "are upper bounds when the cores were shared with other jobs.",
            "",
            "| bundle | samples | wall (s) | peak RSS (MiB) | peak / peak at 16 |",
            "|---|---:|---:|---:|---:|",
            *rows,
        ]
    ) + "\n"


def _inputs(example: Path, bundle: str) -> list[Path]:
    """The example input that fits the bundle: the chest CT phantom for CT bundles, the BraTS phantom case for
    4-channel bundles, else the MNI T1."""
    metadata = json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "metadata.json").read_text())
    image = metadata["network_data_format"]["inputs"]["image"]
    if image.get("modality") == "CT":
        return [example / "chest_ct.nii.gz"]
    return [example / "mni_t1.nii.gz"] if image["num_channels"] == 1 else [example / "brats_phantom"]


if __name__ == "__main__":
    main()
