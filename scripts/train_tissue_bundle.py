#!/usr/bin/env python
"""Train the weights of a brain-tissue bundle on the MNI multi-rater set, with a fixed seed.

The network is the bundle's own ``network_def`` (``configs/inference.json``) and the preprocessing mirrors
that file (RAS, ``pixdim`` spacing, foreground crop, z-score), so the weights fit what inference feeds
them. There is one real subject (the MNI ICBM152 2009a template that nilearn ships); its annotators
are its grey/white-matter maps cut at four thresholds, one drawn at random for each patch. Validation
is honest about that: the top quarter of the brain along the superior axis is never trained on, and
the Dice there (against the median rater) is what the model card reports.

Usage:
    python scripts/train_tissue_bundle.py bundles/invres_brain_tissue --steps 300 --seed 0
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    Spacingd,
)
from tqdm import tqdm

from revnets.data import write_multirater_set
from revnets.models.losses import InvResVAELoss


def load_volume(folder: Path, pixdim: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image ``(1, X, Y, Z)`` and raters ``(R, X, Y, Z)`` preprocessed as the bundle's inference does."""
    case = folder / "mni"
    raters = sorted(str(p) for p in case.glob("label_rater*.nii.gz"))
    keys = ["image", *(f"rater{k}" for k in range(len(raters)))]
    transforms = Compose(
        [
            LoadImaged(keys=keys),
            EnsureChannelFirstd(keys=keys),
            Orientationd(keys=keys, axcodes="RAS"),
            Spacingd(keys=keys, pixdim=pixdim, mode=["bilinear"] + ["nearest"] * len(raters)),
            CropForegroundd(keys=keys, source_key="image", margin=4, allow_smaller=True),
            NormalizeIntensityd(keys="image", channel_wise=True),
        ]
    )
    data = transforms({"image": str(case / "image.nii.gz"), **dict(zip(keys[1:], raters))})
    labels = torch.cat([data[k].as_tensor() for k in keys[1:]]).round().long()
    return data["image"].as_tensor().float(), labels


def random_patch(
    image: torch.Tensor, labels: torch.Tensor, size: int, limit: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``size``-cube below ``limit`` on the last axis, one random rater, random flips and gain."""
    _, x, y, z = image.shape
    corner = [rng.integers(0, max(s - size, 0) + 1) for s in (x, y, min(z, limit))]
    window = tuple(slice(c, c + size) for c in corner)
    patch = image[(slice(None), *window)]
    label = labels[(slice(int(rng.integers(len(labels))), None), *window)][:1]
    for axis in (1, 2, 3):
        if rng.random() < 0.5:
            patch, label = patch.flip(axis), label.flip(axis)
    patch = patch * rng.uniform(0.9, 1.1) + rng.uniform(-0.1, 0.1)
    return patch, label


def pad_to(t: torch.Tensor, divisor: int) -> torch.Tensor:
    pads = []
    for s in reversed(t.shape[1:]):
        pads += [0, (-s) % divisor]
    return torch.nn.functional.pad(t, pads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--patch", type=int, default=48)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    config = ConfigParser()
    config.read_config(str(args.bundle / "configs" / "inference.json"))
    network = config.get_parsed_content("network_def")
    with tempfile.TemporaryDirectory() as tmp:
        write_multirater_set(Path(tmp), spacing=1.0)
        image, labels = load_volume(Path(tmp), config["pixdim"])
    limit = int(image.shape[-1] * 0.75)  # the top quarter along the superior axis is held out

    loss_fn = InvResVAELoss(DiceCELoss(to_onehot_y=True, softmax=True))
    optimizer = torch.optim.Adam(network.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
    history = []
    start = time.time()
    network.train()
    for step in tqdm(range(args.steps), desc="training", unit="step"):
        patches = [random_patch(image, labels, args.patch, limit, rng) for _ in range(args.batch)]
        x = torch.stack([p for p, _ in patches])
        y = torch.stack([lab for _, lab in patches])
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(network(x), y, x)
        loss.backward()
        optimizer.step()
        schedule.step()
        history.append(loss.item())
        if (step + 1) % 50 == 0:
            tqdm.write(f"step {step + 1}: loss {np.mean(history[-50:]):.4f}")

    network.eval()
    held_out = image[..., limit - 8 :]
    with torch.no_grad():
        logits = network(pad_to(held_out, network.size_divisor)[None])
    prediction = logits[(0, slice(None), *(slice(0, s) for s in held_out.shape[1:]))].argmax(0)[..., 8:]
    truth = labels[len(labels) // 2, ..., limit:]
    per_class = [
        float(2 * ((prediction == c) & (truth == c)).sum() / ((prediction == c).sum() + (truth == c).sum()))
        for c in (1, 2)
    ]
    (args.bundle / "models").mkdir(exist_ok=True)
    torch.save(network.state_dict(), args.bundle / "models" / "model.pt")
    metrics = {
        "steps": args.steps,
        "seed": args.seed,
        "train_loss_first_50": float(np.mean(history[:50])),
        "train_loss_last_50": float(np.mean(history[-50:])),
        "held_out_dice_grey_matter": per_class[0],
        "held_out_dice_white_matter": per_class[1],
        "minutes": (time.time() - start) / 60,
        "torch_threads": torch.get_num_threads(),
    }
    (args.bundle / "docs").mkdir(exist_ok=True)
    (args.bundle / "docs" / "training_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
