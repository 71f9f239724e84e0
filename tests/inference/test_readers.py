"""Scans as clinicians have them: DICOM series, NRRD and MetaImage read like the NIfTI of the same volume, with
their physical geometry kept in the NIfTI outputs; bad DICOM refused with one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from monai.transforms import LoadImage
from scipy import ndimage

from revnets.cli import main
from revnets.inference import Predictor
from revnets.inference.scans import find_scan
from revnets.io import DicomSeriesError, ScanReader, find_dicom_series, scan_header, write_dicom_series
from tests.inference.dicom_files import AFFINE, SHAPE, ct_volume, write_structured_report
from tests.tiny_bundle import make_tiny_bundle


def _nifti(tmp_path: Path, volume: np.ndarray) -> Path:
    path = tmp_path / "volume.nii.gz"
    nib.save(nib.Nifti1Image(volume, AFFINE), path)
    return path


def _itk_copy(nifti: Path, suffix: str) -> Path:
    path = nifti.with_name(f"volume_{suffix[1:]}{suffix}")
    sitk.WriteImage(sitk.ReadImage(str(nifti)), str(path))
    return path


@pytest.fixture
def series(tmp_path: Path) -> Path:
    """A CT series whose file names run against the slice order (sorting must use positions)."""
    folder = tmp_path / "series"
    for k, path in enumerate(write_dicom_series(ct_volume(), AFFINE, folder, rescale_slope=2.0)):
        path.rename(folder / f"image_{SHAPE[2] - k:03d}.dcm")
    return folder


def _load(loader_input: str | list[str]) -> tuple[np.ndarray, np.ndarray]:
    image = LoadImage(reader="revnets.io.ScanReader", image_only=True)(loader_input)
    return image.numpy(), np.asarray(image.affine)


def test_dicom_series_reads_in_hounsfield_units_sorted_by_position(series: Path) -> None:
    header = scan_header(series)
    assert header.shape == SHAPE and header.channels == 1 and np.allclose(header.affine, AFFINE)
    for loader_input in (header.loader_input, str(series)):
        voxels, affine = _load(loader_input)
        assert np.array_equal(voxels, ct_volume()), "slope 2 and intercept -1024 applied, slices in order"
        assert np.allclose(affine, AFFINE)


@pytest.mark.parametrize("suffix", [".nrrd", ".mha"])
def test_nrrd_and_metaimage_read_like_the_nifti(tmp_path: Path, suffix: str) -> None:
    path = _itk_copy(_nifti(tmp_path, ct_volume()), suffix)
    header = scan_header(path)
    assert header.shape == SHAPE and np.allclose(header.affine, AFFINE)
    voxels, affine = _load(str(path))
    assert np.array_equal(voxels, ct_volume()) and np.allclose(affine, AFFINE)


def test_scan_reader_leaves_nifti_to_monai(tmp_path: Path) -> None:
    assert not ScanReader().verify_suffix(str(_nifti(tmp_path, ct_volume())))


def test_reference_of_a_dicom_input_has_the_geometry_sitk_reads(series: Path) -> None:
    scan = find_scan(series, in_channels=1)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(series)))
    truth = reader.Execute()
    written = series.parent / "reference.nii.gz"
    reference = scan.reference
    nib.save(nib.Nifti1Image(np.zeros(reference.shape, np.uint8), reference.affine, reference.header), written)
    image = sitk.ReadImage(str(written))
    assert image.GetSize() == truth.GetSize()
    assert np.allclose(image.GetOrigin(), truth.GetOrigin(), atol=1e-4)
    assert np.allclose(image.GetSpacing(), truth.GetSpacing(), atol=1e-5)
    assert np.allclose(image.GetDirection(), truth.GetDirection(), atol=1e-6)
    assert scan.stem == "series" and len(scan.files) == SHAPE[2]


def test_two_series_need_a_choice_and_the_choice_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_dicom_series(ct_volume(0), AFFINE, folder, series_uid="1.2.3.1", prefix="a")
    write_dicom_series(ct_volume(1), AFFINE, folder, series_uid="1.2.3.2", prefix="b")
    with pytest.raises(DicomSeriesError, match=r"holds 2 DICOM image series.*1\.2\.3\.1 \(7 files\); 1\.2\.3\.2"):
        find_dicom_series(folder)
    assert find_dicom_series(folder, "1.2.3.2").files[0].name == "b_0000.dcm"
    voxels, _ = _load(scan_header(folder, "1.2.3.2").loader_input)
    assert np.array_equal(voxels, ct_volume(1))
    voxels, _ = _load(str(folder / "a_0003.dcm"))  # one file: its own series
    assert np.array_equal(voxels, ct_volume(0))
    with pytest.raises(DicomSeriesError, match="has no DICOM series 9.9"):
        find_dicom_series(folder, "9.9")


def test_missing_slice_is_named(series: Path) -> None:
    (series / "image_004.dcm").unlink()
    message = r"about 1 slice\(s\) missing: the step between .* is 5 mm where the others are 2.5 mm"
    with pytest.raises(DicomSeriesError, match=message):
        find_dicom_series(series)


def test_irregular_spacing_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "irregular"
    write_dicom_series(ct_volume()[:, :, :4], AFFINE, folder, series_uid="1.2.3.4")
    shifted = AFFINE.copy()
    shifted[2, 3] += 4 * 2.5 + 0.7  # the next slices start 0.7 mm late
    write_dicom_series(ct_volume()[:, :, 4:], shifted, folder, series_uid="1.2.3.4", prefix="upper")
    with pytest.raises(DicomSeriesError, match="irregular slice spacing"):
        find_dicom_series(folder)


def test_gantry_tilt_is_refused(tmp_path: Path) -> None:
    tilted = AFFINE.copy()
    tilted[1, 2] = 2.5 * np.tan(np.radians(15))  # each slice shifted along Y: sheared, as a tilted gantry gives
    write_dicom_series(ct_volume(), tilted, tmp_path / "tilted")
    with pytest.raises(DicomSeriesError, match=r"gantry tilt \(15.0 degrees\)"):
        find_dicom_series(tmp_path / "tilted")


def test_doubled_slice_is_refused(series: Path) -> None:
    shutil.copy(series / "image_003.dcm", series / "copy.dcm")
    with pytest.raises(DicomSeriesError, match="two slices at the same position"):
        find_dicom_series(series)


def test_non_image_objects_are_skipped_or_named(series: Path, tmp_path: Path) -> None:
    write_structured_report(series / "report.dcm", series_uid="1.2.3.99")
    (series / "README.txt").write_text("not DICOM")
    assert len(find_dicom_series(series).files) == SHAPE[2]  # the report is not an image series: ignored
    with pytest.raises(DicomSeriesError, match=r"not an image series: report.dcm is not an image \(Basic Text SR\)"):
        find_dicom_series(series, "1.2.3.99")
    only = tmp_path / "reports"
    only.mkdir()
    write_structured_report(only / "report.dcm", series_uid="1.2.3.99")
    with pytest.raises(DicomSeriesError, match=r"no DICOM image series, only non-image objects \(Basic Text SR\)"):
        find_dicom_series(only)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DicomSeriesError, match="holds no DICOM files"):
        find_dicom_series(empty)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


def test_dicom_nrrd_and_metaimage_give_the_outputs_of_the_nifti_in_the_input_space(
    bundle: Path, tmp_path: Path
) -> None:
    volume = ndimage.gaussian_filter(ct_volume(2, shape=(56, 48, 14)), 2.0).round()
    nifti = _nifti(tmp_path, volume)
    inputs = [nifti, _itk_copy(nifti, ".nrrd"), _itk_copy(nifti, ".mha")]
    inputs.append(tmp_path / "dicom")
    write_dicom_series(volume, AFFINE, inputs[-1])
    predictor = Predictor.from_bundle(bundle, device="cpu", trust=True)
    written = predictor.predict(inputs, tmp_path / "out", num_samples=2, seed=3, progress=False)
    stems = ("volume", "volume_nrrd", "volume_mha", "dicom")
    assert [files["seg"].name for files in written] == [f"{stem}_seg.nii.gz" for stem in stems]
    geometry = sitk.ReadImage(str(nifti))
    for files in written:
        for name, path in files.items():
            expected = nib.load(written[0][name]).get_fdata()
            assert np.array_equal(nib.load(path).get_fdata(), expected), (path, name)
            output = sitk.ReadImage(str(path))
            assert output.GetSize()[:3] == geometry.GetSize()
            assert np.allclose(output.GetOrigin()[:3], geometry.GetOrigin(), atol=1e-4)
            assert np.allclose(output.GetSpacing()[:3], geometry.GetSpacing(), atol=1e-6)
            assert np.allclose(np.reshape(output.GetDirection(), (output.GetDimension(),) * 2)[:3, :3].ravel(),
                               geometry.GetDirection(), atol=1e-6)


def test_cli_chooses_a_series_and_names_the_choice_when_missing(bundle: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "study"
    volume = ndimage.gaussian_filter(ct_volume(4, shape=(40, 32, 10)), 2.0).round()
    write_dicom_series(volume, AFFINE, folder, series_uid="1.2.3.1", prefix="a")
    write_dicom_series(volume[::-1].copy(), AFFINE, folder, series_uid="1.2.3.2", prefix="b")
    command = ["predict", str(folder), "--bundle", str(bundle), "--trust-bundle", "--samples", "1", "--device", "cpu",
               "--progress", "none", "--output"]
    assert main([*command, str(tmp_path / "none")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("revnets: error: ") and "2 DICOM image series" in error and "\n" not in error
    assert main([*command, str(tmp_path / "out"), "--series", "1.2.3.2"]) == 0
    assert (tmp_path / "out" / "study_seg.nii.gz").is_file()


def test_writing_a_dicom_series_leaves_the_locale_and_the_text_encoding_as_they_were(tmp_path: Path) -> None:
    import locale

    before = locale.setlocale(locale.LC_ALL), locale.getpreferredencoding(False)
    write_dicom_series(ct_volume(), AFFINE, tmp_path / "series")
    assert (locale.setlocale(locale.LC_ALL), locale.getpreferredencoding(False)) == before
