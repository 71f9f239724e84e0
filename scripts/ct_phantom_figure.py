#!/usr/bin/env python
"""The figure of docs/ct.md: the chest CT phantom and its four raters.

Top row: axial slices (lung window) of one case through three of its nodules. Bottom row: the LIDC-style
128 x 128 crops of those nodules with each rater's outline in its own colour.

Usage:
    python scripts/ct_phantom_figure.py [--seed 1] [--output docs/figures/ct_phantom.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from revnets.data.ct_phantom import LUNG_WINDOW, lidc_crops, simulate_chest_ct

RATER_COLOURS = ("#e41a1c", "#377eb8", "#4daf4a", "#ff7f00")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path("docs/figures/ct_phantom.png"))
    args = parser.parse_args()
    case = simulate_chest_ct(args.seed)
    crops = lidc_crops(case, np.random.default_rng(args.seed))
    shown = [n for n in range(1, len(case.nodules) + 1) if any(f"_nodule{n}_" in key for key in crops)][:3]
    fig, axes = plt.subplots(2, len(shown), figsize=(4.2 * len(shown), 7.6))
    for column, n in enumerate(shown):
        nodule = case.nodules[n - 1]
        keys = [k for k in crops if f"_nodule{n}_" in k]
        key = max(keys, key=lambda k: sum(int(m.sum()) for m in crops[k]["masks"]))
        k = int(key.rsplit("slice", 1)[1])
        top, bottom = axes[0, column], axes[1, column]
        top.imshow(case.hu[:, :, k].T, cmap="gray", vmin=LUNG_WINDOW[0], vmax=LUNG_WINDOW[1])
        top.plot(*nodule.centre[:2], marker="o", markersize=18, markerfacecolor="none", color="yellow")
        top.set_title(f"slice {k}: {nodule.diameter:.0f} mm {nodule.kind}, {nodule.location}", fontsize=9)
        bottom.imshow(crops[key]["image"].T, cmap="gray", vmin=0, vmax=1)
        for colour, mask in zip(RATER_COLOURS, crops[key]["masks"]):
            if mask.any():
                bottom.contour(mask.T, levels=[0.5], colors=[colour], linewidths=1.2)
        marked = sum(int(m.any()) for m in crops[key]["masks"])
        bottom.set_title(f"128 x 128 crop, {marked} of 4 raters marked it", fontsize=9)
        for axis in (top, bottom):
            axis.set_axis_off()
    fig.suptitle(f"revnets chest CT phantom, seed {args.seed} (lung window; raters 1-4: red, blue, green, orange)")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=80)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
