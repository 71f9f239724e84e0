"""revnets as an installable package: the sdist and the wheel built from it, installed without the source
tree, run the command with the shipped bundles from a folder outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import revnets

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.parent.parent.name for p in (ROOT / "bundles").glob("*/configs/inference.json"))
TIMEOUT = 600


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build``: the sdist, then the wheel built from that sdist (so the sdist is complete).

    Without build isolation: the project's environment already has setuptools, nothing is downloaded.
    """
    out = tmp_path_factory.mktemp("dist")
    built = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)])
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    (wheel,) = out.glob("revnets-*.whl")
    (sdist,) = out.glob("revnets-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def installed(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The wheel installed without dependencies into a fresh folder; the environment's own packages
    (torch, MONAI, ...) supply the dependencies, the source tree supplies nothing."""
    site = tmp_path_factory.mktemp("site")
    result = _run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site),
                   str(dist["wheel"])])
    assert result.returncode == 0, result.stderr[-2000:]
    workdir = tmp_path_factory.mktemp("elsewhere")
    assert not workdir.resolve().is_relative_to(ROOT)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return {"site": site, "command": [str(site / "bin" / "revnets")], "env": env, "cwd": workdir}


def _revnets(installed: dict, *args: str) -> subprocess.CompletedProcess:
    return _run([*installed["command"], *args], env=installed["env"], cwd=installed["cwd"])


def test_twine_check_passes_on_the_sdist_and_the_wheel(dist: dict[str, Path]) -> None:
    result = _run([sys.executable, "-m", "twine", "check", "--strict", str(dist["sdist"]), str(dist["wheel"])])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_wheel_carries_the_package_and_every_shipped_bundle(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    assert "revnets/cli.py" in names and "revnets/bundles.py" in names
    for bundle in SHIPPED:
        for part in ("configs/inference.json", "configs/metadata.json", "models/model.pt"):
            assert f"revnets/bundles/{bundle}/{part}" in names, (bundle, part)
    in_bundles = [n for n in names if n.startswith("revnets/bundles/")]
    assert not [n for n in in_bundles if "/training/" in n or "/eval/" in n or n.endswith(".pyc")]
    metadata = zipfile.ZipFile(dist["wheel"]).read(f"revnets-{revnets.__version__}.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.10" in metadata and f"Version: {revnets.__version__}" in metadata


def test_sdist_carries_the_bundles_and_the_build_hook(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"setup.py", "pyproject.toml", "README.md", "LICENSE", "revnets/cli.py"} <= names
    assert all(f"bundles/{bundle}/models/model.pt" in names for bundle in SHIPPED)


def test_installed_copy_is_imported_not_the_source_tree(installed: dict) -> None:
    code = "import revnets, revnets.bundles as b; print(revnets.__file__); print(b.shipped_root())"
    result = _run([sys.executable, "-c", code], env=installed["env"], cwd=installed["cwd"])
    assert result.returncode == 0, result.stderr
    module, root = (Path(line) for line in result.stdout.split())
    assert module.is_relative_to(installed["site"]) and not module.is_relative_to(ROOT)
    assert root == installed["site"] / "revnets" / "bundles"


def test_installed_command_reports_its_version(installed: dict) -> None:
    result = _revnets(installed, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"revnets {revnets.__version__}"


def test_installed_command_lists_and_copies_the_shipped_bundles(installed: dict) -> None:
    listed = _revnets(installed, "bundles")
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == SHIPPED
    copied = _revnets(installed, "bundles", "copy", SHIPPED[0], "copies")
    assert copied.returncode == 0, copied.stderr
    target = installed["cwd"] / "copies" / SHIPPED[0]
    assert json.loads((target / "configs" / "metadata.json").read_text()) == json.loads(
        (ROOT / "bundles" / SHIPPED[0] / "configs" / "metadata.json").read_text()
    )
    again = _revnets(installed, "bundles", "copy", SHIPPED[0], "copies")
    assert again.returncode == 2 and again.stderr.startswith("revnets: error:") and "already exists" in again.stderr


def test_installed_command_predicts_with_a_shipped_bundle_by_name(installed: dict) -> None:
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    grid = np.linalg.norm(np.mgrid[-1:1:20j, -1:1:24j, -1:1:20j], axis=0)
    scan = (np.clip(1.2 - grid, 0, 1) * 100 + np.random.default_rng(0).normal(0, 3, grid.shape)).astype(np.float32)
    nib.save(nib.Nifti1Image(scan, affine), installed["cwd"] / "head.nii.gz")
    result = _revnets(
        installed, "predict", "head.nii.gz", "--bundle", "invres_brain_tissue", "--output", "out",
        "--samples", "2", "--device", "cpu", "--progress", "none",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(p.name for p in (installed["cwd"] / "out").iterdir())
    assert written == sorted(
        f"head_{name}.nii.gz" for name in ("seg", "samples", "entropy", "mutual_info", "variance")
    )
    samples = nib.load(installed["cwd"] / "out" / "head_samples.nii.gz")
    assert samples.shape == (*scan.shape, 2) and np.allclose(samples.affine, affine)
