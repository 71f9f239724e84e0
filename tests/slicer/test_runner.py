"""The Slicer module's Lib against the real ``revnets predict`` command on small volumes, without Slicer:
success with progress, cancel, failures, and checking the outputs it collects."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from RevnetsSegmentationLib.outputs import OUTPUTS, OutputError, PredictionOutputs
from RevnetsSegmentationLib.runner import (
    PredictionRun,
    PredictRequest,
    Progress,
    RunCancelled,
    RunFailed,
    error_message,
    parse_progress,
)
from RevnetsSegmentationLib.workspace import Workspace

from tests.tiny_bundle import make_tiny_bundle

AFFINE = np.array([[-2.0, 0, 0, 20], [0, 2.0, 0, -25], [0, 0, 2.0, 5], [0, 0, 0, 1]])
TIMEOUT = 300.0


def _volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*(np.linspace(-1, 1, 24),) * 3, indexing="ij"))
    return ((np.linalg.norm(grid, axis=0) < 0.6) * 100.0 + rng.normal(0, 5, (24,) * 3)).astype(np.float32)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def finished(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One successful run on a 24^3 scan with 2 samples, and what its callbacks saw."""
    workspace = Workspace(tmp_path_factory.mktemp("runs"))
    scan = workspace.scan_path("head")
    nib.save(nib.Nifti1Image(_volume(), AFFINE), scan)
    seen: dict = {"progress": [], "log": [], "threads": set()}

    def on_progress(progress: Progress) -> None:
        seen["progress"].append(progress)
        seen["threads"].add(threading.current_thread())

    run = PredictionRun(
        PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", seed=1, trust=True),
        workspace,
        on_progress=on_progress,
        on_log=seen["log"].append,
    )
    run.start()
    outputs = run.wait(timeout=TIMEOUT)
    return dict(seen, run=run, outputs=outputs, workspace=workspace, scan=scan)


def test_run_reports_progress_in_the_polling_thread_and_collects_five_outputs(finished: dict) -> None:
    percents = [p.percent for p in finished["progress"]]
    assert percents and percents == sorted(percents) and percents[-1] == 100
    assert any(p.stage == "head: sampling" for p in finished["progress"])
    assert finished["threads"] == {threading.main_thread()}
    outputs: PredictionOutputs = finished["outputs"]
    assert finished["run"].returncode == 0
    assert outputs.stem == "head" and list(outputs.files) == list(OUTPUTS)
    assert all(path.parent == finished["workspace"].output_dir for path in outputs.files.values())
    assert sum(line.startswith("wrote ") for line in finished["log"]) == len(OUTPUTS)
    samples = nib.load(outputs.files["samples"])
    assert samples.shape == (24, 24, 24, 2) and np.allclose(samples.affine, AFFINE)


def test_samples_split_into_label_maps_in_the_scan_space(finished: dict, tmp_path: Path) -> None:
    outputs: PredictionOutputs = finished["outputs"]
    paths = outputs.split_samples(tmp_path / "samples")
    assert [p.name for p in paths] == ["head_sample1.nii.gz", "head_sample2.nii.gz"]
    stacked = np.asanyarray(nib.load(outputs.files["samples"]).dataobj)
    for k, path in enumerate(paths):
        image = nib.load(path)
        assert np.allclose(image.affine, AFFINE)
        assert np.array_equal(np.asanyarray(image.dataobj), stacked[..., k])


def test_export_copies_the_five_files_and_never_replaces_without_overwrite(finished: dict, tmp_path: Path) -> None:
    outputs: PredictionOutputs = finished["outputs"]
    copies = outputs.export(tmp_path / "export")
    assert sorted(p.name for p in copies) == sorted(f"head_{name}.nii.gz" for name in OUTPUTS)
    assert all(c.read_bytes() == s.read_bytes() for c, s in zip(copies, outputs.files.values()))
    with pytest.raises(OutputError, match="already holds head_seg.nii.gz"):
        outputs.export(tmp_path / "export")
    assert len(outputs.export(tmp_path / "export", overwrite=True)) == len(OUTPUTS)


def test_collect_rejects_missing_or_inconsistent_outputs(finished: dict) -> None:
    files = list(finished["outputs"].files.values())
    with pytest.raises(OutputError, match="did not write the outputs variance"):
        PredictionOutputs.collect(files[:-1], finished["scan"], num_samples=2)
    with pytest.raises(OutputError, match=r"head_samples.nii.gz has shape \(24, 24, 24, 2\), expected"):
        PredictionOutputs.collect(files, finished["scan"], num_samples=3)


def test_removing_the_workspace_deletes_every_file(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    nib.save(nib.Nifti1Image(_volume(), AFFINE), workspace.scan_path("x"))
    workspace.remove()
    assert not workspace.root.exists() and not list(tmp_path.iterdir())


def test_cancel_after_first_progress_ends_the_process_and_deletes_the_workspace(bundle: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    scan = workspace.scan_path("head")
    nib.save(nib.Nifti1Image(_volume(), AFFINE), scan)
    seen: list[Progress] = []
    request = PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", trust=True)
    run = PredictionRun(request, workspace, seen.append)
    run.start()
    while run.poll() and not seen:
        threading.Event().wait(0.05)
    assert seen, "the command ended before its first progress line"
    run.cancel(grace=10.0)
    while run.poll():
        threading.Event().wait(0.05)
    assert run.returncode is not None and run.returncode != 0
    assert run.finished and not run.poll()
    with pytest.raises(RunCancelled):
        run.result()
    assert not workspace.root.exists(), "a cancelled run must leave no files behind"
    assert not list(tmp_path.iterdir())


def test_bad_input_fails_with_the_commands_one_line_error(bundle: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    scan = workspace.scan_path("notes")
    scan.write_text("not an image")
    run = PredictionRun(PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", trust=True), workspace)
    run.start()
    with pytest.raises(RunFailed) as failure:
        run.wait(timeout=TIMEOUT)
    message = str(failure.value)
    assert "notes.nii.gz is not a readable NIfTI image" in message
    assert "\n" not in message and "Traceback" not in message and "revnets: error" not in message
    assert run.returncode == 2
    assert not workspace.root.exists()


def test_four_channels_are_stacked_and_segmented(tmp_path: Path) -> None:
    bundle = make_tiny_bundle(tmp_path, in_channels=4)
    workspace = Workspace(tmp_path)
    for k, path in enumerate(workspace.channel_paths("case", 4)):
        nib.save(nib.Nifti1Image(_volume(seed=k) * (k + 1), AFFINE), path)
    scan = workspace.stack_channels("case", 4)
    stacked = nib.load(scan)
    assert stacked.shape == (24, 24, 24, 4) and np.allclose(stacked.affine, AFFINE)
    assert np.allclose(np.asanyarray(stacked.dataobj)[..., 2], _volume(seed=2) * 3)
    assert not (workspace.input_dir / "channels").exists()
    outputs = PredictionRun(PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", trust=True), workspace)
    outputs.start()
    result = outputs.wait(timeout=TIMEOUT)
    assert nib.load(result.files["seg"]).shape == (24, 24, 24)
    workspace.remove()


def test_a_python_that_cannot_start_is_a_readable_failure(bundle: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    request = PredictRequest(scan=workspace.scan_path("x"), bundle=bundle, samples=1, python=str(tmp_path / "nopython"))
    with pytest.raises(RunFailed, match="nopython could not be started"):
        PredictionRun(request, workspace).start()
    assert not workspace.root.exists()


def test_request_is_an_argument_list_for_the_revnets_command(tmp_path: Path) -> None:
    request = PredictRequest(scan=Path("a b.nii.gz"), bundle=Path("bundles/x"), samples=4, device="cuda", seed=7)
    assert request.arguments(tmp_path) == [
        sys.executable, "-m", "revnets.cli", "predict", "a b.nii.gz", "--bundle", str(Path("bundles/x")),
        "--output", str(tmp_path), "--samples", "4", "--device", "cuda", "--seed", "7", "--progress", "lines",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PROGRESS 40 head: sampling", Progress(40, "head: sampling")),
        ("PROGRESS 100 head: writing\n", Progress(100, "head: writing")),
        ("wrote /tmp/head_seg.nii.gz", None),
        ("PROGRESS soon", None),
    ],
)
def test_progress_lines_are_parsed(line: str, expected: Progress | None) -> None:
    assert parse_progress(line) == expected


def test_error_message_prefers_the_commands_error_then_the_last_line() -> None:
    assert error_message(["warning: x", "revnets: error: scan.nii.gz: no such file.", ""], 2) == (
        "scan.nii.gz: no such file."
    )
    assert error_message(["usage: revnets predict ...", "revnets predict: error: argument --device: bad"], 2) == (
        "argument --device: bad"
    )
    traceback = ["Traceback (most recent call last):", '  File "x.py", line 1', "RuntimeError: out of memory"]
    assert error_message(traceback, 1) == "revnets predict stopped with exit code 1: RuntimeError: out of memory"
    assert error_message([], -9) == "revnets predict was ended by signal 9 without printing an error."


def _launcher(tmp_path: Path, child: str) -> Path:
    """A stand-in for Slicer's PythonSlicer: a shell that starts Python as its child and waits for it."""
    launcher = tmp_path / "PythonSlicer"
    launcher.write_text(f'#!/bin/sh\n"{sys.executable}" {child}\n')
    launcher.chmod(0o755)
    return launcher


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_cancel_stops_the_launchers_child_too(bundle: Path, tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    scan = workspace.scan_path("head")
    nib.save(nib.Nifti1Image(_volume(), AFFINE), scan)
    launcher = _launcher(tmp_path, '"$@"')
    seen: list[Progress] = []
    request = PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", python=str(launcher), trust=True)
    run = PredictionRun(request, workspace, seen.append)
    run.start()
    while run.poll() and not seen:
        threading.Event().wait(0.05)
    assert seen, "the command ended before its first progress line"
    (child,) = _children(run._process.pid)
    run.cancel(grace=10.0)
    while run.poll():
        threading.Event().wait(0.05)
    assert not _running(child), "the launcher's child (the real revnets process) is still running"
    with pytest.raises(RunCancelled):
        run.result()
    assert not workspace.root.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
def test_cancel_returns_at_once_and_kills_a_tree_that_ignores_the_request(tmp_path: Path) -> None:
    stubborn = (
        "-c \"import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('PROGRESS 1 head: waiting', flush=True); time.sleep(120)\""
    )
    workspace = Workspace(tmp_path)
    request = PredictRequest(scan=workspace.scan_path("head"), bundle=tmp_path, samples=1,
                             python=str(_launcher(tmp_path, stubborn)))
    seen: list[Progress] = []
    run = PredictionRun(request, workspace, seen.append)
    run.start()
    while run.poll() and not seen:
        threading.Event().wait(0.05)
    (child,) = _children(run._process.pid)
    run.cancel(grace=2.0)
    # The child ignores SIGTERM: it still runs, so cancel() did not wait for the tree to end.
    assert _running(child) and not run.finished
    while run.poll():
        threading.Event().wait(0.05)
    assert not _running(child), "the child was not killed after the grace period"
    with pytest.raises(RunCancelled):
        run.result()
    assert not workspace.root.exists()


def test_the_child_is_asked_for_utf8_whatever_the_environment(tmp_path: Path) -> None:
    request = PredictRequest(scan=Path("x.nii.gz"), bundle=tmp_path, samples=1, env={"LANG": "C", "PYTHONUTF8": "0"})
    env = request.environment()
    assert env["PYTHONUTF8"] == "1" and env["PYTHONIOENCODING"] == "utf-8" and env["LANG"] == "C"
    probe = "import sys; print(sys.flags.utf8_mode, sys.stdout.encoding, 'Gérard')"
    out = subprocess.run([sys.executable, "-c", probe], env={**env, "PATH": ""}, capture_output=True, check=True)
    assert out.stdout.decode("utf-8").split() == ["1", "utf-8", "Gérard"]


def test_a_non_ascii_folder_round_trips_through_the_command(bundle: Path, tmp_path: Path) -> None:
    parent = tmp_path / "Gérard Ünal"
    parent.mkdir()
    workspace = Workspace(parent)
    scan = workspace.scan_path("head")
    nib.save(nib.Nifti1Image(_volume(), AFFINE), scan)
    run = PredictionRun(PredictRequest(scan=scan, bundle=bundle, samples=2, device="cpu", trust=True), workspace)
    run.start()
    outputs = run.wait(timeout=TIMEOUT)
    assert all(path.is_file() and "Gérard Ünal" in str(path) for path in outputs.files.values())
    workspace.remove()


def test_trust_adds_the_flag_for_a_bundle_folder_the_user_agreed_to(tmp_path: Path) -> None:
    request = PredictRequest(scan=Path("a.nii.gz"), bundle=tmp_path, samples=1)
    assert "--trust-bundle" not in request.arguments(tmp_path)
    assert PredictRequest(scan=Path("a.nii.gz"), bundle=tmp_path, samples=1, trust=True).arguments(tmp_path)[-1] == (
        "--trust-bundle"
    )
