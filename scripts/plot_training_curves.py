#!/usr/bin/env python
"""Draw training loss and validation Dice of one or more training runs (their ``training_history.json``).

Usage:
    python scripts/plot_training_curves.py --run RevPHiSeg bundles/B/training/training_history.json \
        --run PHiSeg /tmp/twin/training_history.json --title "..." --output bundles/B/docs/training_curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train_bundles import plot_curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs=2, action="append", required=True, metavar=("LABEL", "HISTORY"))
    parser.add_argument("--title", default="")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    plot_curves({label: json.loads(Path(path).read_text()) for label, path in args.run}, args.output, args.title)


if __name__ == "__main__":
    main()
