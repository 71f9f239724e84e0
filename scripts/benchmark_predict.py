#!/usr/bin/env python
"""Benchmark the main job: ``revnets predict`` with 16 samples on the full MNI T1 (197x233x189), per bundle.

Each bundle runs as its own ``revnets predict`` process (the command users type, so start-up, loading,
preprocessing, sampling, inversion to the input space and writing are all in the time); the wall time and
the process's peak resident set (``wait4``) are recorded. The example scan is written first with
``revnets example`` into a temporary folder.

Usage:
    python scripts/benchmark_predict.py                       # every bundle in bundles/
    python scripts/benchmark_predict.py --bundles invres_brain_tissue --samples 16 --write-docs
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from benchmark_docs import cpu_name, logical_cores, write_section

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs" / "BENCHMARKS.md"
HEADING = "## Whole-volume inference: `revnets predict`"
TARGET_SECONDS = 60


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
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOCS.name}")
    args = parser.parse_args()

    revnets = [sys.executable, "-m", "revnets.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([*revnets, "example", tmp], check=True, stdout=subprocess.DEVNULL)
        for bundle in args.bundles:
            inputs = _inputs(Path(tmp), bundle)
            command = [
                *revnets, "predict", *map(str, inputs), "--bundle", str(REPO_ROOT / "bundles" / bundle),
                "--output", str(Path(tmp) / f"out_{bundle}"), "--samples", str(args.samples),
                "--device", args.device, "--progress", "none",
            ]
            seconds, peak = run_timed(command)
            rows.append(f"| {bundle} | {inputs[0].name} | {args.samples} | {seconds:.0f} | {peak:.0f} | {'yes' if seconds <= TARGET_SECONDS else 'no'} |")
            print(rows[-1], flush=True)
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{cpu_name()}, {logical_cores()} logical cores"
    section = "\n".join(
        [
            HEADING,
            "",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine}, torch {torch.__version__}, by "
            f"`python scripts/benchmark_predict.py {shlex.join(sys.argv[1:])}`. One `revnets predict` process per "
            "bundle on the full-resolution MNI T1 (197x233x189, 1 mm): start-up, preprocessing, sampling, "
            f"inversion to the input space and writing the five NIfTI files. Target: <= {TARGET_SECONDS} s.",
            "",
            "| bundle | input | samples | wall (s) | peak RSS (MiB) | within target |",
            "|---|---|---:|---:|---:|---|",
            *rows,
        ]
    ) + "\n"
    print(section)
    if args.write_docs:
        write_section(DOCS, HEADING, section)


def _inputs(example: Path, bundle: str) -> list[Path]:
    """The example input that fits the bundle: the MNI T1, or the BraTS phantom case for 4-channel bundles."""
    metadata = json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "metadata.json").read_text())
    channels = metadata["network_data_format"]["inputs"]["image"]["num_channels"]
    return [example / "mni_t1.nii.gz"] if channels == 1 else [example / "brats_phantom"]


if __name__ == "__main__":
    main()
