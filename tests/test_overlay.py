"""``revnets overlay``: a PNG with the map over the scan, anatomically oriented, and its user errors."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest

from revnets.cli import main

SHAPE = (24, 28, 20)
# Stored LPS (first axis runs towards the patient's left): the overlay must reorient it.
LPS = np.array([[-2.0, 0, 0, 30], [0, -2.0, 0, 40], [0, 0, 2.5, -20], [0, 0, 0, 1]])
CYAN = np.array([0, 229, 255]) / 255  # the first consensus contour colour
PANEL_ROWS = 300  # the 440-pixel-high picture has the three views above this row, the colour bar below


def _save(array: np.ndarray, path: Path, affine: np.ndarray = LPS) -> Path:
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


@pytest.fixture
def case(tmp_path: Path) -> dict[str, Path]:
    """A scan, an entropy map that is zero but for a blob at the patient's right-anterior-superior, labels."""
    rng = np.random.default_rng(0)
    scan = 100 + rng.normal(0, 10, SHAPE).astype(np.float32)
    entropy = np.zeros(SHAPE, np.float32)
    entropy[2:6, 2:6, 14:18] = 0.9  # low i: right (LPS), low j: anterior, high k: superior
    seg = np.zeros(SHAPE, np.uint8)
    seg[6:18, 6:22, 5:15] = 1
    return {
        "scan": _save(scan, tmp_path / "case.nii.gz"),
        "map": _save(entropy, tmp_path / "case_entropy.nii.gz"),
        "seg": _save(seg, tmp_path / "case_seg.nii.gz"),
    }


def _overlay(case: dict[str, Path], output: Path, *args: str) -> int:
    return main(["overlay", str(case["scan"]), str(case["map"]), "--output", str(output), *args])


def _coloured(picture: np.ndarray) -> np.ndarray:
    """Pixels that are neither grey nor black: where the map is drawn."""
    rgb = picture[..., :3]
    return (rgb.max(-1) - rgb.min(-1)) > 0.15


def _axial_panel(picture: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The left third of the picture (the axial view) and the median position of the scan's grey pixels."""
    panel = picture[:PANEL_ROWS, : picture.shape[1] // 3]
    rgb = panel[..., :3]
    grey = (rgb.max(-1) - rgb.min(-1) < 0.02) & (rgb.mean(-1) > 0.1) & (rgb.mean(-1) < 0.9)
    rows, columns = np.nonzero(grey)
    return panel, (float(np.median(rows)), float(np.median(columns)))


def test_overlay_writes_a_png_with_map_scan_and_contours(case: dict[str, Path], tmp_path: Path, capsys) -> None:
    output = tmp_path / "figures" / "overlay.png"
    assert _overlay(case, output, "--seg", str(case["seg"]), "--at", "max") == 0
    assert capsys.readouterr().out.strip() == f"wrote {output}"
    picture = matplotlib.image.imread(output)
    assert picture.shape == (440, 1200, 4)
    assert picture[..., :3].std() > 0.05, "blank picture"
    assert _coloured(picture[:PANEL_ROWS]).sum() > 100, "the uncertainty map is not drawn"
    assert (np.abs(picture[..., :3] - CYAN).max(-1) < 0.1).sum() > 20, "the consensus contour is not drawn"
    assert not list(output.parent.glob(".*")), "temporary files left behind"


def test_map_is_drawn_where_the_patient_is_right_anterior_in_radiological_axial_view(
    case: dict[str, Path], tmp_path: Path
) -> None:
    output = tmp_path / "overlay.png"
    assert _overlay(case, output, "--at", "max", "--alpha", "1") == 0
    panel, (centre_row, centre_column) = _axial_panel(matplotlib.image.imread(output))
    rows, columns = np.nonzero(_coloured(panel))
    assert rows.size > 10
    assert np.median(columns) < centre_column, "patient's right must be on the left of the axial view"
    assert np.median(rows) < centre_row, "anterior must be at the top of the axial view"


def test_zero_map_is_transparent_and_max_point_finds_the_blob(case: dict[str, Path], tmp_path: Path) -> None:
    assert _overlay(case, tmp_path / "centre.png", "--at", "centre") == 0
    assert _overlay(case, tmp_path / "max.png", "--at", "max") == 0
    assert _coloured(matplotlib.image.imread(tmp_path / "centre.png")[:PANEL_ROWS]).sum() == 0
    assert _coloured(matplotlib.image.imread(tmp_path / "max.png")[:PANEL_ROWS]).sum() > 100


def _error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("revnets: error: ") and "\n" not in err
    return err


def test_missing_scan_and_non_nifti_map_are_one_line_errors(case, tmp_path: Path, capsys) -> None:
    missing = dict(case, scan=tmp_path / "nope.nii.gz")
    assert "nope.nii.gz: no such file" in _error(capsys, _overlay(missing, tmp_path / "o.png"))
    text = tmp_path / "notes.nii.gz"
    text.write_text("not an image")
    err = _error(capsys, _overlay(dict(case, map=text), tmp_path / "o.png"))
    assert "notes.nii.gz is not a readable NIfTI image" in err
    assert not (tmp_path / "o.png").exists()


def test_map_of_another_shape_or_space_is_an_error(case, tmp_path: Path, capsys) -> None:
    small = _save(np.zeros((10, 10, 10), np.float32), tmp_path / "small_entropy.nii.gz")
    err = _error(capsys, _overlay(dict(case, map=small), tmp_path / "o.png"))
    assert "small_entropy.nii.gz has shape (10, 10, 10)" in err and "case.nii.gz has shape" in err
    shifted = LPS.copy()
    shifted[0, 3] += 5.0
    moved = _save(np.zeros(SHAPE, np.float32), tmp_path / "moved.nii.gz", shifted)
    assert "moved.nii.gz is not in the space of" in _error(capsys, _overlay(dict(case, map=moved), tmp_path / "o.png"))
    samples = _save(np.zeros((*SHAPE, 3), np.uint8), tmp_path / "case_samples.nii.gz")
    assert "expected a 3D volume" in _error(capsys, _overlay(dict(case, map=samples), tmp_path / "o.png"))
    seg = _save(np.zeros((10, 10, 10), np.uint8), tmp_path / "bad_seg.nii.gz")
    assert "bad_seg.nii.gz has shape" in _error(capsys, _overlay(case, tmp_path / "o.png", "--seg", str(seg)))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--alpha", "0"), "alpha must be in (0, 1]"),
        (("--cmap", "nocolours"), "cmap nocolours is not a matplotlib colour map"),
    ],
)
def test_bad_options_are_errors(case, tmp_path: Path, capsys, args: tuple[str, ...], message: str) -> None:
    assert message in _error(capsys, _overlay(case, tmp_path / "o.png", *args))


def test_output_must_be_png_and_is_never_replaced_without_overwrite(case, tmp_path: Path, capsys) -> None:
    assert "must end in .png" in _error(capsys, _overlay(case, tmp_path / "o.jpg"))
    output = tmp_path / "o.png"
    output.write_bytes(b"keep")
    assert "exists. Pass --overwrite" in _error(capsys, _overlay(case, output))
    assert output.read_bytes() == b"keep"
    assert _overlay(case, output, "--overwrite") == 0
    assert matplotlib.image.imread(output).shape == (440, 1200, 4)
