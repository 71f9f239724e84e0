"""The Python front door of inference: runs a bundle's own ``configs/inference.json`` workflow on given scans.

The bundle's config is a standard MONAI inference workflow (``dataset`` -> ``evaluator`` with the
:class:`~revnets.inference.SamplingInferer` -> ``postprocessing`` that inverts to the input's space and
writes each scan's outputs as one unit). ``revnets predict``, the Slicer module and
MONAI's own runner (``python -m monai.bundle run`` with the bundle's ``inference.json`` and a ``dataset_dir``)
all run that same config; this class only checks the bundle (trust, weights), sets the inputs, output folder,
samples, seed and device, reports progress and turns what fails into one-line errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from ignite.engine import Engine, Events
from monai.bundle import ConfigParser, ConfigWorkflow
from torch import nn
from tqdm.auto import tqdm

from revnets.bundles import BundleError, check_config, load_weights, resolve_bundle
from revnets.errors import InputError, RevnetsError
from revnets.inference.inferer import SamplingInferer
from revnets.inference.postprocessing import OUTPUTS
from revnets.trust import require_trusted


class Predictor:
    """A bundle's inference workflow, run on given scans.

    Args:
        bundle: the bundle folder (``configs/inference.json``, ``models/model.pt``).
        network: the bundle's network with its weights, as checked at construction.
        device: where the network runs.
    """

    def __init__(self, bundle: Path, network: nn.Module, device: torch.device) -> None:
        self.bundle = bundle
        self.network = network
        self.device = device

    @property
    def config_file(self) -> Path:
        """The bundle's inference config."""
        return self.bundle / "configs" / "inference.json"

    @classmethod
    def from_bundle(cls, bundle: str | Path, device: str = "auto", trust: bool = False) -> Predictor:
        """Check a MONAI bundle (a shipped bundle's name or a bundle folder) and load its network's weights.

        A bundle's config can run Python code, so only a shipped bundle whose files match their recorded
        digests is loaded unless ``trust`` is set (see :mod:`revnets.trust`). Weights are read with
        ``torch.load(..., weights_only=True)``.

        Raises:
            revnets.trust.UntrustedBundleError: not a shipped bundle (or changed), and ``trust`` is off.
            revnets.bundles.BundleError: missing files, invalid JSON, weights that cannot be loaded.
            InputError: no such bundle, or CUDA asked for but unavailable.
        """
        folder = resolve_bundle(bundle)
        config_file = folder / "configs" / "inference.json"
        check_config(config_file)
        require_trusted(folder, trust)
        if device == "cuda" and not torch.cuda.is_available():
            raise InputError("the CUDA device was asked for, but none is available.")
        parser = ConfigParser()
        parser.read_config(str(config_file))
        parser["bundle_root"] = str(folder)
        with _built(config_file):
            network = parser.get_parsed_content("network_def")
        load_weights(network, folder / "models" / "model.pt")
        return cls(folder, network.eval(), torch.device(_device(device)))

    def predict(
        self,
        inputs: Sequence[str | Path],
        output_dir: str | Path,
        num_samples: int | None = None,
        seed: int = 0,
        overwrite: bool = False,
        progress: bool = True,
        on_progress: Callable[[str, float], None] | None = None,
        outputs: Sequence[str] = OUTPUTS,
        series_uid: str | None = None,
        precision: str | None = None,
    ) -> list[dict[str, Path]]:
        """Segment each input through the bundle's inference workflow; return, per input, the written files by
        output name (``outputs``: :data:`~revnets.inference.postprocessing.OUTPUTS` and optionally
        ``probabilities``, ``expected_cross_entropy``). An input is a NIfTI, NRRD or MetaImage file, a DICOM
        series folder (``series_uid`` chooses among several series in one folder) or a BraTS case folder; the
        outputs are NIfTI in the input's physical space. ``precision`` (``"float32"`` or ``"bfloat16"``)
        replaces the bundle's ``precision`` (what :class:`~revnets.inference.SamplingInferer` runs the network
        in); None keeps the bundle's.

        Each input's files are one :class:`~revnets.files.OutputUnit`: they appear together or not at all,
        never replace an input file (every file of a BraTS case folder counts), and never replace an existing
        file unless ``overwrite`` (checked before any work, and again as each file is moved into place).

        Raises:
            InputError: a missing or unreadable input, wrong dimensionality or channel count, NaN/Inf
                voxels, a constant image, a number of samples out of range.
            revnets.files.OutputError: two inputs with the same output names, an output folder that is a
                file or not writable, an output that exists (without ``overwrite``) or would replace an
                input, a full disk.
        """
        overrides: dict[str, Any] = {
            "bundle_root": str(self.bundle),
            "device": self.device,
            "input_files": [str(path) for path in inputs],
            "output_dir": str(output_dir),
            "outputs": list(outputs),
            "overwrite": overwrite,
            "seed": seed,
        }
        if num_samples is not None:
            overrides["num_samples"] = num_samples
        if series_uid is not None:
            overrides["series_uid"] = series_uid
        if precision is not None:
            overrides["precision"] = precision
        with _quiet(), _translated() as state:
            workflow = ConfigWorkflow(
                config_file=str(self.config_file), workflow_type="infer", logging_file=False, **overrides
            )
            workflow.initialize()
            scans = workflow.parser.get_parsed_content("scans")
            _Progress(scans, workflow.evaluator, workflow.inferer, state, progress, on_progress)
            workflow.run()
            workflow.finalize()
            return workflow.parser.get_parsed_content("writer").written


class _Progress:
    """Reports the stages of each scan (``on_progress(f"{stem}: {stage}", fraction of the run)``), shows a bar
    of samples, and records which scan is being loaded (for error messages)."""

    def __init__(
        self,
        scans: Sequence,
        evaluator: Engine,
        inferer: SamplingInferer,
        state: dict,
        bar: bool,
        on_progress: Callable[[str, float], None] | None,
    ) -> None:
        self.scans = scans
        self.state = state
        self.show_bar = bar
        self.on_progress = on_progress
        self.index = 0
        self.bar: tqdm | None = None
        evaluator.add_event_handler(Events.GET_BATCH_STARTED, self.loading)
        evaluator.add_event_handler(Events.GET_BATCH_COMPLETED, self.loaded)
        evaluator.add_event_handler(Events.ITERATION_COMPLETED, self.written)
        inferer.on_pass = self.sampled

    def report(self, stage: str, fraction: float) -> None:
        if self.on_progress is not None:
            stem = self.scans[self.index].stem
            self.on_progress(f"{stem}: {stage}", (self.index + fraction) / len(self.scans))

    def loading(self, engine: Engine) -> None:
        self.index = engine.state.iteration % len(self.scans)
        self.state["loading"] = self.scans[self.index].path
        self.report("preprocessing", 0.0)

    def loaded(self, engine: Engine) -> None:
        self.state["loading"] = None
        self.report("sampling", 0.0)

    def sampled(self, done: int, total: int) -> None:
        if self.show_bar and self.bar is None:
            self.bar = tqdm(total=total, desc=f"sampling {self.scans[self.index].stem}", unit="sample")
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        self.report("sampling" if done < total else "restoring input space and writing", done / total)

    def written(self, engine: Engine) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.report("written", 1.0)


@contextmanager
def _translated() -> Iterator[dict]:
    """Re-raise what a workflow raises as the :class:`RevnetsError` behind it (MONAI wraps errors of
    components, expressions and transforms in ``RuntimeError``), and a failure to read a scan as an
    :class:`InputError` naming it. Yields a dict whose ``loading`` entry names the scan being read."""
    state: dict = {"loading": None}
    try:
        yield state
    except Exception as error:
        cause = _revnets_cause(error)
        if cause is not None:
            raise cause from error
        if state["loading"] is not None:
            inner = _innermost(error)
            raise InputError(f"{state['loading']} could not be read as an image ({type(inner).__name__}).") from error
        raise


@contextmanager
def _built(config_file: Path) -> Iterator[None]:
    """A component of the bundle's config that cannot be built is a :class:`BundleError` naming the config."""
    try:
        yield
    except Exception as error:
        cause = _revnets_cause(error)
        if cause is not None:
            raise cause from error
        raise BundleError(f"{config_file} could not be built: {_first_line(error)}") from error


@contextmanager
def _quiet() -> Iterator[None]:
    """Keep log records off the terminal while the workflow runs: MONAI's bundle, engine and handler loggers
    (and ignite's copy of an error) would print lines beside the one-line errors and progress reports."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(previous)


def _revnets_cause(error: BaseException | None) -> RevnetsError | None:
    """The first :class:`RevnetsError` in the chain of causes of ``error``."""
    while error is not None:
        if isinstance(error, RevnetsError):
            return error
        error = error.__cause__ or error.__context__
    return None


def _innermost(error: BaseException) -> BaseException:
    while (cause := error.__cause__ or error.__context__) is not None:
        error = cause
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device
