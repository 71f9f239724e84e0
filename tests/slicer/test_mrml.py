"""Runs ``tests/slicer/mrml/`` (the module's logic against Slicer's real MRML) in ``.venv-slicer``.

Slicer's MRML and module logic libraries come from PyPI's ``slicer-core`` wheel, which exists for Python
3.12 only; ``make test`` builds ``.venv-slicer`` with it when it finds a Python 3.12. Without that
environment this test fails (it is never skipped): the Slicer module would otherwise go untested.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.tiny_bundle import make_tiny_bundle

ROOT = Path(__file__).resolve().parents[2]
SLICER_VENV = ROOT / os.environ.get("SLICER_VENV", ".venv-slicer")
SLICER_PYTHON = SLICER_VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
MRML_TESTS = Path(__file__).resolve().parent / "mrml"


def test_module_logic_against_real_mrml(tmp_path: Path) -> None:
    if not SLICER_PYTHON.is_file():
        pytest.fail(
            f"{SLICER_PYTHON} is missing, so the Slicer module's logic cannot be tested against Slicer's MRML. "
            "It needs a Python 3.12 (the slicer-core wheel exists only for 3.12): install one (e.g. "
            "`pyenv install 3.12`) and run `make test` (or `make .venv-slicer/.installed PYTHON312=/path/to/it`)."
        )
    bundle = make_tiny_bundle(tmp_path)
    report = tmp_path / "report.xml"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")},
        "REVNETS_TEST_BUNDLE": str(bundle),
        "REVNETS_TEST_CT_BUNDLE": str(ROOT / "bundles" / "lung_nodule_ct_revphiseg"),
        "REVNETS_TEST_CT": str(_chest_ct(tmp_path / "ct")),
        "REVNETS_TEST_PYTHON": sys.executable,  # the project's environment runs `revnets predict`
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [str(SLICER_PYTHON), "-m", "pytest", str(MRML_TESTS), "-q", "-p", "no:cacheprovider",
         "--confcutdir", str(MRML_TESTS.parent), f"--junitxml={report}", f"--basetemp={tmp_path / 'mrml'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=1200, check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    suite = ElementTree.parse(report).getroot().find("testsuite")
    declared = sum(
        line.startswith("def test_")
        for path in MRML_TESTS.glob("test_*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
    )
    ran = int(suite.get("tests")) - int(suite.get("skipped")) - int(suite.get("failures")) - int(suite.get("errors"))
    assert ran == declared, f"{ran} of {declared} MRML tests passed; none may be skipped"


def _chest_ct(folder: Path) -> Path:
    """A held-out chest CT phantom case (seed 3007, never trained or selected on; its largest nodule is a
    solid 28 mm one), cut to the 10 slices around the most marked slice, as ``chest.nii.gz`` (Hounsfield
    units) beside ``raters.nii.gz`` (how many of the four raters marked each voxel)."""
    import nibabel as nib
    import numpy as np

    from revnets.data.ct_phantom import simulate_chest_ct

    case = simulate_chest_ct(3007)
    marked = case.raters.sum(0)
    centre = int(np.argmax(marked.sum((0, 1))))
    first = min(max(centre - 5, 0), marked.shape[2] - 10)
    affine = case.affine.copy()
    affine[:3, 3] += affine[:3, 2] * first
    folder.mkdir()
    nib.save(nib.Nifti1Image(case.hu[..., first : first + 10], affine), folder / "chest.nii.gz")
    nib.save(nib.Nifti1Image(marked[..., first : first + 10].astype(np.uint8), affine), folder / "raters.nii.gz")
    return folder / "chest.nii.gz"

