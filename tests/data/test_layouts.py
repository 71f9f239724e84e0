"""Dataset layouts on tiny files in their real formats: BraTS, Decathlon, multi-rater folders, LIDC pickle."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

import revnets.data.example
from revnets.data import (
    MODALITIES,
    BratsLoadd,
    DataError,
    LIDCDataset,
    LoadAlignedImaged,
    brats_datalist,
    decathlon_datalist,
    load_lidc_pickle,
    multirater_datalist,
)
from revnets.inference.regions import BRATS_CLASS_LABELS, nested_regions_to_classes

SHAPE = (8, 8, 8)
AFFINE = np.diag([1.0, 1.0, 1.0, 1.0])


def _save(path: Path, array: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


def _brats_label() -> np.ndarray:
    label = np.zeros(SHAPE, np.uint8)
    label[2:6, 2:6, 2:6] = 2
    label[3:5, 3:5, 3:5] = 4
    label[3, 3, 3] = 1
    return label


def _write_brats_case(root: Path, name: str, labelled: bool = True, suffix: str = ".nii.gz") -> Path:
    for channel, modality in enumerate(MODALITIES):
        _save(root / name / f"{name}_{modality}{suffix}", np.full(SHAPE, channel + 1, np.float32))
    if labelled:
        _save(root / name / f"{name}_seg{suffix}", _brats_label())
    return root / name


@pytest.fixture
def brats_root(tmp_path: Path) -> Path:
    root = tmp_path / "BraTS2021"
    _write_brats_case(root, "BraTS2021_00002", labelled=False, suffix=".nii")
    _write_brats_case(root, "BraTS2021_00001")
    (root / "name_mapping.csv").write_text("BraTS_2021_subject_ID\n")
    return root


# BraTS


def test_brats_datalist_lists_modalities_in_channel_order_and_labels_where_present(brats_root: Path) -> None:
    items = brats_datalist(brats_root)
    assert [item["case"] for item in items] == ["BraTS2021_00001", "BraTS2021_00002"]
    first, unlabelled = items
    assert first["image"] == [str(brats_root / "BraTS2021_00001" / f"BraTS2021_00001_{m}.nii.gz") for m in MODALITIES]
    assert first["label"] == str(brats_root / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz")
    assert "label" not in unlabelled and unlabelled["image"][3].endswith("BraTS2021_00002_flair.nii")


def test_brats_datalist_requiring_labels_names_the_unlabelled_case(brats_root: Path) -> None:
    with pytest.raises(DataError, match="BraTS2021_00002_seg"):
        brats_datalist(brats_root, require_labels=True)


def test_brats_datalist_names_a_missing_modality(brats_root: Path) -> None:
    (brats_root / "BraTS2021_00001" / "BraTS2021_00001_t1ce.nii.gz").unlink()
    with pytest.raises(DataError, match="BraTS2021_00001_t1ce"):
        brats_datalist(brats_root)


def test_brats_datalist_rejects_a_missing_or_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such BraTS dataset folder"):
        brats_datalist(tmp_path / "absent")
    with pytest.raises(DataError, match="has no case folders"):
        brats_datalist(tmp_path)


def test_brats_loadd_stacks_modalities_and_gives_regions_that_inference_inverts(brats_root: Path) -> None:
    data = BratsLoadd()(brats_datalist(brats_root)[0])
    image, regions = data["image"], data["label"]
    assert image.shape == (4, *SHAPE) and image.dtype == torch.float32
    assert [float(image[c].mean()) for c in range(4)] == [1.0, 2.0, 3.0, 4.0]
    assert regions.shape == (3, *SHAPE)
    label = torch.from_numpy(_brats_label())
    tc, wt, et = regions.as_tensor()
    assert torch.equal(tc, (label == 1) | (label == 4))
    assert torch.equal(wt, label > 0) and torch.equal(et, label == 4)
    classes = nested_regions_to_classes(regions.float()[None, None]).argmax(dim=2)[0, 0]
    assert torch.equal(torch.tensor(BRATS_CLASS_LABELS)[classes], label.long())


def test_brats_loadd_loads_an_unlabelled_case_when_labels_may_be_missing(brats_root: Path) -> None:
    data = BratsLoadd(allow_missing_keys=True)(brats_datalist(brats_root)[1])
    assert data["image"].shape == (4, *SHAPE) and "label" not in data


def _truncate(path: Path) -> None:
    """Cut a noisy volume's .nii.gz in half: the header still reads, the voxel data ends early."""
    _save(path, np.random.default_rng(0).random(SHAPE).astype(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _write_text(path: Path) -> None:
    path.write_text("not an image\n")


def _reshape(path: Path) -> None:
    _save(path, np.zeros((8, 8, 6), np.float32))


def _shift_affine(path: Path) -> None:
    affine = AFFINE.copy()
    affine[0, 3] = 5.0
    _save(path, np.zeros(SHAPE, np.float32), affine)


def _stray_labels(path: Path) -> None:
    label = _brats_label()
    label[0, 0, :2] = (3, 7)
    _save(path, label)


@pytest.mark.parametrize(
    ("file", "damage", "reason"),
    [
        ("t1ce", _truncate, "not a readable image"),
        ("t1", _write_text, "not a readable image"),
        ("seg", _write_text, "not a readable image"),
        ("t2", _reshape, r"spatial shape \(8, 8, 6\)"),
        ("seg", _reshape, r"spatial shape \(8, 8, 6\)"),
        ("flair", _shift_affine, "different affine"),
        ("seg", _stray_labels, r"label values \{3, 7\} outside"),
    ],
    ids=["truncated-gzip", "text-as-nifti", "text-as-label", "shape", "label-shape", "affine", "label-values"],
)
def test_brats_loadd_names_the_bad_file(
    brats_root: Path, file: str, damage: Callable[[Path], None], reason: str
) -> None:
    damage(brats_root / "BraTS2021_00001" / f"BraTS2021_00001_{file}.nii.gz")
    with pytest.raises(DataError, match=f"BraTS2021_00001_{file}.nii.gz.*{reason}"):
        BratsLoadd()(brats_datalist(brats_root)[0])


def test_brats_loadd_takes_label_3_as_enhancing_for_brats_2023(brats_root: Path) -> None:
    seg = brats_root / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz"
    _save(seg, np.where(_brats_label() == 4, 3, _brats_label()).astype(np.uint8))
    item = brats_datalist(brats_root)[0]
    with pytest.raises(DataError, match=r"label values \{3\}"):
        BratsLoadd()(item)
    regions = BratsLoadd(et_label=3)(item)["label"]
    assert torch.equal(regions[2].as_tensor(), torch.from_numpy(_brats_label() == 4))


# Medical Segmentation Decathlon


@pytest.fixture
def decathlon_root(tmp_path: Path) -> Path:
    root = tmp_path / "Task04_Hippocampus"
    for name in ("hippocampus_001", "hippocampus_003"):
        _save(root / "imagesTr" / f"{name}.nii.gz", np.zeros(SHAPE, np.float32))
        _save(root / "labelsTr" / f"{name}.nii.gz", np.zeros(SHAPE, np.uint8))
    _save(root / "imagesTs" / "hippocampus_002.nii.gz", np.zeros(SHAPE, np.float32))
    index = {
        "name": "Hippocampus",
        "labels": {"0": "background", "1": "Anterior", "2": "Posterior"},
        "numTraining": 2,
        "numTest": 1,
        "training": [
            {"image": f"./imagesTr/{n}.nii.gz", "label": f"./labelsTr/{n}.nii.gz"}
            for n in ("hippocampus_001", "hippocampus_003")
        ],
        "test": ["./imagesTs/hippocampus_002.nii.gz"],
    }
    (root / "dataset.json").write_text(json.dumps(index))
    return root


def test_decathlon_datalist_resolves_paths_from_dataset_json(decathlon_root: Path) -> None:
    training = decathlon_datalist(decathlon_root)
    assert [item["case"] for item in training] == ["hippocampus_001", "hippocampus_003"]
    assert Path(training[1]["label"]).samefile(decathlon_root / "labelsTr" / "hippocampus_003.nii.gz")
    test = decathlon_datalist(decathlon_root, section="test")
    assert len(test) == 1 and "label" not in test[0]
    assert Path(test[0]["image"]).samefile(decathlon_root / "imagesTs" / "hippocampus_002.nii.gz")


def test_decathlon_datalist_errors_name_the_problem(decathlon_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has no dataset.json"):
        decathlon_datalist(tmp_path)
    with pytest.raises(DataError, match="dataset.json cannot be read.*validation"):
        decathlon_datalist(decathlon_root, section="validation")
    (decathlon_root / "labelsTr" / "hippocampus_003.nii.gz").unlink()
    with pytest.raises(DataError, match="labelsTr/hippocampus_003.nii.gz, which does not exist"):
        decathlon_datalist(decathlon_root)
    (decathlon_root / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match="dataset.json cannot be read"):
        decathlon_datalist(decathlon_root)


# Generic multi-rater folder


@pytest.fixture
def multirater_root(tmp_path: Path) -> Path:
    case = tmp_path / "raters" / "subject_a"
    _save(case / "image.nii.gz", np.zeros(SHAPE, np.float32))
    for k in (0, 1, 10):
        _save(case / f"label_rater{k}.nii.gz", np.full(SHAPE, k, np.uint8))
    (case / "notes.txt").write_text("raters 0, 1 and 10")
    return tmp_path / "raters"


def test_multirater_datalist_orders_raters_by_number_and_loads_them_as_channels(multirater_root: Path) -> None:
    (item,) = multirater_datalist(multirater_root)
    assert item["case"] == "subject_a" and item["image"].endswith("image.nii.gz")
    assert [Path(p).name for p in item["label"]] == [f"label_rater{k}.nii.gz" for k in (0, 1, 10)]
    data = LoadAlignedImaged(keys=("image", "label"))(item)
    assert data["image"].shape == (1, *SHAPE) and data["label"].shape == (3, *SHAPE)
    assert data["label"].amax(dim=(1, 2, 3)).tolist() == [0, 1, 10]


def test_multirater_case_without_labels_is_named(multirater_root: Path) -> None:
    for rater in (multirater_root / "subject_a").glob("label_rater*"):
        rater.unlink()
    with pytest.raises(DataError, match="subject_a has no label_rater"):
        multirater_datalist(multirater_root)


def test_multirater_rater_of_another_shape_is_named(multirater_root: Path) -> None:
    _reshape(multirater_root / "subject_a" / "label_rater1.nii.gz")
    with pytest.raises(DataError, match=r"label_rater1.nii.gz has spatial shape \(8, 8, 6\), but .*image.nii.gz"):
        LoadAlignedImaged(keys=("image", "label"))(multirater_datalist(multirater_root)[0])


# LIDC as prepared for PHiSeg (data_lidc.pickle)


def _lidc_slices(size: int = 16) -> dict:
    rng = np.random.default_rng(0)
    slices = {}
    for number, series in ((12, "1.3.6.1.4.1.14519.5.2.1.6279.6001.1"), (3, "1.3.6.1.4.1.14519.5.2.1.6279.6001.2")):
        masks = [(rng.random((size, size)) > 0.5).astype(np.uint8) for _ in range(4)]
        image = rng.random((size, size)).astype(np.float32)
        slices[f"LIDC-IDRI-{number:04d}_slice_{number}"] = {"image": image, "masks": masks, "series_uid": series}
    return slices


def _write_pickle(path: Path, data: object, legacy_numpy: bool = False) -> Path:
    """Write ``data`` as a pickle; ``legacy_numpy`` names numpy's modules as numpy 1.x pickles did."""
    raw = pickle.dumps(data, protocol=2 if legacy_numpy else 5)
    path.write_bytes(raw.replace(b"numpy._core.", b"numpy.core.") if legacy_numpy else raw)
    return path


@pytest.mark.parametrize("legacy_numpy", [True, False], ids=["numpy1-protocol2", "protocol5"])
def test_lidc_dataset_gives_image_and_annotator_masks(tmp_path: Path, legacy_numpy: bool) -> None:
    slices = _lidc_slices()
    dataset = LIDCDataset(_write_pickle(tmp_path / "data_lidc.pickle", slices, legacy_numpy))
    assert len(dataset) == 2
    item = dataset[1]
    source = slices["LIDC-IDRI-0012_slice_12"]
    assert item["case"] == "LIDC-IDRI-0012_slice_12" and item["series_uid"] == source["series_uid"]
    assert item["image"].shape == (1, 16, 16) and item["image"].dtype == torch.float32
    assert item["label"].shape == (4, 16, 16) and item["label"].dtype == torch.uint8
    assert np.array_equal(item["image"][0].numpy(), source["image"])
    assert np.array_equal(item["label"].numpy(), np.stack(source["masks"]))


class _RunsCode:
    """An object whose unpickling would create a folder (what a tampered pickle could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.mkdir, (str(self.marker),)


def _corrupt(slices: dict, change: str, marker: Path) -> object:
    entry = slices["LIDC-IDRI-0003_slice_3"]
    if change == "list":
        return list(slices.values())
    if change == "no-masks":
        del entry["masks"]
    if change == "mask-values":
        entry["masks"][2] = entry["masks"][2] * 3
    if change == "mask-shape":
        entry["masks"][0] = entry["masks"][0][:8]
    if change == "mask-count":
        entry["masks"] = entry["masks"][:3]
    if change == "code":
        entry["series_uid"] = _RunsCode(marker)
    return slices


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("list", "holds list, not a non-empty dict"),
        ("no-masks", "LIDC-IDRI-0003_slice_3' is not a dict with 'image', 'masks'"),
        ("mask-values", "masks must be binary"),
        ("mask-shape", r"image's shape \(16, 16\)"),
        ("mask-count", r"different numbers of annotator masks \[3, 4\]"),
        ("code", r"refers to \w+\.mkdir; only numpy arrays are allowed"),
    ],
)
def test_lidc_pickle_of_the_wrong_structure_is_refused(tmp_path: Path, change: str, reason: str) -> None:
    marker = tmp_path / "code_ran"
    path = _write_pickle(tmp_path / "data_lidc.pickle", _corrupt(_lidc_slices(), change, marker))
    with pytest.raises(DataError, match=f"data_lidc.pickle.*{reason}"):
        load_lidc_pickle(path)
    assert not marker.exists()


def test_lidc_non_pickle_and_truncated_pickle_are_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.pickle"
    text.write_text("patient list\n")
    with pytest.raises(DataError, match="notes.pickle is not a readable LIDC pickle"):
        load_lidc_pickle(text)
    whole = pickle.dumps(_lidc_slices(), protocol=5)
    cut = tmp_path / "cut.pickle"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="cut.pickle is not a readable LIDC pickle"):
        load_lidc_pickle(cut)
    packed = tmp_path / "data_lidc.pickle.gz"
    packed.write_bytes(gzip.compress(whole))
    with pytest.raises(DataError, match="data_lidc.pickle.gz is not a readable LIDC pickle"):
        load_lidc_pickle(packed)


# scripts/make_example_data.py


def _script():
    path = Path(__file__).parents[2] / "scripts" / "make_example_data.py"
    spec = importlib.util.spec_from_file_location("make_example_data", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_make_example_data_is_deterministic_readable_and_never_overwrites(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The template is read once for the whole test: each writer would otherwise load it again.
    monkeypatch.setattr(revnets.data.example, "mni_anatomy", functools.lru_cache(revnets.data.example.mni_anatomy))
    script = _script()
    arguments = ["--cases", "2", "--seed", "5", "--spacing", "8"]
    for run in ("a", "b", "other"):
        seed = ["--seed", "6"] if run == "other" else []
        assert script.main(["--output", str(tmp_path / run), *arguments, *seed]) == 0
    first, again, other = (_contents(tmp_path / run) for run in ("a", "b", "other"))
    assert first == again
    assert first["brats/phantom_001/phantom_001_seg.nii.gz"] != other["brats/phantom_001/phantom_001_seg.nii.gz"]
    cases = brats_datalist(tmp_path / "a" / "brats", require_labels=True)
    assert [case["case"] for case in cases] == ["phantom_000", "phantom_001"]
    assert BratsLoadd()(cases[0])["label"].shape[0] == 3
    (rated,) = multirater_datalist(tmp_path / "a" / "multi_rater")
    assert rated["case"] == "mni" and len(rated["label"]) == 4
    with pytest.raises(SystemExit) as refused:
        script.main(["--output", str(tmp_path / "a"), *arguments])
    assert refused.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert script.main(["--output", str(tmp_path / "a"), *arguments, "--overwrite"]) == 0
    assert _contents(tmp_path / "a") == first
