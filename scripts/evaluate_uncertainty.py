#!/usr/bin/env python
"""Evaluate the tissue bundles' uncertainty on the held-out subjects of the multi-rater benchmark.

Each bundle runs through ``revnets.inference.Predictor`` (the path of ``revnets predict``) on every test
subject, writing its samples, maps, mean probabilities and expected cross-entropy; these are scored against
the subject's four raters with ``revnets.uncertainty``:

- GED and HM-IoU (``num_classes=3``: IoU over grey and white matter, an absent class counts as IoU 1, as
  PHiSeg's reference), S_NCC of the written label samples (one-hot: the per-sample probabilities are not
  written), Dice of the consensus and of single samples against each rater (mean), the samples' spread
  ``E[d(S, S')]`` next to the raters';
- in the tissue neighbourhood (any rater's tissue dilated by 2 voxels): ECE (10 bins) and Brier score of the
  mean probabilities against the raters' shares, and the AUROC (for "not all raters agree") and Spearman
  (with ``1 - majority share``) of each map: entropy, mutual information, variance, expected CE, next to
  the boundary-distance baseline (minus the distance to the consensus's nearest boundary).

Writes the table between the ``evaluation`` markers of docs/uncertainty.md, the raw figures to
docs/figures/uncertainty_evaluation.json and the reliability diagrams to docs/figures/uncertainty_reliability.png.

Usage:
    python scripts/evaluate_uncertainty.py [--bundles invres_brain_tissue revphiseg_brain_tissue]
        [--benchmark example_data/tissue_benchmark] [--subjects 20] [--samples 16] [--seed 0]
    # or one run per bundle in parallel, then one table:
    python scripts/evaluate_uncertainty.py --bundles invres_brain_tissue --figures runs/invres --doc runs/doc.md
    python scripts/evaluate_uncertainty.py --combine runs/invres/uncertainty_evaluation.json ...
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from benchmark_docs import cpu_name  # noqa: E402

from revnets.data import multirater_datalist, write_multirater_benchmark  # noqa: E402
from revnets.inference import Predictor  # noqa: E402
from revnets.uncertainty import (  # noqa: E402
    auroc,
    boundary_proximity,
    brier_score,
    dice,
    generalized_energy_distance,
    hungarian_matched_iou,
    mean_pairwise_distance,
    ncc,
    rater_disagreement,
    rater_soft_labels,
    reliability_diagram,
    spearman,
    tissue_neighbourhood,
)
from revnets.uncertainty.calibration import ReliabilityDiagram, combine_diagrams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSES = 3
MAPS = {"entropy": "entropy", "mutual_info": "MI", "variance": "variance", "expected_cross_entropy": "expected CE"}
OUTPUTS = ("seg", "samples", "entropy", "mutual_info", "variance", "probabilities", "expected_cross_entropy")
BEGIN, END = "<!-- evaluation: begin -->", "<!-- evaluation: end -->"


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def score_subject(files: dict[str, Path], rater_files: list[str]) -> tuple[dict[str, float], ReliabilityDiagram]:
    """Every figure of one subject from the written outputs and the rater files."""
    raters = np.stack([_load(Path(f)).astype(np.int64) for f in rater_files])
    spacing = tuple(float(s) for s in nib.load(rater_files[0]).header.get_zooms()[:3])
    seg = _load(files["seg"]).astype(np.int64)
    samples = np.moveaxis(_load(files["samples"]).astype(np.int64), -1, 0)
    probabilities = np.moveaxis(_load(files["probabilities"]).astype(np.float64), -1, 0)
    region = tissue_neighbourhood(raters)
    soft = rater_soft_labels(raters, CLASSES)
    disagreement = rater_disagreement(raters, CLASSES)
    disputed = disagreement > 0

    sample_voxels = torch.from_numpy(samples[:, region])
    rater_voxels = torch.from_numpy(raters[:, region])
    one_hot = torch.nn.functional.one_hot(sample_voxels, CLASSES).movedim(-1, 1).double()
    scores = {
        "ged": float(generalized_energy_distance(sample_voxels, rater_voxels, num_classes=CLASSES)),
        "hm_iou": float(hungarian_matched_iou(sample_voxels, rater_voxels, num_classes=CLASSES)),
        "ncc_label_samples": float(ncc(one_hot, rater_voxels)),
        "sample_spread": float(mean_pairwise_distance(sample_voxels, num_classes=CLASSES)),
        "rater_spread": float(mean_pairwise_distance(rater_voxels, num_classes=CLASSES)),
        "ece": reliability_diagram(probabilities, soft, region).expected_calibration_error,
        "brier": brier_score(probabilities, soft, region),
    }
    consensus = torch.from_numpy(seg)
    consensus_dice = np.mean([dice(consensus, torch.from_numpy(r), [1, 2]).numpy() for r in raters], axis=0)
    sample_dice = np.mean(
        [dice(torch.from_numpy(s), torch.from_numpy(r), [1, 2]).numpy() for s in samples for r in raters], axis=0
    )
    scores |= {
        "dice_consensus_gm": consensus_dice[0],
        "dice_consensus_wm": consensus_dice[1],
        "dice_sample_gm": sample_dice[0],
        "dice_sample_wm": sample_dice[1],
    }
    maps = {name: _load(files[name]).astype(np.float64) for name in MAPS}
    maps["boundary"] = boundary_proximity(seg, spacing)
    for name, values in maps.items():
        scores[f"auroc_{name}"] = auroc(values[region], disputed[region])
        scores[f"spearman_{name}"] = spearman(values[region], disagreement[region])
    scores["disputed_fraction"] = float(disputed[region].mean())
    return {k: float(v) for k, v in scores.items()}, reliability_diagram(probabilities, soft, region)


def evaluate_bundle(bundle: str, cases: list[dict], samples: int, seed: int, work: Path, trust: bool = False) -> dict:
    """Run ``bundle`` (a shipped bundle's name, or with ``trust`` any bundle folder) over ``cases`` and average
    the scores; the reliability diagram pools all voxels."""
    predictor = Predictor.from_bundle(bundle, device="cpu", trust=trust)
    bundle = Path(bundle).name
    per_subject, diagrams, seconds = {}, [], []
    for case in cases:
        start = time.perf_counter()
        written = predictor.predict(
            [case["image"]],
            work / bundle / case["case"],
            num_samples=samples,
            seed=seed,
            progress=False,
            outputs=OUTPUTS,
        )[0]
        seconds.append(time.perf_counter() - start)
        per_subject[case["case"]], diagram = score_subject(written, case["label"])
        diagrams.append(diagram)
        print(bundle, case["case"], json.dumps(per_subject[case["case"]]), flush=True)
    pooled = combine_diagrams(diagrams)
    mean = {key: float(np.mean([s[key] for s in per_subject.values()])) for key in next(iter(per_subject.values()))}
    return {
        "mean": mean | {"ece_pooled": pooled.expected_calibration_error},
        "subjects": per_subject,
        "reliability": {
            k: np.nan_to_num(getattr(pooled, k)).tolist() for k in ("edges", "counts", "confidence", "accuracy")
        },
        "seconds_per_subject": float(np.mean(seconds)),
    }


def table(results: dict[str, dict]) -> str:
    """The docs table: one column per bundle."""
    names = list(results)
    rows = [
        ("GED vs the 4 raters (num_classes=3; lower is better)", "ged", "{:.3f}"),
        ("HM-IoU (higher is better)", "hm_iou", "{:.3f}"),
        ("S_NCC of the label samples", "ncc_label_samples", "{:.3f}"),
        ("Dice GM / WM, consensus vs each rater (mean)", ("dice_consensus_gm", "dice_consensus_wm"), "{:.3f} / {:.3f}"),
        ("Dice GM / WM, one sample vs each rater (mean)", ("dice_sample_gm", "dice_sample_wm"), "{:.3f} / {:.3f}"),
        ("spread of samples E[d(S,S')] (raters' spread)", ("sample_spread", "rater_spread"), "{:.3f} ({:.3f})"),
        ("ECE of the mean probabilities, tissue neighbourhood (pooled voxels)", "ece_pooled", "{:.3f}"),
        ("Brier score vs the raters' shares, tissue neighbourhood", "brier", "{:.3f}"),
    ]
    for key, label in MAPS.items():
        rows.append(
            (
                f"AUROC of {label} for disagreement (boundary baseline)",
                (f"auroc_{key}", "auroc_boundary"),
                "{:.3f} ({:.3f})",
            )
        )
    for key, label in MAPS.items():
        rows.append(
            (
                f"Spearman of {label} with disagreement (boundary baseline)",
                (f"spearman_{key}", "spearman_boundary"),
                "{:.3f} ({:.3f})",
            )
        )
    rows.append(("revnets predict per subject, s (shared cores, upper bound)", "seconds", "{:.0f}"))
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, keys, form in rows:
        cells = []
        for name in names:
            mean = results[name]["mean"] | {"seconds": results[name]["seconds_per_subject"]}
            values = [mean[k] for k in (keys if isinstance(keys, tuple) else (keys,))]
            cells.append(form.format(*values))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_reliability(results: dict[str, dict], path: Path) -> None:
    """One reliability diagram per bundle: annotators' agreement against confidence, with voxel counts."""
    figure, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4), squeeze=False)
    for axis, (name, result) in zip(axes[0], results.items()):
        r = result["reliability"]
        edges, counts = np.asarray(r["edges"]), np.asarray(r["counts"])
        centres, width = (edges[1:] + edges[:-1]) / 2, np.diff(edges)
        filled = counts > 0
        axis.bar(
            centres[filled],
            np.asarray(r["accuracy"])[filled],
            width[filled] * 0.9,
            color="#4c72b0",
            label="raters agreeing with the top class",
        )
        axis.plot(
            np.asarray(r["confidence"])[filled], np.asarray(r["accuracy"])[filled], "o", color="black", markersize=3
        )
        axis.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
        axis.set_title(f"{name}\nECE {result['mean']['ece_pooled']:.3f}", fontsize=9)
        axis.set_xlabel("confidence (mean probability of the top class)")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        share = axis.twinx()
        share.step(edges[:-1], counts / counts.sum(), where="post", color="#dd8452", linewidth=1)
        share.set_ylabel("fraction of voxels", color="#dd8452", fontsize=8)
    axes[0][0].set_ylabel("share of raters")
    axes[0][0].legend(fontsize=7, loc="upper left")
    figure.suptitle(
        "held-out benchmark subjects, tissue neighbourhood; python scripts/evaluate_uncertainty.py", fontsize=8
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def write_docs(doc: Path, results: dict[str, dict], header: str) -> None:
    """Replace the text between the evaluation markers of ``doc``."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"error: {doc} has no {BEGIN} ... {END} section.")
    block = f"{BEGIN}\n{header}\n\n{table(results)}\n{END}"
    doc.write_text(text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :])


def run(args: argparse.Namespace) -> dict:
    """Evaluate ``args.bundles`` on the benchmark's test split; the record written as JSON."""
    with tempfile.TemporaryDirectory() as folder:
        benchmark = args.benchmark
        if benchmark is None:
            benchmark = Path(folder) / "benchmark"
            write_multirater_benchmark(benchmark, args.subjects, args.benchmark_seed)
        cases = multirater_datalist(benchmark / args.split)
        results = {
            Path(name).name: evaluate_bundle(name, cases, args.samples, args.seed, Path(folder) / "outputs", args.trust)
            for name in args.bundles
        }
    return {
        "commands": [shlex.join(["python", "scripts/evaluate_uncertainty.py", *sys.argv[1:]])],
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "split": args.split,
        "test_subjects": [c["case"] for c in cases],
        "samples": args.samples,
        "seed": args.seed,
        "results": results,
    }


def combine(paths: list[Path]) -> dict:
    """One record from the records of runs over other bundles (same subjects, samples and seed)."""
    records = [json.loads(path.read_text()) for path in paths]
    for key in ("test_subjects", "samples", "seed"):
        if len({json.dumps(r[key]) for r in records}) > 1:
            sys.exit(f"error: the records differ in {key}; only runs on the same subjects and settings combine.")
    merged = dict(records[0])
    merged["commands"] = [c for r in records for c in r["commands"]]
    merged["results"] = {name: result for r in records for name, result in r["results"].items()}
    return merged


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", nargs="+", default=["invres_brain_tissue", "revphiseg_brain_tissue"])
    parser.add_argument(
        "--trust-bundles",
        dest="trust",
        action="store_true",
        help="let --bundles name bundle folders that are not shipped (e.g. a trained twin); their configs run code",
    )
    parser.add_argument("--benchmark", type=Path, help="a written benchmark (default: written to a temporary folder)")
    parser.add_argument("--subjects", type=int, default=20, help="subjects of the benchmark when it is written")
    parser.add_argument("--benchmark-seed", type=int, default=0)
    parser.add_argument(
        "--split", default="test", choices=["test", "validation"], help="the subjects to score (default test)"
    )
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="instead of running, merge the records of runs over different bundles",
    )
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "uncertainty.md")
    parser.add_argument("--figures", type=Path, default=REPO / "docs" / "figures")
    args = parser.parse_args()
    record = combine(args.combine) if args.combine else run(args)
    results = record["results"]
    args.figures.mkdir(parents=True, exist_ok=True)
    (args.figures / "uncertainty_evaluation.json").write_text(json.dumps(record, indent=2) + "\n")
    plot_reliability(results, args.figures / "uncertainty_reliability.png")
    commands = "; ".join(f"`{c}`" for c in record["commands"])
    header = (
        f"{commands} on {len(record['test_subjects'])} {record.get('split', 'test')} subjects "
        f"({', '.join(record['test_subjects'])}), "
        f"{record['samples']} samples, seed {record['seed']}, each bundle's own inference precision (bfloat16 "
        f"where native); {record['cpu']}, {record['torch_threads']} torch thread(s), cores shared with other jobs "
        "(times are an upper bound). Means over subjects; raw figures in "
        "[figures/uncertainty_evaluation.json](figures/uncertainty_evaluation.json)."
    )
    write_docs(args.doc, results, header)
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
