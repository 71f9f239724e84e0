"""Regenerate (or check) ``bundles/manifest.json``: the SHA-256 digests that mark the shipped bundles as trusted.

revnets loads a bundle folder without ``--trust-bundle`` only if its ``configs/`` files and ``models/model.pt``
match this manifest (see ``revnets/trust.py``). Run this after changing any shipped bundle's configs or
retraining its weights, and commit the manifest together with those files::

    .venv/bin/python scripts/update_bundle_manifest.py          # rewrite bundles/manifest.json
    .venv/bin/python scripts/update_bundle_manifest.py --check  # exit 1 if it is out of date (what the test checks)

A new shipped bundle is picked up by itself: every folder of the shipped bundles root with
``configs/inference.json`` is listed (``revnets.bundles.shipped_bundles``).
"""

from __future__ import annotations

import argparse
import sys

from revnets.bundles import shipped_bundles
from revnets.trust import manifest_path, manifest_text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if the manifest is out of date")
    args = parser.parse_args()
    path = manifest_path()
    text = manifest_text(shipped_bundles())
    current = path.read_text() if path.is_file() else ""
    if args.check:
        if current != text:
            print(f"{path} is out of date: run scripts/update_bundle_manifest.py", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if current == text:
        print(f"{path} is up to date")
        return 0
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
