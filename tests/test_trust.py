"""Consent before a bundle's configs run: shipped bundles by digest, any other folder only when trusted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from revnets.bundles import BundleError, BundleNotFoundError, resolve_bundle, shipped_bundles, shipped_root
from revnets.cli import main
from revnets.inference import Predictor
from revnets.trust import (
    UntrustedBundleError,
    bundle_digests,
    manifest_path,
    manifest_text,
    read_manifest,
    require_trusted,
    shipped_name,
)
from tests.tiny_bundle import make_tiny_bundle

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("invres_brain_tissue", "revmbconv_brats", "revphiseg_brain_tissue")


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("revnets: error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_the_committed_manifest_matches_the_shipped_bundles() -> None:
    assert manifest_path().read_text() == manifest_text(shipped_bundles()), (
        "bundles/manifest.json is out of date: run scripts/update_bundle_manifest.py"
    )
    assert set(read_manifest()) == set(shipped_bundles()) >= set(SHIPPED)
    for name in read_manifest():
        assert {"configs/inference.json", "configs/metadata.json", "models/model.pt"} <= set(read_manifest()[name])


def test_the_manifest_script_checks_and_says_what_to_run() -> None:
    script = REPO / "scripts" / "update_bundle_manifest.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_shipped_bundles_are_found_by_name_and_trusted() -> None:
    assert shipped_root() == REPO / "bundles"
    for name in SHIPPED:
        folder = resolve_bundle(name)
        assert folder == REPO / "bundles" / name
        assert shipped_name(folder) == name
        require_trusted(folder)


def test_an_unknown_name_lists_the_shipped_bundles(tmp_path: Path) -> None:
    with pytest.raises(BundleNotFoundError, match="neither a bundle folder nor a shipped bundle") as refused:
        resolve_bundle(tmp_path / "nothing_here")
    assert all(name in str(refused.value) for name in SHIPPED)


def _copy(name: str, destination: Path) -> Path:
    return Path(shutil.copytree(REPO / "bundles" / name, destination / name))


def test_an_exact_copy_of_a_shipped_bundle_is_trusted_by_its_content(tmp_path: Path) -> None:
    assert shipped_name(_copy("invres_brain_tissue", tmp_path)) == "invres_brain_tissue"


@pytest.mark.parametrize("change", ["config", "weights", "extra config", "logging"])
def test_a_changed_shipped_bundle_is_refused(tmp_path: Path, change: str) -> None:
    folder = _copy("invres_brain_tissue", tmp_path)
    if change == "config":
        config = json.loads((folder / "configs" / "inference.json").read_text())
        config["num_samples"] = 2
        (folder / "configs" / "inference.json").write_text(json.dumps(config))
    elif change == "weights":
        with open(folder / "models" / "model.pt", "ab") as stream:
            stream.write(b"\0")
    elif change == "extra config":
        (folder / "configs" / "evaluate.json").write_text("{}")
    else:
        (folder / "configs" / "logging.conf").write_text("[loggers]\nkeys=root\n")
    assert shipped_name(folder) is None
    with pytest.raises(UntrustedBundleError, match="is not a bundle shipped with revnets"):
        require_trusted(folder)
    require_trusted(folder, trust=True)


def test_a_changed_bundle_in_the_shipped_folder_names_the_changed_files(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "root"
    folder = _copy("revmbconv_brats", root)
    shutil.copy(manifest_path(), root / "manifest.json")
    monkeypatch.setattr("revnets.trust.shipped_root", lambda: root)
    require_trusted(folder)
    (folder / "configs" / "train.json").write_text("{}")
    with pytest.raises(UntrustedBundleError, match=r"no longer matches .*\(configs/train.json changed\)"):
        require_trusted(folder)


def _malicious_bundle(tmp_path: Path) -> tuple[Path, Path]:
    folder = make_tiny_bundle(tmp_path)
    marker = tmp_path / "pwned"
    config_file = folder / "configs" / "inference.json"
    config = json.loads(config_file.read_text())
    config["imports"].append(f"$__import__('pathlib').Path({str(marker)!r}).write_text('ran')")
    config["device"] = f"$__import__('pathlib').Path({str(marker)!r}).write_text('ran') and 'cpu'"
    config_file.write_text(json.dumps(config))
    return folder, marker


def test_the_cli_refuses_a_malicious_bundle_before_running_any_of_its_code(tmp_path: Path, capsys) -> None:
    folder, marker = _malicious_bundle(tmp_path)
    scan = REPO / "tests" / "nonexistent.nii.gz"  # the refusal comes before the inputs are looked at
    err = _one_line_error(
        capsys, main(["predict", str(scan), "--bundle", str(folder), "--output", str(tmp_path / "out")])
    )
    assert "is not a bundle shipped with revnets" in err and "Pass --trust-bundle" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_the_python_api_refuses_without_trust_and_loads_with_it(tmp_path: Path) -> None:
    folder = make_tiny_bundle(tmp_path)
    with pytest.raises(UntrustedBundleError) as refused:
        Predictor.from_bundle(folder, device="cpu")
    assert "--" not in str(refused.value), "library messages do not speak of command-line flags"
    assert Predictor.from_bundle(folder, device="cpu", trust=True).network.in_channels == 1
    assert Predictor.from_bundle("invres_brain_tissue", device="cpu").network.in_channels == 1


def test_bundle_without_weights_is_a_one_line_error(tmp_path: Path, capsys) -> None:
    folder = make_tiny_bundle(tmp_path)
    (folder / "models" / "model.pt").unlink()
    with pytest.raises(BundleError, match="model.pt are missing"):
        Predictor.from_bundle(folder, device="cpu", trust=True)


def test_bundle_with_invalid_json_names_the_file_and_the_line(tmp_path: Path) -> None:
    folder = make_tiny_bundle(tmp_path)
    (folder / "configs" / "inference.json").write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(BundleError, match=r"inference.json is not valid JSON \(line 3 column 3"):
        Predictor.from_bundle(folder, device="cpu", trust=True)


def test_weights_that_do_not_fit_the_network_say_how(tmp_path: Path) -> None:
    folder = make_tiny_bundle(tmp_path)
    state = torch.load(folder / "models" / "model.pt", weights_only=True)
    first = next(iter(state))
    state[first] = torch.zeros(1)
    del state[list(state)[-1]]
    torch.save(state, folder / "models" / "model.pt")
    expected = r"do not fit the bundle's network \(1 missing, e\.g\. .*; 1 of another shape"
    with pytest.raises(BundleError, match=expected):
        Predictor.from_bundle(folder, device="cpu", trust=True)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never print",))


def test_malicious_weights_are_refused_without_suggesting_unsafe_loading(tmp_path: Path, capsys) -> None:
    folder = make_tiny_bundle(tmp_path)
    torch.save({"weight": _RunsCode()}, folder / "models" / "model.pt")
    with pytest.raises(BundleError, match="holds Python objects besides tensors: refused") as refused:
        Predictor.from_bundle(folder, device="cpu", trust=True)
    assert "weights_only" not in str(refused.value)
    assert "this must never print" not in capsys.readouterr().out


def test_damaged_weights_are_a_one_line_error(tmp_path: Path) -> None:
    folder = make_tiny_bundle(tmp_path)
    weights = folder / "models" / "model.pt"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(BundleError, match="is not a readable PyTorch weights file"):
        Predictor.from_bundle(folder, device="cpu", trust=True)


def test_digests_cover_configs_and_weights_only(tmp_path: Path) -> None:
    folder = _copy("revphiseg_brain_tissue", tmp_path)
    (folder / "docs" / "README.md").write_text("edited card")
    assert shipped_name(folder) == "revphiseg_brain_tissue"
    assert set(bundle_digests(folder)) == set(read_manifest()["revphiseg_brain_tissue"])
