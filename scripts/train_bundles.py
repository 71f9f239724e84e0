#!/usr/bin/env python
"""Train the weights of a shipped bundle with fixed seeds: one recipe per bundle, one loop for all.

The network is the bundle's own ``network_def`` and the images go through the bundle's own inference
preprocessing (``configs/inference.json``), so the weights fit what inference feeds them; label maps are
resampled (nearest) onto the preprocessed image's grid. Every step draws random patches from the
training volumes (random case, random annotator, random flips and intensity gain/shift); the held-out
volumes are never trained on, and the Dice there, over whole volumes as inference sees them, is what the
model card reports. The same command with the same seed gives the same weights.

Recipes:
    invres_brain_tissue  the MNI T1 with four annotators cut from its tissue maps; the top quarter of the
                         brain along the superior axis is held out (Dice against the median rater).
    revphiseg_brain_tissue  the same set for 3D RevPHiSeg, trained with its own loss on one random rater per
                         patch; held-out Dice of the mean of 16 samples, and GED / S_NCC against all raters.
    revmbconv_brats      BraTS-layout tumour phantoms on the MNI anatomy; held-out cases have seeds
                         disjoint from the training cases (Dice of the regions TC / WT / ET).

A new bundle is one more entry in ``RECIPES``: a function that writes its data and returns training and
held-out volumes, a loss, the masks its Dice is computed on, and its default settings.

Usage:
    python scripts/train_bundles.py invres_brain_tissue
    python scripts/train_bundles.py revmbconv_brats --resume
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from benchmark_docs import cpu_name
from monai.bundle import ConfigParser
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    ConvertToMultiChannelBasedOnBratsClasses,
    DivisiblePad,
    EnsureChannelFirst,
    LoadImage,
    ResampleToMatch,
)
from torch import Tensor, nn
from tqdm import tqdm

from revnets.data import write_brats_dataset, write_multirater_set
from revnets.inference.scans import find_scan
from revnets.uncertainty import generalized_energy_distance, ncc

REPO = Path(__file__).resolve().parents[1]
LOSS_WINDOW = 50  # steps averaged for the first / last training loss


@dataclass(frozen=True)
class Volume:
    """One preprocessed case.

    Attributes:
        image: ``(C_in, X, Y, Z)`` float, as the bundle's inference preprocessing gives it.
        labels: ``(R, X, Y, Z)`` uint8 label maps on the same grid, one per annotator.
        scored: ``(X, Y, Z)`` bool, the voxels the held-out Dice counts (the rest is context); None: all.
    """

    image: Tensor
    labels: Tensor
    scored: Tensor | None = None


LossFn = Callable[[nn.Module, Tensor, Tensor], Tensor]
"""``loss(network, images (B, C_in, *patch), labels (B, 1, *patch) uint8) -> scalar``."""


@dataclass(frozen=True)
class Recipe:
    """How one bundle's weights are trained and measured.

    Attributes:
        data: writes the data set into a folder and returns ``(training, held_out)`` volumes, given the
            bundle's inference preprocessing.
        loss: builds the training loss.
        dice_names: names of the masks the held-out Dice is reported for.
        predicted_masks: network logits ``(C, *spatial)`` -> ``(K, *spatial)`` bool, one per name.
        true_masks: labels ``(R, *spatial)`` -> ``(K, *spatial)`` bool, one per name.
        steps, batch, patch, learning_rate: the settings of the shipped weights.
        foreground: fraction of patches centred on a labelled voxel (the rest are uniform).
        predict: network and image ``(1, C_in, *spatial)`` -> the logits or probabilities ``(1, C, *spatial)``
            the held-out Dice is computed from (default: one forward pass).
        extra_scores: further held-out scores (e.g. GED and S_NCC of a sampling model), or None.
    """

    data: Callable[[Path, Compose], tuple[list[Volume], list[Volume]]]
    loss: Callable[[], LossFn]
    dice_names: tuple[str, ...]
    predicted_masks: Callable[[Tensor], Tensor]
    true_masks: Callable[[Tensor], Tensor]
    steps: int
    batch: int
    patch: int
    learning_rate: float
    foreground: float = 0.0
    predict: Callable[[nn.Module, Tensor], Tensor] | None = None
    extra_scores: Callable[[nn.Module, list[Volume]], dict[str, float]] | None = None


def preprocess_case(preprocessing: Compose, image: str | list[str], labels: Sequence[Path]) -> Volume:
    """The bundle's preprocessing of ``image`` (one file, or one per channel) and its ``labels`` resampled
    (nearest) onto the preprocessed grid."""
    data = preprocessing({"image": image})
    grid = data["image"]
    load = Compose([LoadImage(image_only=True), EnsureChannelFirst()])
    resample = ResampleToMatch(mode="nearest")
    maps = [resample(load(str(path)), img_dst=grid).as_tensor().round() for path in labels]
    return Volume(grid.as_tensor().float(), torch.cat(maps).to(torch.uint8))


def tissue_data(folder: Path, preprocessing: Compose) -> tuple[list[Volume], list[Volume]]:
    """The MNI multi-rater set at 1 mm; the top quarter along the superior axis is held out (all four
    raters kept, the Dice is against the median one), with 8 slices below it as context."""
    write_multirater_set(folder, spacing=1.0)
    case = folder / "mni"
    volume = preprocess_case(preprocessing, str(case / "image.nii.gz"), sorted(case.glob("label_rater*.nii.gz")))
    limit = int(volume.image.shape[-1] * 0.75)
    held_out = volume.image[..., limit - 8 :]
    scored = torch.zeros(held_out.shape[1:], dtype=torch.bool)
    scored[..., 8:] = True
    training = Volume(volume.image[..., :limit], volume.labels[..., :limit])
    return [training], [Volume(held_out, volume.labels[..., limit - 8 :], scored)]


BRATS_TRAINING_CASES = (40, 100)  # (cases, seed of the first): the example phantom (seed 0) is not one
BRATS_HELD_OUT_CASES = (10, 10_000)


def brats_data(folder: Path, preprocessing: Compose) -> tuple[list[Volume], list[Volume]]:
    """Tumour phantoms at 2 mm, training and held-out cases from disjoint seeds."""

    def cases(name: str, count: int, seed: int) -> list[Volume]:
        volumes = []
        for case in write_brats_dataset(folder / name, count, seed=seed, spacing=2.0):
            image = find_scan(case, in_channels=4).loader_input
            volumes.append(preprocess_case(preprocessing, image, [case / f"{case.name}_seg.nii.gz"]))
        return volumes

    return cases("training", *BRATS_TRAINING_CASES), cases("held_out", *BRATS_HELD_OUT_CASES)


def invres_vae_loss() -> LossFn:
    """Dice + cross-entropy over softmax classes, plus the VAE branch's reconstruction and KL terms."""
    loss = DiceCELoss(to_onehot_y=True, softmax=True)
    return lambda network, x, y: network.training_loss(x, y.long(), loss).total


def brats_regions(labels: Tensor) -> Tensor:
    """BraTS labels ``(1, *spatial)`` -> nested regions TC / WT / ET ``(3, *spatial)`` bool."""
    return ConvertToMultiChannelBasedOnBratsClasses()(labels)


def region_loss() -> LossFn:
    """Dice (over the whole batch) + binary cross-entropy over the sigmoid regions TC / WT / ET."""
    loss = DiceCELoss(sigmoid=True, batch=True)
    return lambda network, x, y: loss(network(x), torch.stack([brats_regions(t) for t in y]).float())


def class_masks(labels: Tensor, num_classes: int) -> Tensor:
    """Labels ``(*spatial)`` -> one mask per foreground class ``(num_classes - 1, *spatial)``."""
    return F.one_hot(labels.long(), num_classes).movedim(-1, 0)[1:].bool()


def median_rater_masks(labels: Tensor) -> Tensor:
    """Raters ``(R, *spatial)`` (sorted by threshold) -> grey / white matter masks of the median rater."""
    return class_masks(labels[len(labels) // 2], 3)


PHISEG_SAMPLES = 16


def phiseg_loss() -> LossFn:
    """PHiSeg's own loss: deep-supervised cross-entropy + 4**i-weighted KL (``training_loss``)."""
    return lambda network, x, y: network.training_loss(x, y).total


def phiseg_mean(network: nn.Module, image: Tensor) -> Tensor:
    """The mean class probabilities of :data:`PHISEG_SAMPLES` prior samples."""
    return network.sample(image, PHISEG_SAMPLES).mean(0)


def multirater_scores(network: nn.Module, volumes: list[Volume]) -> dict[str, float]:
    """GED (squared, 1 - IoU over grey and white matter) and S_NCC of :data:`PHISEG_SAMPLES` samples against
    all raters, over the scored voxels of each held-out volume, averaged over volumes."""
    network.eval()
    pad = DivisiblePad(network.size_divisor, method="end")
    geds, nccs = [], []
    with torch.no_grad():
        for volume in volumes:
            samples = network.sample(pad(volume.image)[None], PHISEG_SAMPLES)[:, 0]
            samples = samples[(slice(None), slice(None), *(slice(0, s) for s in volume.image.shape[1:]))]
            scored = volume.scored if volume.scored is not None else torch.ones(volume.image.shape[1:], dtype=torch.bool)
            voxels = samples[..., scored]  # (N, C, V)
            raters = volume.labels[:, scored].long()
            geds.append(float(generalized_energy_distance(voxels.argmax(1), raters, labels=[1, 2])))
            nccs.append(float(ncc(voxels, raters)))
    return {"ged": float(np.mean(geds)), "ncc": float(np.mean(nccs))}


RECIPES = {
    "invres_brain_tissue": Recipe(
        data=tissue_data,
        loss=invres_vae_loss,
        dice_names=("grey matter", "white matter"),
        predicted_masks=lambda logits: class_masks(logits.argmax(0), 3),
        true_masks=median_rater_masks,
        steps=150,
        batch=4,
        patch=32,
        learning_rate=2e-3,
    ),
    "revphiseg_brain_tissue": Recipe(
        data=tissue_data,
        loss=phiseg_loss,
        dice_names=("grey matter", "white matter"),
        predicted_masks=lambda probabilities: class_masks(probabilities.argmax(0), 3),
        true_masks=median_rater_masks,
        steps=1500,
        batch=2,
        patch=32,
        learning_rate=2e-3,
        predict=phiseg_mean,
        extra_scores=multirater_scores,
    ),
    "revmbconv_brats": Recipe(
        data=brats_data,
        loss=region_loss,
        dice_names=("TC", "WT", "ET"),
        predicted_masks=lambda logits: logits > 0,
        true_masks=brats_regions,
        steps=1000,
        batch=2,
        patch=48,
        learning_rate=2e-3,
        foreground=0.5,
    ),
}


def random_patch(
    volumes: list[Volume], size: int, foreground: float, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """A random ``size``-cube of a random volume with one random annotator, random flips and gain / shift.

    Returns ``(C_in, *patch)`` image and ``(1, *patch)`` labels. With probability ``foreground`` the cube is
    centred on a random labelled voxel, else its corner is uniform.
    """
    volume = volumes[rng.integers(len(volumes))]
    shape = volume.image.shape[1:]
    if foreground and rng.random() < foreground:
        labelled = volume.labels.amax(0).nonzero()
        centre = labelled[rng.integers(len(labelled))].tolist()
        corner = [min(max(c - size // 2, 0), max(s - size, 0)) for c, s in zip(centre, shape)]
    else:
        corner = [rng.integers(0, max(s - size, 0) + 1) for s in shape]
    window = tuple(slice(c, c + size) for c in corner)
    patch = volume.image[(slice(None), *window)]
    rater = int(rng.integers(len(volume.labels)))
    label = volume.labels[(slice(rater, rater + 1), *window)]
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            patch, label = patch.flip(axis), label.flip(axis)
    patch = patch * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
    return patch, label


def dice(predicted: Tensor, truth: Tensor) -> float:
    """Dice of two bool masks; 1 when both are empty."""
    total = predicted.sum() + truth.sum()
    return float(2 * (predicted & truth).sum() / total) if total else 1.0


def held_out_dice(network: nn.Module, recipe: Recipe, volumes: list[Volume]) -> dict[str, float]:
    """Mean over ``volumes`` of the Dice per name, from one deterministic pass over each whole volume."""
    network.eval()
    pad = DivisiblePad(network.size_divisor, method="end")
    scores = []
    with torch.no_grad():
        for volume in volumes:
            padded = pad(volume.image)[None]
            logits = (recipe.predict(network, padded) if recipe.predict else network(padded))[0]
            logits = logits[(slice(None), *(slice(0, s) for s in volume.image.shape[1:]))]
            predicted, truth = recipe.predicted_masks(logits), recipe.true_masks(volume.labels)
            if volume.scored is not None:
                predicted, truth = predicted[:, volume.scored], truth[:, volume.scored]
            scores.append([dice(p, t) for p, t in zip(predicted, truth)])
    return dict(zip(recipe.dice_names, np.mean(scores, axis=0).tolist()))


class TrainingState:
    """What a resumed run needs to continue exactly where it stopped: weights, optimiser, schedule, both
    random generators, the loss history and the time spent, plus the settings it was started with."""

    def __init__(
        self,
        settings: dict,
        network: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: torch.optim.lr_scheduler.LRScheduler,
        rng: np.random.Generator,
    ) -> None:
        self.settings = settings
        self.network = network
        self.optimizer = optimizer
        self.schedule = schedule
        self.rng = rng
        self.history: list[float] = []
        self.seconds = 0.0

    def save(self, path: Path) -> None:
        """Write atomically to ``path``."""
        state = {
            "settings": self.settings,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "numpy_rng": self.rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": self.history,
            "seconds": self.seconds,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        torch.save(state, temporary)
        os.replace(temporary, path)

    def load(self, path: Path) -> None:
        """Continue from ``path``; exit if it was started with other settings."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state["settings"] != self.settings:
            sys.exit(f"error: {path} was started with {state['settings']}, not {self.settings}.")
        self.network.load_state_dict(state["network"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.history = state["history"]
        self.seconds = state["seconds"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", choices=sorted(RECIPES), help="the bundle under bundles/ to train")
    parser.add_argument("--bundles-dir", type=Path, default=REPO / "bundles", help="folder holding the bundle")
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's)")
    parser.add_argument("--batch", type=int, help="patches per step (default: the recipe's)")
    parser.add_argument("--patch", type=int, help="edge of the cubic patches in voxels (default: the recipe's)")
    parser.add_argument("--lr", type=float, help="Adam learning rate, cosine schedule (default: the recipe's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", type=Path, help="resumable state (default: runs/train_<bundle>.pt)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    parser.add_argument("--overwrite", action="store_true", help="replace the bundle's models/model.pt")
    return parser.parse_args()


def main() -> None:
    launched = time.time()
    args = parse_args()
    recipe = RECIPES[args.bundle]
    bundle = args.bundles_dir / args.bundle
    weights = bundle / "models" / "model.pt"
    if weights.exists() and not args.overwrite:
        sys.exit(f"error: {weights} exists: pass --overwrite to replace it.")
    checkpoint = args.checkpoint or REPO / "runs" / f"train_{args.bundle}.pt"
    settings = {
        "seed": args.seed,
        "steps": args.steps or recipe.steps,
        "batch": args.batch or recipe.batch,
        "patch": args.patch or recipe.patch,
        "learning_rate": args.lr or recipe.learning_rate,
    }

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = ConfigParser()
    config.read_config(str(bundle / "configs" / "inference.json"))
    network = config.get_parsed_content("network_def")
    with tempfile.TemporaryDirectory() as folder:
        training, held_out = recipe.data(Path(folder), config.get_parsed_content("preprocessing"))
    loss_fn = recipe.loss()
    optimizer = torch.optim.Adam(network.parameters(), lr=settings["learning_rate"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings["steps"])
    state = TrainingState(settings, network, optimizer, schedule, rng)
    resumed = args.resume and checkpoint.exists()
    if resumed:
        state.load(checkpoint)
        print(f"resuming from {checkpoint} at step {len(state.history)}")

    start = time.time() - state.seconds
    network.train()
    bar = tqdm(range(len(state.history), settings["steps"]), desc=args.bundle, unit="step")
    for step in bar:
        patches = [random_patch(training, settings["patch"], recipe.foreground, rng) for _ in range(settings["batch"])]
        x = torch.stack([image for image, _ in patches])
        y = torch.stack([labels for _, labels in patches])
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(network, x, y)
        loss.backward()
        optimizer.step()
        schedule.step()
        state.history.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(state.history[-LOSS_WINDOW:]):.4f}")
        if (step + 1) % args.checkpoint_every == 0:
            state.seconds = time.time() - start
            state.save(checkpoint)
            tqdm.write(f"step {step + 1}: loss {np.mean(state.history[-LOSS_WINDOW:]):.4f}, saved {checkpoint}")

    scores = held_out_dice(network, recipe, held_out)
    extra = recipe.extra_scores(network, held_out) if recipe.extra_scores else {}
    weights.parent.mkdir(parents=True, exist_ok=True)
    temporary = weights.with_name(weights.name + ".tmp")
    torch.save(network.state_dict(), temporary)
    os.replace(temporary, weights)
    metrics = {
        "command": shlex.join(["python", "scripts/train_bundles.py", *sys.argv[1:]]),
        **settings,
        "training_volumes": len(training),
        "held_out_volumes": len(held_out),
        f"train_loss_first_{LOSS_WINDOW}": float(np.mean(state.history[:LOSS_WINDOW])),
        f"train_loss_last_{LOSS_WINDOW}": float(np.mean(state.history[-LOSS_WINDOW:])),
        "held_out_dice": scores,
        **{f"held_out_{name}": value for name, value in extra.items()},
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
        "training_minutes": (time.time() - start) / 60,
        "wall_minutes": (time.time() - launched) / 60,
        "resumed": resumed,
    }
    (bundle / "docs").mkdir(exist_ok=True)
    (bundle / "docs" / "training_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    checkpoint.unlink(missing_ok=True)
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
