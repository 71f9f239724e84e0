#!/usr/bin/env python
"""Write the multi-rater brain-tissue benchmark (synthetic subjects on the MNI template, four raters).

Into OUTPUT: ``train/``, ``validation/`` and ``test/`` multi-rater folders (one ``subject_XXX/`` per subject
with ``image.nii.gz`` and ``label_rater{0..3}.nii.gz``; read a split with revnets.data.multirater_datalist)
and ``benchmark.json`` (seed, spacing, rater models, split of every subject). The same arguments give the
same files; see docs/uncertainty.md for the subject and rater models. Nothing is downloaded.

Usage:
    python scripts/make_multirater_benchmark.py --output example_data/tissue_benchmark [--subjects 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from revnets.data.multirater_benchmark import write_multirater_benchmark


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="folder to write into")
    parser.add_argument("--subjects", type=int, default=20, help="number of subjects (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="the benchmark's seed (default 0)")
    parser.add_argument("--spacing", type=float, default=2.0, help="voxel size in mm (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing benchmark")
    args = parser.parse_args(argv)
    if args.subjects < 3 or args.spacing <= 0:
        parser.error("--subjects must be at least 3 and --spacing positive.")
    start = time.perf_counter()
    try:
        folders = write_multirater_benchmark(args.output, args.subjects, args.seed, args.spacing, args.overwrite)
    except FileExistsError as error:
        parser.error(str(error))
    for split, cases in folders.items():
        print(f"{split}: {len(cases)} subjects in {args.output / split}")
    print(f"{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
