"""What the module installs into Slicer and from where, and which Slicer it runs in (without Slicer)."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

from RevnetsSegmentationLib.installer import (
    MINIMUM_SLICER,
    PAYLOAD_FOLDER,
    find_payload,
    requirement_name,
    split_requirements,
    torch_constraint,
    unsupported_reason,
    wheel_requirements,
)

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "slicer_extension" / "RevnetsSegmentation"
MODULE_PY = MODULE_DIR / "RevnetsSegmentation.py"


def _wheel(folder: Path, version: str, requires: list[str]) -> Path:
    path = folder / f"revnets-{version}-py3-none-any.whl"
    metadata = "Metadata-Version: 2.4\nName: revnets\nVersion: {}\n{}\n".format(
        version, "".join(f"Requires-Dist: {r}\n" for r in requires)
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("revnets/__init__.py", "")
        archive.writestr(f"revnets-{version}.dist-info/METADATA", metadata)
    return path


def test_python_39_slicers_are_told_the_minimum_version_and_312_is_fine() -> None:
    reason = unsupported_reason((3, 9, 18), "5.8.1")
    assert reason is not None and "\n" not in reason
    assert f"3D Slicer {MINIMUM_SLICER} or later" in reason and "5.8.1" in reason and "Python 3.9" in reason
    assert unsupported_reason((3, 12, 10), "5.10.0") is None


def test_the_module_checks_the_version_at_load_before_building_its_widget() -> None:
    tree = ast.parse(MODULE_PY.read_text())
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    init = next(f for f in classes["RevnetsSegmentation"].body if getattr(f, "name", "") == "__init__")
    assert "_unsupported" in ast.unparse(init)
    setup = next(f for f in classes["RevnetsSegmentationWidget"].body if getattr(f, "name", "") == "setup")
    source = ast.unparse(setup)
    assert source.index("_unsupported()") < source.index("loadUI")


def test_packaged_payload_gives_the_newest_wheel_and_the_bundles(tmp_path: Path) -> None:
    payload = tmp_path / PAYLOAD_FOLDER
    (payload / "wheels").mkdir(parents=True)
    (payload / "bundles").mkdir()
    _wheel(payload / "wheels", "0.1.0", [])
    newest = _wheel(payload / "wheels", "0.2.0", [])
    assert find_payload(tmp_path).package == newest and find_payload(tmp_path).bundles == payload / "bundles"
    for wheel in (payload / "wheels").iterdir():
        wheel.unlink()
    assert find_payload(tmp_path).package is None


def test_requirements_come_from_the_wheel_without_extras_torch_and_simpleitk(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, "0.1.0", [
        "torch>=2.4", "monai>=1.4", "SimpleITK>=2.3", "nibabel>=5.0", 'pytest>=7.4; extra == "test"',
    ])
    requirements = wheel_requirements(wheel)
    assert requirements == ["torch>=2.4", "monai>=1.4", "SimpleITK>=2.3", "nibabel>=5.0"]
    assert split_requirements(requirements) == (["monai>=1.4", "nibabel>=5.0"], ">=2.4")
    assert split_requirements(["monai"]) == (["monai"], "")
    assert requirement_name("Pytorch_Ignite >= 0.4") == "pytorch-ignite"
    assert torch_constraint("2.13.0+cu126") == "torch==2.13.0+cu126\n"


def test_the_module_installs_revnets_from_its_payload_never_from_an_index() -> None:
    source = MODULE_PY.read_text()
    assert "SOURCE_ROOT" not in source and "parents[2]" not in source
    assert not re.search(r"index-url|pypi\.org|pip_install\(\[?\s*[\"']revnets", source)
    assert 'slicer.util.pip_install([str(package), "--no-deps"])' in source
    assert '"--constraint"' in source and "installTorch(" in source and "torchVersionRequirement=" in source


def test_input_selectors_start_empty() -> None:
    ui = ElementTree.parse(MODULE_DIR / "Resources" / "UI" / "RevnetsSegmentation.ui").getroot()
    for k in range(4):
        widget = next(w for w in ui.iter("widget") if w.get("name") == f"inputVolumeSelector{k}")
        properties = {p.get("name"): p for p in widget.iter("property")}
        assert properties["noneEnabled"].findtext("bool") == "true", k
