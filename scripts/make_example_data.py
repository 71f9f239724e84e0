#!/usr/bin/env python
"""Write the example datasets, from a seed, so that every training and test path can run without real data.

Into OUTPUT:
  brats/phantom_000/ ...        BraTS-layout brain-tumour phantoms simulated on the real MNI ICBM152 anatomy
                                (T1, T1ce, T2, FLAIR and labels 0/1/2/4): read with revnets.data.brats_datalist
  multi_rater/mni/ ...          the MNI T1 and four annotators cut from its tissue maps (image.nii.gz,
                                label_rater{k}.nii.gz): read with revnets.data.multirater_datalist

The same arguments give the same volumes. Nothing is downloaded: the template ships inside nilearn.
Existing files are never replaced without --overwrite (which replaces the files written here, and leaves
any others in place).

Usage:
    python scripts/make_example_data.py --output example_data --cases 8 --seed 0 [--spacing 2] [--overwrite]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from revnets.data import write_brats_dataset, write_multirater_set

BRATS_DIR = "brats"
MULTI_RATER_DIR = "multi_rater"


def make_example_data(
    output: Path, cases: int, seed: int, spacing: float = 2.0, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``cases`` phantoms (case ``i`` from seed ``seed + i``) and the multi-rater set at ``spacing`` mm.

    Returns:
        ``{"brats": OUTPUT/brats, "multi_rater": OUTPUT/multi_rater}``.

    Raises:
        FileExistsError: either folder exists and ``overwrite`` is False; nothing is written then.
    """
    folders = {"brats": Path(output) / BRATS_DIR, "multi_rater": Path(output) / MULTI_RATER_DIR}
    existing = [str(f) for f in folders.values() if f.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"example data already in {', '.join(existing)}: pass --overwrite to replace it.")
    write_brats_dataset(folders["brats"], cases, seed=seed, spacing=spacing, overwrite=overwrite)
    write_multirater_set(folders["multi_rater"], spacing=spacing, overwrite=overwrite)
    return folders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help="folder to write into")
    parser.add_argument("--cases", type=int, default=8, help="number of tumour phantoms (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first phantom (default 0)")
    parser.add_argument("--spacing", type=float, default=2.0, help="voxel size in mm (default 2; 1 is full size)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing example files")
    args = parser.parse_args(argv)
    if args.cases < 1 or args.spacing <= 0:
        parser.error("--cases must be at least 1 and --spacing positive.")
    try:
        folders = make_example_data(args.output, args.cases, args.seed, args.spacing, args.overwrite)
    except FileExistsError as error:
        parser.error(str(error))
    for name, folder in folders.items():
        print(f"{name}: {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
