"""The ``revnets`` command: ``revnets predict``, ``revnets example`` and ``revnets overlay``.

A user error (missing or unreadable file, wrong shape, bad argument) prints one line ``revnets: error:
...`` and exits with code 2; nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from revnets.errors import UserInputError

BUNDLE_WARNING = "a bundle's configs can run Python code: only use bundle folders you trust"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="revnets", description="Reversible networks that segment 3D scans and say where they are unsure."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict",
        help="segment scans with a bundle: consensus, samples and uncertainty maps as NIfTI",
        description=f"Segment scans with a MONAI bundle. Note: {BUNDLE_WARNING}.",
    )
    predict.add_argument(
        "inputs", nargs="+", type=Path, metavar="INPUT",
        help="a NIfTI scan (3D, or 4D with channels last) or a BraTS-layout case folder",
    )
    predict.add_argument("--bundle", type=Path, required=True, help="bundle folder (with configs/inference.json)")
    predict.add_argument("--output", type=Path, required=True, help="output folder (created if missing)")
    predict.add_argument("--samples", type=int, default=None, help="number of samples (default: the bundle's)")
    predict.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    predict.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same samples")
    predict.add_argument("--overwrite", action="store_true", help="replace existing output files")
    predict.add_argument(
        "--progress", choices=("bar", "lines", "none"), default="bar",
        help="bar: a progress bar; lines: one 'PROGRESS <percent> <stage>' line per step on stdout (for "
        "programs such as the Slicer module); none: silent",
    )

    example = commands.add_parser("example", help="write the example scans (real MNI T1, BraTS-layout phantom)")
    example.add_argument("directory", type=Path)
    example.add_argument("--seed", type=int, default=0)
    example.add_argument("--overwrite", action="store_true", help="replace existing files")
    return parser


def _predict(args: argparse.Namespace) -> None:
    from revnets.inference.predictor import Predictor

    def progress_line(stage: str, fraction: float) -> None:
        print(f"PROGRESS {round(100 * fraction)} {stage}", flush=True)

    predictor = Predictor.from_bundle(args.bundle, device=args.device)
    written = predictor.predict(
        args.inputs,
        args.output,
        num_samples=args.samples,
        seed=args.seed,
        overwrite=args.overwrite,
        progress=args.progress == "bar",
        on_progress=progress_line if args.progress == "lines" else None,
    )
    for files in written:
        for path in files.values():
            print(f"wrote {path}", flush=True)


def _example(args: argparse.Namespace) -> None:
    from revnets.data import write_example_scans

    for path in write_example_scans(args.directory, seed=args.seed, overwrite=args.overwrite):
        print(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``revnets`` command; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        {"predict": _predict, "example": _example}[args.command](args)
    except (UserInputError, FileExistsError, FileNotFoundError) as error:
        print(f"revnets: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("revnets: cancelled", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
