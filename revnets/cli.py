"""The ``revnets`` command: ``revnets predict``, ``example``, ``overlay``, ``bundles`` and ``plan``.

A user error (missing or unreadable file, wrong shape, bad argument) prints one line ``revnets: error:
...`` and exits with code 2; nothing half-written is left behind. An interruption (Ctrl-C: SIGINT, or
SIGTERM as sent by ``timeout``, SLURM, Docker and ``Popen.terminate``) removes what the unfinished output
had written, prints one line and exits with 130 (SIGINT) or 143 (SIGTERM); outputs already complete stay.
Library warnings (deprecations, nibabel's header remarks) are kept off the terminal unless Python's ``-W``
option or ``PYTHONWARNINGS`` asks.
"""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from revnets import __version__
from revnets.errors import RevnetsError

BUNDLE_WARNING = (
    "a bundle's configs can run Python code: a bundle folder other than the shipped ones (checked by their "
    "SHA-256 digests) runs only with --trust-bundle"
)


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"revnets: error: {message} (see '{self.prog} --help').\n")


def _path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path was given")
    return Path(text)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="revnets", description="Reversible networks that segment 3D scans and say where they are unsure."
    )
    parser.add_argument("--version", action="version", version=f"revnets {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="segment scans with a bundle: consensus, samples and uncertainty maps as NIfTI",
        description=f"Segment scans with a MONAI bundle. Note: {BUNDLE_WARNING}.",
    )
    predict.add_argument(
        "inputs", nargs="+", type=_path, metavar="INPUT",
        help="a scan: NIfTI (3D, or 4D with channels last), NRRD, MetaImage (.mha/.mhd), a DICOM series folder, "
        "or a BraTS-layout case folder",
    )
    predict.add_argument(
        "--bundle", required=True,
        help="a shipped bundle's name ('revnets bundles' lists them) or a bundle folder (with "
        "configs/inference.json)",
    )
    predict.add_argument(
        "--trust-bundle", action="store_true",
        help="run a bundle folder that is not one of the shipped bundles (or whose files changed): its configs "
        "can run Python code, so pass this only for bundles from a source you trust",
    )
    predict.add_argument("--output", type=_path, required=True, help="output folder (created if missing)")
    predict.add_argument("--samples", type=int, default=None, help="number of samples (default: the bundle's)")
    predict.add_argument(
        "--series", default=None, metavar="UID",
        help="the SeriesInstanceUID to segment when a DICOM folder holds several series",
    )
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    predict.add_argument(
        "--precision", choices=("bfloat16", "float32"), default=None,
        help="what the network computes in (default: the bundle's; the shipped bundles say bfloat16, which runs "
        "only where the device computes it natively, e.g. a CPU with AMX or AVX512-BF16, and float32 elsewhere)",
    )
    predict.add_argument(
        "--seed", type=int, default=0, help="random seed from 0 to 2**63 - 1; the same seed gives the same samples"
    )
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.add_argument(
        "--probabilities", action="store_true",
        help="also write <stem>_probabilities.nii.gz: the mean class probabilities, 4D, one volume per class",
    )
    predict.add_argument(
        "--expected-cross-entropy", action="store_true",
        help="also write <stem>_expected_cross_entropy.nii.gz: PHiSeg's expected cross-entropy map",
    )
    predict.add_argument(
        "--progress", choices=("bar", "lines", "none"), default="bar",
        help="bar: a progress bar; lines: one 'PROGRESS <percent> <stage>' line per step on stdout (for "
        "programs such as the Slicer module); none: silent",
    )

    example = commands.add_parser("example", help="write the example scans (real MNI T1, BraTS-layout phantom)")
    example.add_argument("directory", type=Path)
    example.add_argument("--seed", type=int, default=0)
    example.add_argument("--overwrite", action="store_true", help="replace existing files")

    overlay = commands.add_parser(
        "overlay",
        help="draw an uncertainty map over its scan (axial, coronal, sagittal slices) as a PNG",
        description="Draw an uncertainty map written by 'revnets predict' over its scan, with the consensus "
        "contours, as axial, coronal and sagittal slices in one PNG (radiological convention, like 3D Slicer).",
    )
    overlay.add_argument(
        "scan", type=Path, metavar="SCAN",
        help="the scan given to 'revnets predict' (3D NIfTI; for a BraTS case, one of its modality files)",
    )
    overlay.add_argument(
        "map", type=Path, metavar="MAP", help="an uncertainty map: <stem>_entropy, _mutual_info or _variance.nii.gz"
    )
    overlay.add_argument("--output", type=_path, required=True, help="the PNG file to write")
    overlay.add_argument("--seg", type=Path, default=None, help="consensus labels (<stem>_seg.nii.gz) as contours")
    overlay.add_argument(
        "--alpha", type=float, default=0.6, help="opacity of the map at its maximum, in (0, 1] (default 0.6)"
    )
    overlay.add_argument("--cmap", default="inferno", help="matplotlib colour map of the map (default inferno)")
    overlay.add_argument(
        "--at", choices=("centre", "max"), default="centre",
        help="slices through the centre of the volume or through the most uncertain voxel",
    )
    overlay.add_argument("--overwrite", action="store_true", help="replace an existing PNG")

    bundles = commands.add_parser(
        "bundles", help="list the shipped bundles (names for --bundle), or copy one into a folder",
        description="Without arguments: one line per shipped bundle, its name and task. 'copy NAME DIR' writes "
        "the bundle to DIR/NAME, e.g. to read its model card or to start a bundle of your own from it.",
    )
    bundle_commands = bundles.add_subparsers(dest="bundles_command")
    copy = bundle_commands.add_parser("copy", help="copy a shipped bundle to DIR/NAME")
    copy.add_argument("name", metavar="NAME", help="a shipped bundle's name")
    copy.add_argument("directory", type=Path, metavar="DIR", help="the folder to copy it into (created if missing)")

    plan = commands.add_parser(
        "plan", help="what fits a memory budget: training patch, batch, width and sliding window, per form",
        description="Run a few small training steps of a bundle's network in each form, fit its memory against "
        "voxels and channels, and print what fits --memory: the largest training patch (cube, and of the "
        "bundle's patch shape), the batch size and the widest network at the bundle's patch, the largest "
        f"sliding window and the windows per batch. Note: {BUNDLE_WARNING}.",
    )
    plan.add_argument("--bundle", required=True, help="a shipped bundle's name or a bundle folder")
    plan.add_argument("--memory", required=True, help="the budget for tensors, e.g. 8GiB, 512MiB or 16GB")
    plan.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to probe (default cpu)")
    plan.add_argument(
        "--forms", nargs="+", choices=("reversible", "plain", "checkpointed"),
        default=["reversible", "plain", "checkpointed"], help="the forms to plan for (default all three)",
    )
    plan.add_argument("--trust-bundle", action="store_true", help="plan for a bundle folder that is not shipped")
    return parser


def _predict(args: argparse.Namespace) -> None:
    from revnets.inference.postprocessing import OPTIONAL_OUTPUTS, OUTPUTS
    from revnets.inference.predictor import Predictor

    def progress_line(stage: str, fraction: float) -> None:
        print(f"PROGRESS {round(100 * fraction)} {stage}", flush=True)

    predictor = Predictor.from_bundle(args.bundle, device=args.device, trust=args.trust_bundle)
    written = predictor.predict(
        args.inputs,
        args.output,
        num_samples=args.samples,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=args.progress == "bar",
        on_progress=progress_line if args.progress == "lines" else None,
        series_uid=args.series,
        precision=args.precision,
        outputs=OUTPUTS + tuple(name for name in OPTIONAL_OUTPUTS if getattr(args, name)),
    )
    for files in written:
        for path in files.values():
            print(f"wrote {path}", flush=True)


def _example(args: argparse.Namespace) -> None:
    from revnets.data import write_example_scans

    for path in write_example_scans(args.directory, seed=args.seed, overwrite=args.overwrite):
        print(path)


def _overlay(args: argparse.Namespace) -> None:
    from revnets.overlay import render_overlay

    path = render_overlay(
        args.scan, args.map, args.output, seg=args.seg, alpha=args.alpha, cmap=args.cmap, at=args.at,
        overwrite=args.overwrite,
    )
    print(f"wrote {path}")


def _plan(args: argparse.Namespace) -> None:
    from revnets.planner import plan

    result = plan(args.bundle, args.memory, device=args.device, forms=args.forms, trust=args.trust_bundle)
    print(result.table())
    patch = result.forms[0].patch
    if patch is not None:
        print(f"\nTo train the {result.forms[0].form.value} form at that patch: python -m monai.bundle run "
              f"--config_file <bundle>/configs/train.json --patch_size \"{list(patch)}\"")


def _bundles(args: argparse.Namespace) -> None:
    import json
    import shutil

    from revnets.bundles import BundleNotFoundError, shipped_bundles

    shipped = shipped_bundles()
    if args.bundles_command is None:
        for name, folder in shipped.items():
            task = json.loads((folder / "configs" / "metadata.json").read_text(encoding="utf-8")).get("task", "")
            print(f"{name}\t{task}")
        return
    if args.name not in shipped:
        raise BundleNotFoundError(f"{args.name} is not a shipped bundle ({', '.join(shipped) or 'none found'}).")
    target = args.directory / args.name
    if target.exists():
        raise FileExistsError(f"{target} already exists.")
    shutil.copytree(shipped[args.name], target)
    print(target)


def _message(error: Exception) -> str:
    """The one line for ``error``, with the option that changes the outcome where there is one."""
    from revnets.files import OutputExistsError, ProtectedOutputError
    from revnets.trust import UntrustedBundleError

    message = " ".join(str(error).split())
    if isinstance(error, FileExistsError) and "overwrite=True" in message:  # the library's word for the flag
        message = message.replace("overwrite=True", "--overwrite")
    if isinstance(error, UntrustedBundleError):
        message += " Pass --trust-bundle if you trust its source."
    elif isinstance(error, OutputExistsError):
        message += " Pass --overwrite to replace it, or choose another --output."
    elif isinstance(error, ProtectedOutputError):
        message += " Choose another --output folder."
    return message


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: raised in the main thread like Ctrl-C's ``KeyboardInterrupt``, so every cleanup runs.

    A subclass rather than ``KeyboardInterrupt`` itself: CPython marks a bare ``KeyboardInterrupt`` that passes
    through ``eval`` (as MONAI's config expressions do) as unhandled, and then ends ``python -m`` runs by
    SIGINT whatever exit code the command returned.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextmanager
def _terminal_manners() -> Iterator[None]:
    """SIGINT and SIGTERM raise :class:`Interrupted`; warnings and nibabel's remarks stay off the terminal."""
    signals = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = [signal.signal(signum, _interrupt) for signum in signals] if main_thread else []
    nibabel = logging.getLogger("nibabel")
    level = nibabel.level
    nibabel.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:
                warnings.simplefilter("ignore")
            yield
    finally:
        nibabel.setLevel(level)
        for signum, handler in zip(signals, previous):
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``revnets`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        with _terminal_manners():
            run = {"predict": _predict, "example": _example, "overlay": _overlay, "bundles": _bundles, "plan": _plan}
            run[args.command](args)
    except (RevnetsError, FileExistsError, FileNotFoundError) as error:
        print(f"revnets: error: {_message(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        how = "terminated" if signum == signal.SIGTERM else "interrupted"
        print(f"revnets: {how} ({signal.Signals(signum).name}): the unfinished output was removed.", file=sys.stderr)
        return 128 + signum
    return 0


def run() -> NoReturn:
    """The ``revnets`` command as a process: :func:`main`, then exit without the interpreter's final sweep of
    torch's and MONAI's object graphs (``gc.freeze``: seconds on a slow CPU, for objects the process is about
    to drop anyway). Files are already closed and exit handlers still run."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
