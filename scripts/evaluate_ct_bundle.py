#!/usr/bin/env python
"""Held-out figures of the lung-nodule CT bundle on phantom cases it never saw, as PHiSeg reports LIDC.

The held-out cases (seeds 3000 on; training used 0-15, model selection 1000-1003) are cut into the LIDC
crops (2D 128 x 128, four raters each, :func:`revnets.data.lidc_crops`), and every crop is sampled ``N`` times
with the bundle's network (latent noise drawn from the prior). Per crop, against the four raters:

- ``GED``: squared generalised energy distance with ``d = 1 - IoU`` of the nodule class (lower is better);
- ``S_NCC``: PHiSeg's correlation of the samples' expected cross-entropy map with the raters' (higher is
  better; crops where it is undefined, e.g. all raters empty, are skipped as in the reference);
- ``HM-IoU``: Hungarian-matched IoU of samples and raters (higher is better);
- ``Dice``: Dice of the consensus (arg-max of the mean of the samples) against the raters' majority
  (marked by at least two of four), on crops where that majority is not empty.

The means over crops are printed as JSON (and written with ``--output``).

Usage:
    python scripts/evaluate_ct_bundle.py [--bundle bundles/lung_nodule_ct_revphiseg] [--weights FILE]
        [--network-form plain] [--network-target revnets.models.PHiSeg] [--samples 16] [--cases 4] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser

from revnets.data import lidc_crops, simulate_chest_ct
from revnets.uncertainty import dice, generalized_energy_distance, hungarian_matched_iou, ncc

REPO = Path(__file__).resolve().parents[1]
FIRST_SEED = 3000


def held_out_crops(cases: int) -> list[dict]:
    crops = []
    for seed in range(FIRST_SEED, FIRST_SEED + cases):
        crops += list(lidc_crops(simulate_chest_ct(seed), np.random.default_rng(seed)).values())
    return crops


def evaluate(network: torch.nn.Module, crops: list[dict], num_samples: int, seed: int = 0) -> dict[str, float]:
    scores: dict[str, list[float]] = {"ged": [], "ncc": [], "hm_iou": [], "dice": []}
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for crop in crops:
            image = torch.from_numpy(crop["image"])[None, None].float()
            raters = torch.from_numpy(np.stack(crop["masks"])).long()
            noise = network.latent_noise(image, num_samples, generator)
            probabilities = network.sample(image, num_samples, noise=noise)[:, 0]  # (N, C, H, W)
            samples = probabilities.argmax(1)
            scores["ged"].append(float(generalized_energy_distance(samples, raters, num_classes=2)))
            scores["hm_iou"].append(float(hungarian_matched_iou(samples, raters, num_classes=2)))
            correlation = float(ncc(probabilities, raters))
            if math.isfinite(correlation):
                scores["ncc"].append(correlation)
            majority = (raters.sum(0) >= 2).long()
            if majority.any():
                scores["dice"].append(float(dice(probabilities.mean(0).argmax(0), majority, [1])[0]))
    result = {name: float(np.mean(values)) for name, values in scores.items()}
    result.update({f"{name}_crops": len(values) for name, values in scores.items()})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "bundles" / "lung_nodule_ct_revphiseg")
    parser.add_argument("--weights", type=Path, default=None, help="default: the bundle's models/model.pt")
    parser.add_argument("--network-form", default=None, help="override network_def#form (e.g. plain)")
    parser.add_argument(
        "--network-target", default=None, help="override network_def#_target_ (e.g. revnets.models.PHiSeg, the twin)"
    )
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = ConfigParser()
    config.read_config(str(args.bundle / "configs" / "inference.json"))
    if args.network_form is not None:
        config["network_def#form"] = args.network_form
    if args.network_target is not None:
        config["network_def#_target_"] = args.network_target
    network = config.get_parsed_content("network_def")
    weights = args.weights or args.bundle / "models" / "model.pt"
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval()
    crops = held_out_crops(args.cases)
    result = {"cases": args.cases, "first_seed": FIRST_SEED, "samples": args.samples, "crops": len(crops)}
    result.update(evaluate(network, crops, args.samples))
    text = json.dumps(result, indent=2)
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
