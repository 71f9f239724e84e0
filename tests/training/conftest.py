"""Tiny example data for the training tests: written once per session at 6 mm (volumes of about 33 x 39 x 32)."""

from __future__ import annotations

from pathlib import Path

import pytest

from revnets.data import write_brats_dataset, write_multirater_set

SPACING = 6.0


@pytest.fixture(scope="session")
def tissue_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multi-rater folder: ``mni/image.nii.gz`` and four ``label_rater{k}.nii.gz``."""
    directory = tmp_path_factory.mktemp("multi_rater")
    write_multirater_set(directory, spacing=SPACING)
    return directory


@pytest.fixture(scope="session")
def brats_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BraTS folder of three phantom cases."""
    directory = tmp_path_factory.mktemp("brats")
    write_brats_dataset(directory, cases=3, seed=0, spacing=SPACING)
    return directory
