#!/usr/bin/env python
"""Figure of the multi-rater benchmark's subject and rater models (docs/figures/uncertainty_raters.png).

Top row: one synthetic subject's scan, the labels its warped tissue maps give (background / grey / white at
probability 0.5, the "neutral" reading), and the raters' disagreement (1 - majority share). Then one row per
rater model: its labels, and where it differs from the neutral reading (red: it labels less tissue or
grey instead of white, blue: more tissue or white instead of grey), on an axial slice through the deep grey
nuclei and a coronal one.

Usage:
    python scripts/plot_rater_models.py [--subject 0] [--seed 0] [--output docs/figures/uncertainty_raters.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from revnets.data.multirater_benchmark import RATERS, synthetic_subject  # noqa: E402
from revnets.uncertainty.disagreement import rater_disagreement  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TISSUE = ListedColormap(["black", "#d9a441", "#f2f2f2"])  # background, grey matter, white matter


def _slices(volume: np.ndarray, axial: int, coronal: int) -> list[np.ndarray]:
    return [np.rot90(volume[:, :, axial]), np.rot90(volume[:, coronal, :])]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subject", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "figures" / "uncertainty_raters.png")
    args = parser.parse_args()
    subject = synthetic_subject(args.subject, args.seed)
    grey, white = subject.grey_matter, subject.white_matter
    neutral = np.where(grey + white > 0.5, np.where(grey > white, 1, 2), 0)
    deep = np.argwhere(subject.deep_grey).mean(0).round().astype(int)
    axial, coronal = int(deep[2]), int(deep[1])

    rows = 1 + len(RATERS)
    figure, axes = plt.subplots(rows, 4, figsize=(10, 2.6 * rows))
    top = [
        (subject.image, "gray", "scan"),
        (neutral, TISSUE, "tissue maps at 0.5"),
        (rater_disagreement(subject.raters, 3), "magma", "disagreement"),
    ]
    for column, (volume, cmap, title) in enumerate([top[0], top[1], top[2]]):
        view = _slices(volume, axial, coronal)
        axes[0, column].imshow(view[0], cmap=cmap, interpolation="nearest")
        axes[0, column].set_title(title, fontsize=8)
    axes[0, 3].imshow(_slices(rater_disagreement(subject.raters, 3), axial, coronal)[1], cmap="magma")
    axes[0, 3].set_title("disagreement (coronal)", fontsize=8)
    for r, (model, labels) in enumerate(zip(RATERS, subject.raters), start=1):
        # +1: this rater labels a "higher" class than the neutral reading (tissue for background, white for grey).
        change = np.sign(labels.astype(int) - neutral)
        for column, view in enumerate(_slices(labels, axial, coronal)):
            axes[r, 2 * column].imshow(view, cmap=TISSUE, interpolation="nearest")
        for column, view in enumerate(_slices(change, axial, coronal)):
            axes[r, 2 * column + 1].imshow(view, cmap="bwr_r", vmin=-1, vmax=1, interpolation="nearest")
        axes[r, 0].set_title(f"rater {r - 1}: {model.name}", fontsize=8, loc="left")
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(
        f"benchmark subject {args.subject} (seed {args.seed}), 2 mm; command: python scripts/plot_rater_models.py",
        fontsize=8,
    )
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=90)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
