"""``revnets.files.OutputUnit``: all or none, existence checked at the rename, inputs never replaced."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from revnets import files
from revnets.files import (
    OutputConflictError,
    OutputExistsError,
    OutputNotWritableError,
    OutputUnit,
    OutputWriteError,
    ProtectedOutputError,
    atomic_output,
    refuse_shared_targets,
)

NAMES = ("seg", "samples", "entropy", "mutual_info", "variance")


def _targets(folder: Path, stem: str = "case") -> dict[str, Path]:
    return {name: folder / f"{stem}_{name}.nii.gz" for name in NAMES}


def _write_all(unit: OutputUnit, text: str = "new") -> None:
    for name in unit.targets:
        unit.path(name).write_text(f"{text} {name}")


def _everything(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_unit_writes_all_its_files_and_leaves_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b"
    with OutputUnit(_targets(out)) as unit:
        _write_all(unit)
        assert not list(out.rglob("*.nii.gz")), "partial files must not match *.nii.gz, even recursively"
        assert unit.path("seg").parent.name.startswith(".")
    assert _everything(out) == sorted(f"case_{name}.nii.gz" for name in NAMES)
    assert (out / "case_seg.nii.gz").read_text() == "new seg"


def test_files_get_the_permissions_of_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "x.txt") as temporary:
            temporary.write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o644


def test_an_exception_keeps_nothing_and_removes_the_folder_it_made(tmp_path: Path) -> None:
    out = tmp_path / "made" / "here"
    with pytest.raises(KeyboardInterrupt):
        with OutputUnit(_targets(out)) as unit:
            unit.path("seg").write_text("half")
            raise KeyboardInterrupt
    assert _everything(tmp_path) == []


def test_a_folder_that_existed_is_kept_after_a_failure(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with OutputUnit(_targets(tmp_path)) as unit:
            raise RuntimeError("boom")
    assert _everything(tmp_path) == ["other.txt"]
    assert unit.targets  # the unit object stays usable for inspection


def test_existing_outputs_are_refused_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "case_entropy.nii.gz").write_text("old")
    unit = OutputUnit(_targets(tmp_path))
    with pytest.raises(OutputExistsError, match="case_entropy.nii.gz exists"):
        unit.check()
    with pytest.raises(OutputExistsError):
        with unit:
            pytest.fail("the block must not run")
    assert _everything(tmp_path) == ["case_entropy.nii.gz"]


def test_a_file_written_meanwhile_by_another_run_is_not_replaced_and_nothing_of_this_unit_stays(
    tmp_path: Path,
) -> None:
    with pytest.raises(OutputExistsError, match="meanwhile"):
        with OutputUnit(_targets(tmp_path)) as unit:
            _write_all(unit)
            (tmp_path / "case_mutual_info.nii.gz").write_text("other run")  # after the early check
    assert _everything(tmp_path) == ["case_mutual_info.nii.gz"]
    assert (tmp_path / "case_mutual_info.nii.gz").read_text() == "other run"


def test_two_units_racing_for_the_same_names_one_wins_whole(tmp_path: Path) -> None:
    first, second = OutputUnit(_targets(tmp_path)), OutputUnit(_targets(tmp_path))
    with first, second:
        _write_all(first, "first")
        _write_all(second, "second")
        first.commit()
        with pytest.raises(OutputExistsError):
            second.commit()
    assert {p.read_text().split()[0] for p in tmp_path.glob("*.nii.gz")} == {"first"}
    assert len(_everything(tmp_path)) == len(NAMES)


def test_overwrite_replaces_and_a_failed_overwrite_restores_the_old_files(tmp_path: Path, monkeypatch) -> None:
    for path in _targets(tmp_path).values():
        path.write_text("old")
    with OutputUnit(_targets(tmp_path), overwrite=True) as unit:
        _write_all(unit, "new")
    assert {p.read_text().split()[0] for p in tmp_path.glob("*.nii.gz")} == {"new"}

    real_replace = os.replace
    calls = []

    def replace_until_full(src, dst):
        calls.append(dst)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    with pytest.raises(OutputWriteError, match="no space left"):
        with OutputUnit(_targets(tmp_path), overwrite=True) as unit:
            _write_all(unit, "newer")
            monkeypatch.setattr(files.os, "replace", replace_until_full)
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert {p.read_text().split()[0] for p in tmp_path.glob("*.nii.gz")} == {"new"}
    assert len(_everything(tmp_path)) == len(NAMES)


def test_disk_full_while_moving_into_place_removes_what_this_run_moved(tmp_path: Path, monkeypatch) -> None:
    real_link = os.link
    calls = []

    def link_until_full(src, dst):
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_link(src, dst)

    monkeypatch.setattr(files.os, "link", link_until_full)
    with pytest.raises(OutputWriteError, match="no space left on the device"):
        with OutputUnit(_targets(tmp_path / "out")) as unit:
            _write_all(unit)
    assert len(calls) == 4
    assert _everything(tmp_path) == []


def test_disk_full_while_writing_removes_everything(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("keep")
    with pytest.raises(OutputWriteError, match="nothing of this output was kept"):
        with OutputUnit(_targets(tmp_path)) as unit:
            unit.path("seg").write_text("part")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert _everything(tmp_path) == ["keep.txt"]


def test_without_hard_links_an_exclusive_placeholder_still_refuses_an_existing_file(
    tmp_path: Path, monkeypatch
) -> None:
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    with OutputUnit(_targets(tmp_path)) as unit:
        _write_all(unit)
    assert len(list(tmp_path.glob("*.nii.gz"))) == len(NAMES)
    with pytest.raises(OutputExistsError, match="meanwhile"):
        with OutputUnit(_targets(tmp_path / "b")) as unit:
            _write_all(unit)
            (tmp_path / "b" / "case_variance.nii.gz").write_text("other run")
    assert _everything(tmp_path / "b") == ["case_variance.nii.gz"]


def test_protected_files_are_never_replaced_even_with_overwrite(tmp_path: Path) -> None:
    case = tmp_path / "case"
    case.mkdir()
    truth = case / "case_seg.nii.gz"
    truth.write_text("ground truth")
    unit = OutputUnit(_targets(case), protected=[truth], overwrite=True)
    with pytest.raises(ProtectedOutputError, match="case_seg.nii.gz would replace an input"):
        unit.check()
    assert truth.read_text() == "ground truth"


def test_a_protected_file_reached_through_a_hard_link_is_recognised(tmp_path: Path) -> None:
    scan = tmp_path / "scan.nii.gz"
    scan.write_text("scan")
    os.link(scan, tmp_path / "case_seg.nii.gz")
    with pytest.raises(ProtectedOutputError):
        OutputUnit(_targets(tmp_path), protected=[scan], overwrite=True).check()


def test_a_file_in_the_way_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OutputNotWritableError, match="is a file, not a folder"):
        OutputUnit(_targets(tmp_path / "out" / "deeper")).check()


def test_an_unwritable_folder_is_refused_on_entering(tmp_path: Path, monkeypatch) -> None:
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkdtemp", denied)
    with pytest.raises(OutputNotWritableError, match="permission denied"):
        with OutputUnit(_targets(tmp_path / "new")):
            pytest.fail("the block must not run")
    assert _everything(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_folder_is_refused_by_the_check(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(OutputNotWritableError, match="permission denied"):
            OutputUnit(_targets(tmp_path / "out")).check()
    finally:
        tmp_path.chmod(0o700)


def test_units_of_two_inputs_with_the_same_names_are_refused(tmp_path: Path) -> None:
    units = {
        "sub-01/T1.nii.gz": OutputUnit(_targets(tmp_path, "T1")),
        "sub-02/T1.nii.gz": OutputUnit(_targets(tmp_path, "T1")),
    }
    with pytest.raises(OutputConflictError, match="sub-01/T1.nii.gz and sub-02/T1.nii.gz would both write"):
        refuse_shared_targets(units)
    refuse_shared_targets({"a": OutputUnit(_targets(tmp_path, "a")), "b": OutputUnit(_targets(tmp_path, "b"))})


def test_without_hard_links_a_failed_overwrite_still_restores_the_old_file(tmp_path: Path, monkeypatch) -> None:
    for path in _targets(tmp_path).values():
        path.write_text("old")

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    real_replace = os.replace

    def replace_failing_into_place(src, dst):
        if Path(src).name.endswith(files.PARTIAL_SUFFIX) and Path(dst).name == "case_entropy.nii.gz":
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    with pytest.raises(OutputWriteError, match="could not write"):
        with OutputUnit(_targets(tmp_path), overwrite=True) as unit:
            _write_all(unit, "new")
            monkeypatch.setattr(files.os, "link", no_links)
            monkeypatch.setattr(files.os, "replace", replace_failing_into_place)
    assert {p.read_text() for p in tmp_path.glob("*.nii.gz")} == {"old"}
    assert len(_everything(tmp_path)) == len(NAMES)
