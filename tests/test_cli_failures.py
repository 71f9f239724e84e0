"""What a hostile but realistic user tries on ``revnets predict`` and ``revnets overlay``: one line, exit 2,
nothing lost, nothing half-written, no empty folder left behind."""

from __future__ import annotations

import errno
import gzip
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from revnets import files
from revnets.cli import main
from tests.tiny_bundle import make_tiny_bundle, make_tiny_phiseg_bundle

NAMES = ("seg", "samples", "entropy", "mutual_info", "variance")
MODALITIES = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _volume(shape: tuple[int, ...] = (20, 18, 16)) -> np.ndarray:
    rng = np.random.default_rng(0)
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, s) for s in shape), indexing="ij"))
    return ((np.linalg.norm(grid, axis=0) < 0.7) * 100.0 + rng.normal(0, 5, shape)).astype(np.float32)


def _scan(path: Path, volume: np.ndarray | None = None, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    volume = _volume() if volume is None else volume
    nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 2.0, 1.0]) if affine is None else affine), path)
    return path


def _predict(bundle: Path, *args: str | Path) -> int:
    return main(["predict", *map(str, args), "--bundle", str(bundle), "--trust-bundle", "--progress", "none"])


def _error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("revnets: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# 2. Results silently lost


def test_two_inputs_with_the_same_name_are_refused_before_any_work(bundle: Path, tmp_path: Path, capsys) -> None:
    first, second = _scan(tmp_path / "sub-01" / "T1.nii.gz"), _scan(tmp_path / "sub-02" / "T1.nii.gz")
    err = _error(capsys, _predict(bundle, first, second, "--output", tmp_path / "out"))
    assert "sub-01/T1.nii.gz and " in err and "sub-02/T1.nii.gz would both write" in err
    assert not (tmp_path / "out").exists()


def test_a_brats_case_folder_as_output_never_loses_its_ground_truth(tmp_path: Path, capsys) -> None:
    bundle = make_tiny_bundle(tmp_path, in_channels=4)
    case = tmp_path / "case"
    for modality in MODALITIES:
        _scan(case / f"case_{modality}.nii.gz")
    truth = _scan(case / "case_seg.nii.gz", (_volume() > 50).astype(np.float32))
    before = truth.read_bytes()
    err = _error(capsys, _predict(bundle, case, "--output", case, "--overwrite"))
    assert "case_seg.nii.gz would replace an input file" in err
    assert truth.read_bytes() == before
    expected = [f"case_{m}.nii.gz" for m in MODALITIES] + ["case_seg.nii.gz"]
    assert sorted(p.name for p in case.iterdir()) == sorted(expected)


# 5. Tracebacks instead of one line


def test_an_all_zero_volume_is_one_line_and_leaves_no_folder(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "zero.nii.gz", np.zeros((20, 18, 16), np.float32))
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "new" / "out"))
    assert "zero.nii.gz" in err
    assert not (tmp_path / "new").exists()


def test_a_volume_without_foreground_is_one_line(bundle: Path, tmp_path: Path, capsys) -> None:
    negative = -1.0 - np.abs(np.random.default_rng(0).normal(size=(20, 18, 16))).astype(np.float32)
    _error(capsys, _predict(bundle, _scan(tmp_path / "negative.nii.gz", negative), "--output", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", ["-5", str(2**70)])
def test_seeds_out_of_range_are_one_line(bundle: Path, tmp_path: Path, capsys, seed: str) -> None:
    err = _error(capsys, _predict(bundle, _scan(tmp_path / "a.nii.gz"), "--output", tmp_path / "out", "--seed", seed))
    assert "seed must be a whole number from 0 to 2**63 - 1" in err and seed in err
    assert not (tmp_path / "out").exists()


def test_an_absurd_number_of_samples_is_refused_with_the_limit(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "a.nii.gz")
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out", "--samples", "100000"))
    assert "100000" in err and "1024" in err


@pytest.mark.parametrize("shape", [(3, 3, 3), (32, 32, 32)])
def test_revphiseg_segments_small_volumes(tmp_path: Path, shape: tuple[int, int, int]) -> None:
    bundle = make_tiny_phiseg_bundle(tmp_path)
    scan = _scan(tmp_path / "small.nii.gz", _volume(shape), np.eye(4))
    assert _predict(bundle, scan, "--output", tmp_path / "out") == 0
    assert nib.load(tmp_path / "out" / "small_seg.nii.gz").shape == shape
    assert nib.load(tmp_path / "out" / "small_samples.nii.gz").shape == (*shape, 2)


def test_an_output_folder_that_cannot_be_written_is_refused_before_computing(
    bundle: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(files.os, "access", lambda path, mode: Path(path) != locked and real_access(path, mode))
    import revnets.inference.inferer as inferer

    def no_computing(*args, **kwargs):
        raise AssertionError("computed before the output folder was checked")

    monkeypatch.setattr(inferer.SamplingInferer, "__call__", no_computing)
    err = _error(capsys, _predict(bundle, _scan(tmp_path / "a.nii.gz"), "--output", locked / "out"))
    assert f"permission denied: cannot write in {locked}" in err
    assert list(locked.iterdir()) == []


def test_a_full_disk_removes_what_this_run_wrote(bundle: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    real_link = os.link
    links: list[str] = []

    def link_until_full(source, target):
        links.append(str(target))
        if len(links) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(source, target)

    monkeypatch.setattr(files.os, "link", link_until_full)
    err = _error(capsys, _predict(bundle, _scan(tmp_path / "a.nii.gz"), "--output", tmp_path / "out"))
    assert "no space left on the device" in err and len(links) == 3
    assert not (tmp_path / "out").exists()


def test_an_existing_folder_keeps_only_what_it_had_after_a_full_disk(
    bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "link", full)
    assert _predict(bundle, _scan(tmp_path / "a.nii.gz"), "--output", out) == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# 6. Messages


def test_an_empty_output_is_an_error(bundle: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        _predict(bundle, _scan(tmp_path / "a.nii.gz"), "--output", "")
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.startswith("revnets: error: argument --output") and "\n" not in err


def test_a_successful_run_prints_no_warnings_or_nibabel_remarks(bundle: Path, tmp_path: Path, capfd) -> None:
    image = nib.Nifti1Image(_volume(), None)
    image.header.set_qform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    scan = tmp_path / "odd.nii"
    nib.save(image, scan)
    raw = bytearray(scan.read_bytes())
    struct.pack_into("<f", raw, 80, -2.0)  # a negative voxel size: nibabel remarks on it when reading
    scan.write_bytes(bytes(raw))
    assert _predict(bundle, scan, "--output", tmp_path / "out") == 0
    assert capfd.readouterr().err == ""


def test_an_affine_mismatch_between_brats_modalities_names_the_file(tmp_path: Path, capsys) -> None:
    bundle = make_tiny_bundle(tmp_path, in_channels=4)
    case = tmp_path / "case"
    for modality in MODALITIES:
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        if modality == "t2":
            affine[0, 3] = 5.0
        _scan(case / f"case_{modality}.nii.gz", affine=affine)
    err = _error(capsys, _predict(bundle, case, "--output", tmp_path / "out"))
    assert "case_t2.nii.gz has a different affine" in err


def test_an_unreadable_file_says_permission_denied(bundle: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    scan = _scan(tmp_path / "a.nii.gz")

    def denied(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(files.nib, "load", denied)
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))
    assert "a.nii.gz: permission denied" in err


def test_a_truncated_compressed_file_says_so(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "a.nii.gz")
    scan.write_bytes(scan.read_bytes()[: len(scan.read_bytes()) // 2])
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))
    assert "a.nii.gz is truncated or damaged" in err


def test_a_header_larger_than_the_data_says_so(bundle: Path, tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "a.nii")
    scan.write_bytes(scan.read_bytes()[:2000])
    err = _error(capsys, _predict(bundle, scan, "--output", tmp_path / "out"))
    assert "a.nii is truncated (or its header is wrong): the header describes 23392 bytes" in err  # 352 + 20*18*16*4
    assert "the file holds 2000" in err


def test_an_rgb_file_says_so(bundle: Path, tmp_path: Path, capsys) -> None:
    rgb = np.zeros((6, 6, 6), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    path = tmp_path / "colour.nii.gz"
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), path)
    err = _error(capsys, _predict(bundle, path, "--output", tmp_path / "out"))
    assert "colour.nii.gz holds RGB colour voxels" in err


def test_a_gzip_file_whose_recorded_size_is_not_the_data_size_is_still_read(tmp_path: Path) -> None:
    plain = _scan(tmp_path / "a.nii")
    packed = tmp_path / "b.nii.gz"
    with gzip.open(packed, "wb") as stream:  # two gzip members: the trailer records only the last one's size
        data = plain.read_bytes()
        stream.write(data[:1000])
    with gzip.open(packed, "ab") as stream:
        stream.write(data[1000:])
    assert files.open_nifti(packed).shape == (20, 18, 16)


# revnets overlay


def test_overlay_refuses_a_nan_map_and_a_folder_as_output(tmp_path: Path, capsys) -> None:
    scan = _scan(tmp_path / "scan.nii.gz")
    nan_map = np.zeros((20, 18, 16), np.float32)
    nan_map[3, 3, 3] = np.nan
    uncertainty = _scan(tmp_path / "scan_entropy.nii.gz", nan_map)
    err = _error(capsys, main(["overlay", str(scan), str(uncertainty), "--output", str(tmp_path / "o.png")]))
    assert "scan_entropy.nii.gz contains NaN or infinite values" in err
    assert not (tmp_path / "o.png").exists()
    folder = tmp_path / "folder.png"
    folder.mkdir()
    clean = _scan(tmp_path / "clean_entropy.nii.gz", np.ones((20, 18, 16), np.float32))
    for extra in ([], ["--overwrite"]):
        err = _error(capsys, main(["overlay", str(scan), str(clean), "--output", str(folder), *extra]))
        assert "folder.png is a folder, not a file" in err
