"""The module's CMake rules build and install the payload (the revnets wheel and the shipped bundles) that
the installed extension runs from; checked with CMake and a stand-in for Slicer's build macros."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from RevnetsSegmentationLib.bundles import find_bundles
from RevnetsSegmentationLib.installer import (
    NOT_FROM_PIP,
    PAYLOAD_FOLDER,
    find_payload,
    requirement_name,
    split_requirements,
    wheel_requirements,
)

ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = ROOT / "slicer_extension" / "RevnetsSegmentation"
SCRIPTED = "lib/Slicer-5.10/qt-scripted-modules"
# What Slicer's build defines for an extension, reduced to what the module's CMakeLists.txt uses.
STUB = """cmake_minimum_required(VERSION 3.16)
project(SlicerStub NONE)
set(Slicer_QTSCRIPTEDMODULES_LIB_DIR {scripted})
set(Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR {scripted})
set(PYTHON_EXECUTABLE "{python}")
set(BUILD_TESTING OFF)
macro(slicerMacroBuildScriptedModule)
endmacro()
add_subdirectory("{module}" module)
"""


@pytest.fixture(scope="module")
def installed_extension(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("cmake") is None:
        pytest.fail("cmake is needed to check the extension's install rules (apt-get install cmake).")
    work = tmp_path_factory.mktemp("cmake")
    (work / "stub").mkdir()
    (work / "stub" / "CMakeLists.txt").write_text(
        STUB.format(scripted=SCRIPTED, python=Path(sys.executable).as_posix(), module=MODULE_DIR.as_posix())
    )
    steps = [
        ["cmake", "-S", work / "stub", "-B", work / "build", "-DREVNETS_WHEEL_BUILD_ISOLATION=OFF"],
        ["cmake", "--build", work / "build"],
        ["cmake", "--install", work / "build", "--prefix", work / "install"],
    ]
    for step in steps:
        result = subprocess.run([str(s) for s in step], capture_output=True, text=True, timeout=600, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return work / "install" / SCRIPTED


def test_install_puts_the_wheel_and_every_shipped_bundle_next_to_the_module(installed_extension: Path) -> None:
    payload = find_payload(installed_extension)
    assert payload.bundles == installed_extension / PAYLOAD_FOLDER / "bundles"
    assert payload.package is not None and payload.package.suffix == ".whl"
    assert payload.package.parent == installed_extension / PAYLOAD_FOLDER / "wheels"
    shipped = {p.parent.parent.name for p in (ROOT / "bundles").glob("*/configs/inference.json")}
    assert {p.parent.parent.name for p in payload.bundles.glob("*/configs/inference.json")} == shipped
    assert {bundle.name for bundle in find_bundles(payload.bundles)} == {b.name for b in find_bundles(ROOT / "bundles")}
    assert not list(payload.bundles.rglob("training")) and not list(installed_extension.rglob("*.stamp"))
    assert "revnets/cli.py" in zipfile.ZipFile(payload.package).namelist()


def test_the_wheels_requirements_leave_torch_and_simpleitk_to_slicer(installed_extension: Path) -> None:
    requirements = wheel_requirements(find_payload(installed_extension).package)
    for_pip, torch = split_requirements(requirements)
    assert {requirement_name(r) for r in requirements} >= {"torch", "simpleitk", "monai", "nibabel"}
    assert not {requirement_name(r) for r in for_pip} & set(NOT_FROM_PIP)
    assert "monai" in {requirement_name(r) for r in for_pip}
    assert torch.startswith(">=") and "extra" not in " ".join(for_pip)


def test_in_the_source_tree_the_module_uses_the_repository() -> None:
    payload = find_payload(MODULE_DIR)
    assert payload.bundles == ROOT / "bundles" and payload.package == ROOT
