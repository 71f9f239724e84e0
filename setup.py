"""Build hook: the wheel carries the shipped bundles as package data in the folder ``revnets/bundles``.

The bundles stay in the repository's top-level ``bundles/`` folder; every folder there (and the files next
to them, such as the digest manifest) is copied into the built package, except training and evaluation
outputs. An editable install copies nothing: ``revnets.bundles`` then finds ``bundles/`` in the checkout.
All other settings are in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLES = Path(__file__).resolve().parent / "bundles"
# The data folder sits beside the module revnets/bundles.py (a module wins over a folder without __init__.py);
# revnets.bundles.shipped_root() looks for it there.
PACKAGED_AS = Path("revnets") / "bundles"
# Outputs of training and evaluation runs that live inside bundle folders but never ship.
NOT_SHIPPED = shutil.ignore_patterns("training", "eval", "__pycache__", "*.pyc", ".*")


class BuildPyWithBundles(build_py):
    """``build_py`` that also copies ``bundles/`` into the package in the build folder."""

    def run(self) -> None:
        super().run()
        if self.editable_mode or not BUNDLES.is_dir():
            return
        target = Path(self.build_lib) / PACKAGED_AS
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(BUNDLES, target, ignore=NOT_SHIPPED)


setup(cmdclass={"build_py": BuildPyWithBundles})
