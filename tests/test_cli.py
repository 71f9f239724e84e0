"""The ``revnets predict`` command end to end on small volumes, and every user error it must report."""

from __future__ import annotations

import gc
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from revnets import cli
from revnets.cli import main
from revnets.inference import OUTPUTS
from revnets.inference.inferer import fast_bfloat16
from tests.tiny_bundle import make_tiny_bundle

AFFINE = np.array([[-1.5, 0, 0, 40], [0, 1.5, 0, -30], [0, 0, 2.0, 10], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _scan(path: Path, shape: tuple[int, ...] = (30, 26, 20), affine: np.ndarray = AFFINE) -> Path:
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, s) for s in shape[:3]), indexing="ij"))
    volume = (np.linalg.norm(grid, axis=0) < 0.7) * 100.0 + rng.normal(0, 5, shape[:3])
    if len(shape) == 4:
        volume = np.repeat(volume[..., None], shape[3], axis=-1)
    nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), path)
    return path


def _predict(bundle: Path, *args: str | Path) -> int:
    return main(["predict", *map(str, args), "--bundle", str(bundle), "--trust-bundle", "--progress", "none"])


def test_predict_writes_five_files_in_the_input_space(bundle: Path, tmp_path: Path) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    assert _predict(bundle, scan, "--output", tmp_path / "out", "--samples", "3") == 0
    reference = nib.load(scan)
    images = {name: nib.load(tmp_path / "out" / f"case_{name}.nii.gz") for name in OUTPUTS}
    for name, image in images.items():
        assert image.shape[:3] == reference.shape, name
        assert np.allclose(image.affine, reference.affine), name
    assert images["samples"].shape == (*reference.shape, 3)
    seg = np.asarray(images["seg"].dataobj)
    assert set(np.unique(seg)) <= {0, 1, 2}
    entropy = images["entropy"].get_fdata()
    mutual_info = images["mutual_info"].get_fdata()
    assert (entropy >= -1e-6).all() and (entropy <= np.log(3) + 1e-5).all()
    assert (mutual_info <= entropy + 1e-5).all() and (images["variance"].get_fdata() >= -1e-6).all()
    assert not list((tmp_path / "out").glob(".*")), "temporary files left behind"


def test_same_seed_gives_same_samples_and_another_seed_differs(bundle: Path, tmp_path: Path) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    for folder, seed in (("a", 1), ("b", 1), ("c", 2)):
        assert _predict(bundle, scan, "--output", tmp_path / folder, "--seed", str(seed)) == 0
    samples = {f: nib.load(tmp_path / f / "case_entropy.nii.gz").get_fdata() for f in "abc"}
    assert np.array_equal(samples["a"], samples["b"])
    assert not np.array_equal(samples["a"], samples["c"])


def test_precision_flag_replaces_the_bundles_bfloat16(bundle: Path, tmp_path: Path) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    for precision in ("bfloat16", "float32"):
        assert _predict(bundle, scan, "--output", tmp_path / precision, "--precision", precision) == 0
    assert _predict(bundle, scan, "--output", tmp_path / "default") == 0
    maps = {f: nib.load(tmp_path / f / "case_entropy.nii.gz").get_fdata() for f in ("bfloat16", "float32", "default")}
    assert np.array_equal(maps["default"], maps["bfloat16"])  # the shipped configs say bfloat16
    assert np.abs(maps["bfloat16"] - maps["float32"]).max() < 0.05
    if fast_bfloat16(torch.device("cpu")):
        assert not np.array_equal(maps["bfloat16"], maps["float32"])
    else:
        assert np.array_equal(maps["bfloat16"], maps["float32"])  # float32 where bfloat16 is not native


def test_the_command_exits_with_mains_code_after_freezing_the_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "main", lambda: 3)
    try:
        with pytest.raises(SystemExit) as exit_:
            cli.run()
        assert exit_.value.code == 3
        assert gc.get_freeze_count() > 0  # the interpreter's last sweep skips what was alive at the end
    finally:
        gc.unfreeze()


def _error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("revnets: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_missing_input_is_a_one_line_error(bundle: Path, tmp_path: Path, capsys) -> None:
    err = _error(capsys, _predict(bundle, tmp_path / "nope.nii.gz", "--output", tmp_path / "out"))
    assert "nope.nii.gz: no such file" in err


def test_non_image_file_is_a_one_line_error(bundle: Path, tmp_path: Path, capsys) -> None:
    fake = tmp_path / "notes.nii.gz"
    fake.write_text("not an image")
    err = _error(capsys, _predict(bundle, fake, "--output", tmp_path / "out"))
    assert "notes.nii.gz is not a readable NIfTI image" in err


def test_truncated_file_is_a_one_line_error(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    data = scan.read_bytes()
    scan.write_bytes(data[: len(data) // 2])
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))
    assert "case.nii.gz" in err
    assert not any((tmp_path / "out").glob("*")), "nothing may be written for a failed input"


def test_wrong_dimensionality_and_channel_count_are_errors(bundle: Path, tmp_path: Path, capsys) -> None:
    flat = tmp_path / "flat.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20), np.float32), np.eye(4)), flat)
    assert "expected a 3D volume" in _error(capsys, _predict(bundle, flat, "--output", tmp_path / "out"))
    two = _scan(tmp_path / "two.nii.gz", shape=(20, 20, 20, 2))
    assert "2 channel(s), but the model takes a 3D volume" in _error(
        capsys, _predict(bundle, two, "--output", tmp_path / "out")
    )


def test_nan_voxels_are_an_error(bundle: Path, tmp_path: Path, capsys) -> None:
    volume = np.ones((20, 20, 20), np.float32)
    volume[3, 4, 5] = np.nan
    scan = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), scan)
    assert "NaN or infinite voxels" in _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))


def test_output_folder_that_is_a_file_is_an_error(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    (tmp_path / "out").write_text("")
    assert "is a file, not a folder" in _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))


def test_outputs_never_replace_inputs_or_existing_files(bundle: Path, tmp_path: Path, capsys) -> None:
    first = _scan(tmp_path / "a.nii.gz")
    clash = _scan(tmp_path / "a_seg.nii.gz")
    before = clash.read_bytes()
    err = _error(capsys, _predict(bundle, first, clash, "--output", tmp_path))
    assert "would replace an input file. Choose another --output" in err and clash.read_bytes() == before
    assert _predict(bundle, first, "--output", tmp_path / "out") == 0
    assert "exists. Pass --overwrite" in _error(capsys, _predict(bundle, first, "--output", tmp_path / "out"))
    assert _predict(bundle, first, "--output", tmp_path / "out", "--overwrite") == 0


def test_missing_bundle_is_an_error(tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    err = _error(capsys, _predict(tmp_path / "no_bundle", scan, "--output", tmp_path / "out"))
    assert "no_bundle is neither a bundle folder nor a shipped bundle (invres_brain_tissue" in err


def test_progress_lines_for_programs(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "case.nii.gz")
    code = main([
        "predict", str(scan), "--bundle", str(bundle), "--trust-bundle", "--output", str(tmp_path / "o"),
        "--progress", "lines",
    ])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    percents = [int(line.split()[1]) for line in lines if line.startswith("PROGRESS ")]
    assert percents and percents == sorted(percents) and percents[-1] == 100
    assert sum(line.startswith("wrote ") for line in lines) == len(OUTPUTS)
