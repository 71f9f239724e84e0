"""From scan files to NIfTI samples and uncertainty maps: the one path behind the CLI, the bundles and Slicer.

file -> bundle preprocessing (MONAI transforms) -> :class:`SamplingInferer` over the model's window sampler
-> :class:`~revnets.uncertainty.StreamingUncertainty` -> MONAI ``Invertd`` back to the input's space ->
atomic NIfTI writes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd
from torch import Tensor, nn
from tqdm.auto import tqdm

from revnets.bundles import BundleError, check_config, load_weights, resolve_bundle
from revnets.errors import RevnetsError, UserInputError
from revnets.files import OutputUnit, refuse_shared_targets
from revnets.inference.inferer import SamplingInferer
from revnets.inference.samplers import window_sampler
from revnets.inference.scans import Scan, find_scan
from revnets.inference.writer import write_nifti
from revnets.trust import require_trusted
from revnets.uncertainty import StreamingUncertainty

OUTPUTS = ("seg", "samples", "entropy", "mutual_info", "variance")


@dataclass
class Predictor:
    """Runs a trained model over whole scans and writes, per input ``<stem>``, five NIfTI files.

    ``<stem>_seg`` (consensus labels), ``<stem>_samples`` (one label map per sample, 4D),
    ``<stem>_entropy``, ``<stem>_mutual_info`` and ``<stem>_variance``, all with the input's shape,
    affine and orientation.

    Args:
        network: a ``revnets.models`` network in eval mode with its weights loaded.
        preprocessing: MONAI dictionary transforms on key ``"image"``: first ``LoadImaged`` (the loaded
            voxels are checked before the rest runs), then invertible transforms, so the maps can be
            brought back to the input's space.
        inferer: the sliding-window sampler.
        num_samples: default number of samples.
        labels: the label value written for each class index of the consensus and samples.
        device: where the network runs (``"auto"``: CUDA when available).
        weights: a state dict file for ``network``, read with ``torch.load(..., weights_only=True)``.
        to_classes: maps the network's sample probabilities ``(n, B, C, *spatial)`` to a distribution
            over exclusive classes before the maps are computed (e.g. ``nested_regions_to_classes`` for
            sigmoid BraTS regions); None when the network already gives one (softmax).
    """

    network: nn.Module
    preprocessing: Compose
    inferer: SamplingInferer
    num_samples: int = 16
    labels: Sequence[int] | None = None
    device: torch.device | str = "auto"
    weights: str | Path | None = None
    to_classes: Callable[[Tensor], Tensor] | None = None

    @classmethod
    def from_bundle(cls, bundle: str | Path, device: str = "auto", trust: bool = False) -> Predictor:
        """Build from a MONAI bundle: a shipped bundle's name or a bundle folder (``configs/inference.json``,
        ``models/model.pt``).

        A bundle's config can run Python code, so only a shipped bundle whose files match their recorded
        digests is loaded unless ``trust`` is set (see :mod:`revnets.trust`). Weights are read with
        ``torch.load(..., weights_only=True)``.

        Raises:
            revnets.trust.UntrustedBundleError: not a shipped bundle (or changed), and ``trust`` is off.
            revnets.bundles.BundleError: missing files, invalid JSON, weights that cannot be loaded.
            UserInputError: no such bundle, or CUDA asked for but unavailable.
        """
        folder = resolve_bundle(bundle)
        config_file = folder / "configs" / "inference.json"
        check_config(config_file)
        require_trusted(folder, trust)
        if device == "cuda" and not torch.cuda.is_available():
            raise UserInputError("--device cuda was asked for, but no CUDA device is available.")
        parser = ConfigParser()
        parser.read_config(str(config_file))
        parser["bundle_root"] = str(folder)
        parser["device"] = _device(device)
        try:
            return parser.get_parsed_content("predictor")
        except Exception as error:  # MONAI wraps what a component raises in RuntimeError
            cause = _revnets_cause(error)
            if cause is not None:
                raise cause from error
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise BundleError(f"{config_file} could not be built: {reason}") from error

    def __post_init__(self) -> None:
        self.device = torch.device(_device(str(self.device)))
        if self.weights is not None:
            load_weights(self.network, self.weights)
        self.network = self.network.to(self.device).eval()

    def predict(
        self,
        inputs: Sequence[str | Path],
        output_dir: str | Path,
        num_samples: int | None = None,
        seed: int = 0,
        overwrite: bool = False,
        progress: bool = True,
        on_progress: Callable[[str, float], None] | None = None,
    ) -> list[dict[str, Path]]:
        """Segment each input; return, per input, the written files by output name (see ``OUTPUTS``).

        Each input's five files are one :class:`~revnets.files.OutputUnit`: they appear together or not at
        all, never replace an input file (every file of a BraTS case folder counts), and never replace an
        existing file unless ``overwrite`` (checked before any work, and again at the moment each file is
        moved into place).

        Raises:
            UserInputError: a missing or unreadable input, wrong dimensionality or channel count,
                NaN/Inf voxels.
            revnets.files.OutputError: two inputs with the same output names, an output folder that is a
                file or not writable, an output that exists (without ``overwrite``) or would replace an
                input, a full disk.
        """
        num_samples = self.num_samples if num_samples is None else num_samples
        if num_samples < 1:
            raise UserInputError(f"--samples must be at least 1, got {num_samples}.")
        scans = [find_scan(Path(p), self.network.in_channels) for p in inputs]
        inputs_files = [file for scan in scans for file in scan.input_files]
        units = {
            str(scan.path): OutputUnit(_targets(scan, Path(output_dir)), protected=inputs_files, overwrite=overwrite)
            for scan in scans
        }
        refuse_shared_targets(units)
        for unit in units.values():
            unit.check()
        written = []
        for index, (scan, unit) in enumerate(zip(scans, units.values())):
            report = _stage_reporter(on_progress, index, len(scans), scan.stem)
            with unit:
                maps = self.sample_scan(scan, num_samples, seed, progress, report)
                report("writing", 1.0)
                for name, array in maps.items():
                    write_nifti(array, scan.reference, unit.path(name))
            written.append(unit.targets)
        return written

    def sample_scan(
        self,
        scan: Scan,
        num_samples: int,
        seed: int,
        progress: bool = False,
        report: Callable[[str, float], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """The five outputs of one scan as arrays in the input's voxel grid, keyed like ``OUTPUTS``."""
        report = report or (lambda stage, fraction: None)
        report("preprocessing", 0.0)
        try:
            data = self.preprocessing({"image": scan.loader_input}, end=1)
        except Exception as error:  # a truncated or corrupt file fails inside MONAI's loader
            raise UserInputError(f"{scan.path} could not be read as an image ({type(error).__name__}).") from error
        if not torch.isfinite(data["image"].as_tensor()).all():
            raise UserInputError(f"{scan.path} contains NaN or infinite voxels.")
        data = self.preprocessing(data, start=1)
        inputs = data["image"].as_tensor()[None].to(self.device)
        torch.manual_seed(seed)
        num_classes = self.network.out_channels
        aggregator = StreamingUncertainty(keep_labels=True)
        sampler = window_sampler(self.network, inputs.shape[2:], self.inferer.window(inputs.shape[2:]), seed)
        bar = tqdm(total=num_samples, desc=f"sampling {scan.stem}", unit="sample", disable=not progress)

        def on_pass(done: int, total: int) -> None:
            bar.update(done - bar.n)
            report("sampling", done / total)

        consumer = aggregator if self.to_classes is None else _Mapped(aggregator, self.to_classes)
        with torch.no_grad(), bar:
            self.inferer(inputs, sampler, num_samples, num_classes, consumer, on_pass=on_pass)
        report("restoring input space", 1.0)
        maps = aggregator.compute()
        return self._to_input_space(data, maps)

    def _to_input_space(self, data: dict, maps: dict[str, Tensor]) -> dict[str, np.ndarray]:
        image: MetaTensor = data["image"]
        channels = {
            "probabilities": maps["mean"][0],
            "entropy": maps["entropy"],
            "mutual_info": maps["mutual_information"],
            "variance": maps["variance"],
            "samples": maps["labels"][:, 0].float(),
        }
        keys = list(channels)
        restored = {"image": image}
        for key, value in channels.items():
            restored[key] = MetaTensor(value.cpu(), meta=image.meta, applied_operations=image.applied_operations)
        inverter = Invertd(
            keys=keys,
            transform=self.preprocessing,
            orig_keys="image",
            nearest_interp=[key == "samples" for key in keys],
        )
        restored = inverter(restored)
        labels = np.asarray(self.labels if self.labels is not None else range(len(channels["probabilities"])))
        probabilities = restored["probabilities"].numpy()
        samples = restored["samples"].numpy().round().astype(np.int64)
        return {
            "seg": labels[probabilities.argmax(0)].astype(np.uint8),
            "samples": np.moveaxis(labels[samples], 0, -1).astype(np.uint8),
            "entropy": restored["entropy"].numpy()[0].astype(np.float32),
            "mutual_info": restored["mutual_info"].numpy()[0].astype(np.float32),
            "variance": restored["variance"].numpy()[0].astype(np.float32),
        }


class _Mapped:
    """Feeds ``consumer`` with ``fn(samples)``."""

    def __init__(self, consumer: StreamingUncertainty, fn: Callable[[Tensor], Tensor]) -> None:
        self.consumer = consumer
        self.fn = fn

    def update(self, samples: Tensor) -> None:
        self.consumer.update(self.fn(samples))


def _revnets_cause(error: BaseException) -> RevnetsError | None:
    """The first :class:`RevnetsError` in the chain of causes of ``error``."""
    while error is not None:
        if isinstance(error, RevnetsError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _targets(scan: Scan, output_dir: Path) -> dict[str, Path]:
    return {name: output_dir / f"{scan.stem}_{name}.nii.gz" for name in OUTPUTS}


def _stage_reporter(
    on_progress: Callable[[str, float], None] | None, index: int, total: int, stem: str
) -> Callable[[str, float], None]:
    if on_progress is None:
        return lambda stage, fraction: None
    return lambda stage, fraction: on_progress(f"{stem}: {stage}", (index + fraction) / total)

