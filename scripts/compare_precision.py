#!/usr/bin/env python
"""How far a bundle's bfloat16 maps are from its float32 maps, measured against two seeds' float32 maps.

Runs the bundle's preprocessing and :class:`~revnets.inference.SamplingInferer` on one scan (default: the
example MNI T1, written with ``revnets example``) three times: float32 with seed 0, bfloat16 with seed 0, and
float32 with seed 1. Prints, per map on the preprocessed grid, the largest and mean absolute difference of
bfloat16 from float32 beside those of the other seed (the sampling noise the maps carry anyway), the share
of voxels whose consensus and sample labels differ, and each run's CPU time.

Usage:
    python scripts/compare_precision.py --bundle invres_brain_tissue
    python scripts/compare_precision.py --bundle revphiseg_brain_tissue --samples 16 --input scan.nii.gz
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser

from revnets.bundles import load_weights
from revnets.inference import SamplingInferer

REPO_ROOT = Path(__file__).resolve().parents[1]
MAPS = ("probabilities", "entropy", "mutual_info", "variance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="invres_brain_tissue")
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--input", type=Path, default=None, help="a scan (default: the example MNI T1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scan = args.input
        if scan is None:
            subprocess.run([sys.executable, "-m", "revnets.cli", "example", tmp], check=True, stdout=subprocess.DEVNULL)
            scan = Path(tmp) / "mni_t1.nii.gz"
        compare(REPO_ROOT / "bundles" / args.bundle, scan, args.samples)


def compare(bundle: Path, scan: Path, samples: int) -> None:
    """Print the differences described in the module docstring for ``bundle`` on ``scan``."""
    config = ConfigParser()
    config.read_config(str(bundle / "configs" / "inference.json"))
    config["bundle_root"] = str(bundle)
    config["input_files"] = [str(scan)]
    data = config.get_parsed_content("preprocessing")(config.get_parsed_content("datalist")[0])
    image = data["image"].as_tensor()[None]
    network = config.get_parsed_content("network_def")
    load_weights(network, bundle / "models" / "model.pt")
    network.eval()
    shipped = config.get_parsed_content("inferer")

    def run(precision: str, seed: int) -> dict[str, torch.Tensor]:
        inferer = SamplingInferer(
            shipped.roi_size, samples, seed, shipped.size_divisor, shipped.overlap, shipped.mode,
            to_classes=shipped.to_classes, precision=precision,
        )
        start = time.process_time()
        maps = inferer(image, network)
        print(f"{precision}, seed {seed}: {time.process_time() - start:.1f} s CPU", flush=True)
        return maps

    exact, fast, other = run("float32", 0), run("bfloat16", 0), run("float32", 1)
    print(f"{bundle.name}, {samples} samples, grid {tuple(image.shape[2:])}, torch {torch.__version__}")
    print("| map | bfloat16 - float32: max | mean | seed 1 - seed 0: max | mean |")
    print("|---|---:|---:|---:|---:|")
    for name in MAPS:
        precision, seeds = (fast[name] - exact[name]).abs(), (other[name] - exact[name]).abs()
        print(
            f"| {name} | {precision.max():.2e} | {precision.mean():.2e} | {seeds.max():.2e} | {seeds.mean():.2e} |"
        )
    for name, label in (("consensus labels", lambda m: m["probabilities"].argmax(1)), ("sample labels", _samples)):
        print(
            f"{name} that differ: bfloat16 {float((label(fast) != label(exact)).float().mean()):.2e}, "
            f"seed 1 {float((label(other) != label(exact)).float().mean()):.2e}"
        )


def _samples(maps: dict[str, torch.Tensor]) -> torch.Tensor:
    return maps["samples"]


if __name__ == "__main__":
    main()
