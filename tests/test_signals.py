"""SIGTERM and SIGINT during ``revnets predict``: one line, exit 143 / 130, and a unit's outputs all or none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.tiny_bundle import make_tiny_bundle

REPO = Path(__file__).resolve().parents[1]
NAMES = ("seg", "samples", "entropy", "mutual_info", "variance")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _scan(path: Path) -> Path:
    rng = np.random.default_rng(0)
    volume = rng.normal(0, 1, (20, 18, 16)).astype(np.float32)
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return path


def _interrupted(bundle: Path, tmp_path: Path, point: str, signum: int) -> tuple[int, str, Path]:
    """Run the child until it reaches ``point``, send ``signum``; return its exit code, stderr and output folder."""
    scan, output, ready = _scan(tmp_path / "case.nii.gz"), tmp_path / "out", tmp_path / "ready"
    command = [
        sys.executable, "-m", "tests.interrupted_predict", point, str(ready),
        str(scan), "--bundle", str(bundle), "--trust-bundle", "--output", str(output), "--samples", "2",
        "--device", "cpu", "--progress", "none",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"the child never reached {point}: {child.communicate()[1]}"
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, stderr, output


@pytest.mark.parametrize(
    ("signum", "code", "word"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_signal_while_writing_leaves_no_file_and_no_folder(
    bundle: Path, tmp_path: Path, signum: int, code: int, word: str
) -> None:
    returncode, stderr, output = _interrupted(bundle, tmp_path, "writing", signum)
    assert returncode == code, stderr
    assert stderr.strip().startswith(f"revnets: {word}") and len(stderr.strip().splitlines()) == 1, stderr
    assert not output.exists(), f"left behind: {sorted(output.rglob('*'))}"


def test_sigterm_while_moving_outputs_into_place_completes_the_unit_first(bundle: Path, tmp_path: Path) -> None:
    returncode, stderr, output = _interrupted(bundle, tmp_path, "committing", signal.SIGTERM)
    assert returncode == 143
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert sorted(p.name for p in output.iterdir()) == sorted(f"case_{name}.nii.gz" for name in NAMES)
    for name in NAMES:
        nib.load(output / f"case_{name}.nii.gz").get_fdata()  # each one whole
