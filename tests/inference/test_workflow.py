"""The inference config is a standard MONAI workflow: ``monai.bundle run --dataset_dir`` writes every scan's
outputs, ``revnets predict`` runs the same config to the same files, memory does not grow with the samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.bundle import ConfigWorkflow, run
from monai.inferers import Inferer

from revnets.cli import main
from revnets.errors import InputError
from revnets.inference import MAX_SAMPLES, OUTPUTS, InvertSamplesd, SamplingInferer
from revnets.inference.label_volumes import LabelVolumes
from tests.tiny_bundle import make_tiny_bundle

AFFINE = np.array([[0, 0, 3.0, -40], [-3.0, 0, 0, 50], [0, 3.0, 0, -20], [0, 0, 0, 1]])


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _scans(folder: Path, names: tuple[str, ...] = ("a", "b"), shape: tuple[int, ...] = (30, 26, 20)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        nib.save(nib.Nifti1Image((rng.random(shape) * 100).astype(np.float32), AFFINE), folder / f"{name}.nii.gz")
    return folder


def _config(bundle: Path) -> str:
    return str(bundle / "configs" / "inference.json")


def _chain(error: BaseException) -> list[BaseException]:
    chain = []
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def test_bundle_run_writes_the_outputs_of_every_scan_in_the_dataset_dir(bundle: Path, tmp_path: Path) -> None:
    data = _scans(tmp_path / "data")
    run(config_file=_config(bundle), bundle_root=str(bundle), dataset_dir=str(data), output_dir=str(tmp_path / "out"))
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{stem}_{name}.nii.gz" for stem in ("a", "b") for name in OUTPUTS)
    for path in (tmp_path / "out").iterdir():
        image = nib.load(path)
        assert image.shape[:3] == (30, 26, 20) and np.allclose(image.affine, AFFINE), path.name
    assert nib.load(tmp_path / "out" / "a_samples.nii.gz").shape[3] == 3  # the tiny bundle's num_samples


def test_bundle_run_without_input_fails_with_a_clear_message(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as failed:
        run(config_file=_config(bundle), bundle_root=str(bundle), output_dir=str(tmp_path / "out"))
    messages = [str(e) for e in _chain(failed.value) if isinstance(e, InputError)]
    assert messages and "no scans to segment: dataset_dir is not set" in messages[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(RuntimeError) as failed:
        run(config_file=_config(bundle), bundle_root=str(bundle), dataset_dir=str(tmp_path / "empty"))
    assert any("no scans to segment" in str(e) and "holds no" in str(e) for e in _chain(failed.value))
    assert not (tmp_path / "out").exists()


def test_bundle_run_from_the_command_line_exits_non_zero_without_input(bundle: Path) -> None:
    command = [sys.executable, "-m", "monai.bundle", "run", "--config_file", _config(bundle)]
    command += ["--bundle_root", str(bundle)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "no scans to segment: dataset_dir is not set" in done.stdout + done.stderr


def test_inference_workflow_has_monai_infer_properties(bundle: Path, tmp_path: Path) -> None:
    workflow = ConfigWorkflow(
        config_file=_config(bundle), workflow_type="infer", bundle_root=str(bundle), dataset_dir=str(_scans(tmp_path))
    )
    workflow.initialize()
    assert workflow.check_properties() == []
    assert isinstance(workflow.inferer, Inferer) and isinstance(workflow.inferer, SamplingInferer)


def test_revnets_predict_writes_the_same_files_as_the_bundle_run(bundle: Path, tmp_path: Path) -> None:
    data = _scans(tmp_path / "data", names=("a",))
    run(config_file=_config(bundle), bundle_root=str(bundle), dataset_dir=str(data), output_dir=str(tmp_path / "run"),
        seed=5)
    code = main(["predict", str(data / "a.nii.gz"), "--bundle", str(bundle), "--trust-bundle", "--output",
                 str(tmp_path / "cli"), "--seed", "5", "--progress", "none"])
    assert code == 0
    for name in OUTPUTS:
        ours = np.asarray(nib.load(tmp_path / "cli" / f"a_{name}.nii.gz").dataobj)
        theirs = np.asarray(nib.load(tmp_path / "run" / f"a_{name}.nii.gz").dataobj)
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_probabilities_and_expected_cross_entropy_on_request(bundle: Path, tmp_path: Path) -> None:
    data = _scans(tmp_path / "data", names=("a",))
    code = main(["predict", str(data / "a.nii.gz"), "--bundle", str(bundle), "--trust-bundle", "--output",
                 str(tmp_path / "out"), "--probabilities", "--expected-cross-entropy", "--progress", "none"])
    assert code == 0
    probabilities = nib.load(tmp_path / "out" / "a_probabilities.nii.gz")
    assert probabilities.shape == (30, 26, 20, 3) and np.allclose(probabilities.affine, AFFINE)
    p = np.asarray(probabilities.dataobj)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-4)
    seg = np.asarray(nib.load(tmp_path / "out" / "a_seg.nii.gz").dataobj)
    np.testing.assert_array_equal(seg, p.argmax(-1))
    expected_ce = np.asarray(nib.load(tmp_path / "out" / "a_expected_cross_entropy.nii.gz").dataobj)
    entropy = np.asarray(nib.load(tmp_path / "out" / "a_entropy.nii.gz").dataobj)
    assert expected_ce.shape == (30, 26, 20) and (expected_ce >= entropy - 1e-4).all()  # E[CE(mean, s)] >= H(mean)


def test_constant_image_is_refused_naming_the_file(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = tmp_path / "zeros.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((20, 20, 20), np.float32), AFFINE), scan)
    code = main(["predict", str(scan), "--bundle", str(bundle), "--trust-bundle", "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "zeros.nii.gz has the same value in every voxel" in err
    assert not (tmp_path / "o").exists()


def test_sample_count_beyond_the_limit_is_refused_with_the_limit_and_why() -> None:
    with pytest.raises(InputError, match=f"between 1 and {MAX_SAMPLES}, got {MAX_SAMPLES + 1}: each sample is one"):
        SamplingInferer((16, 16, 16), num_samples=MAX_SAMPLES + 1)
    with pytest.raises(InputError, match="got 0"):
        SamplingInferer((16, 16, 16), num_samples=0)


def test_samples_per_pass_do_not_grow_with_the_number_of_samples() -> None:
    inferer = SamplingInferer((96, 96, 96), memory_budget=2**26)
    spatial = (100, 110, 90)
    per_pass = 2**26 // (4 * 3 * int(np.prod(spatial)))
    for num_samples in (16, 64, 1000):
        passes = inferer.passes(num_samples, 3, spatial)
        assert sum(count for _, count in passes) == num_samples
        assert max(count for _, count in passes) == min(per_pass, num_samples)


def test_samples_come_back_to_the_input_space_one_map_at_a_time(tmp_path: Path) -> None:
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd, Spacingd

    scan = _scans(tmp_path, names=("a",)) / "a.nii.gz"
    preprocessing = Compose([
        LoadImaged("image"), EnsureChannelFirstd("image"), Orientationd("image", axcodes="RAS"),
        Spacingd("image", pixdim=(6.0, 6.0, 6.0)),
    ])
    data = preprocessing({"image": str(scan)})
    grid = data["image"].shape[1:]
    samples = torch.stack([torch.full(grid, i % 3, dtype=torch.uint8) for i in range(5)])
    samples[1, 0, 0, 0] = 2
    out = InvertSamplesd("samples", preprocessing, labels=[0, 10, 20])({**data, "samples": samples})["samples"]
    assert isinstance(out, LabelVolumes)  # the samples stay on the grid until each map is written
    assert out.shape == (30, 26, 20, 5) and out.dtype == np.uint8 and out.classes.shape == (5, int(np.prod(grid)))
    assert [set(np.unique(out.volume(i))) for i in (0, 2, 3)] == [{0}, {20}, {0}]
    assert set(np.unique(out.volume(1))) == {10, 20}
    assert np.array_equal(np.asarray(out)[..., 1], out.volume(1))


def test_a_config_that_names_an_unknown_output_is_refused(bundle: Path, tmp_path: Path) -> None:
    config = json.loads(Path(_config(bundle)).read_text())
    assert config["outputs"] == list(OUTPUTS)
    with pytest.raises(RuntimeError) as failed:
        run(config_file=_config(bundle), bundle_root=str(bundle), dataset_dir=str(_scans(tmp_path / "d")),
            output_dir=str(tmp_path / "o"), outputs=["seg", "segmentation"])
    assert any("unknown outputs ['segmentation']" in str(e) for e in _chain(failed.value))
