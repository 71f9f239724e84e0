"""The extension's files, checked without Slicer: the .ui is well-formed and agrees with the .py, every
module file compiles, the Lib stays free of Slicer, and the CMake files list what the module ships."""

from __future__ import annotations

import ast
import py_compile
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION_DIR = ROOT / "slicer_extension"  # the extension's top level: the folder the docs give the Wizard
MODULE_DIR = EXTENSION_DIR / "RevnetsSegmentation"
MODULE_PY = MODULE_DIR / "RevnetsSegmentation.py"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "RevnetsSegmentation.ui"
PY_FILES = sorted(MODULE_DIR.rglob("*.py"))
# Widgets a user acts on or reads results from: each must be wired up in the .py.
INTERACTIVE = {
    "qMRMLNodeComboBox", "qMRMLSegmentsTableView", "ctkPathLineEdit", "ctkSliderWidget", "QPushButton",
    "QComboBox", "QSpinBox", "QCheckBox", "QProgressBar",
}


@pytest.fixture(scope="module")
def ui() -> ElementTree.Element:
    return ElementTree.parse(UI_FILE).getroot()


def _widgets(ui: ElementTree.Element) -> dict[str, str]:
    return {w.get("name"): w.get("class") for w in ui.iter("widget")}


def _used_by_module() -> set[str]:
    return set(re.findall(r"self\.ui\.(\w+)", MODULE_PY.read_text()))


def test_ui_is_a_designer_file_for_the_module(ui: ElementTree.Element) -> None:
    assert ui.tag == "ui" and ui.findtext("class") == "RevnetsSegmentation"
    top = ui.find("widget")
    assert top.get("class") == "qMRMLWidget" and top.get("name") == "RevnetsSegmentation"
    declared = {c.findtext("class") for c in ui.iter("customwidget")}
    custom = {cls for cls in _widgets(ui).values() if not cls.startswith("Q")}
    assert custom <= declared, f"custom widgets without a <customwidget> entry: {custom - declared}"


def test_ui_uses_slicers_mrml_and_ctk_widgets(ui: ElementTree.Element) -> None:
    classes = set(_widgets(ui).values())
    assert {"qMRMLNodeComboBox", "ctkPathLineEdit", "ctkSliderWidget", "QProgressBar"} <= classes


def test_every_mrml_widget_gets_the_scene(ui: ElementTree.Element) -> None:
    widgets = _widgets(ui)
    mrml = {name for name, cls in widgets.items() if cls.startswith("qMRML") and cls != "qMRMLWidget"}
    connected = {
        c.findtext("receiver") for c in ui.iter("connection") if c.findtext("slot") == "setMRMLScene(vtkMRMLScene*)"
    }
    assert mrml == connected
    assert all(c.findtext("sender") == "RevnetsSegmentation" for c in ui.iter("connection"))


def test_module_names_only_widgets_that_exist_in_the_ui(ui: ElementTree.Element) -> None:
    missing = _used_by_module() - set(_widgets(ui))
    assert not missing, f"RevnetsSegmentation.py uses widgets the .ui lacks: {sorted(missing)}"


def test_every_interactive_widget_in_the_ui_is_used_by_the_module(ui: ElementTree.Element) -> None:
    interactive = {name for name, cls in _widgets(ui).items() if cls in INTERACTIVE}
    unused = interactive - _used_by_module()
    assert not unused, f"widgets in the .ui that RevnetsSegmentation.py never uses: {sorted(unused)}"


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(MODULE_DIR)))
def test_module_file_compiles(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), cfile=str(tmp_path / "compiled.pyc"), doraise=True)


def _imports(path: Path) -> set[str]:
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    return imported


@pytest.mark.parametrize("path", sorted((MODULE_DIR / "RevnetsSegmentationLib").glob("*.py")), ids=lambda p: p.name)
def test_lib_needs_no_qt_and_only_the_logic_needs_mrml(path: Path) -> None:
    banned = {"qt", "ctk", "revnets"} if path.name == "logic.py" else {"slicer", "qt", "ctk", "vtk", "mrml", "revnets"}
    assert not _imports(path) & banned


@pytest.mark.parametrize("path", PY_FILES, ids=lambda p: str(p.relative_to(MODULE_DIR)))
def test_module_file_parses_as_python_39(path: Path) -> None:
    """Slicer 5.0-5.8 embed Python 3.9: the module must still load there, to say which Slicer it needs."""
    ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 9))


def test_module_cmake_lists_every_script_and_resource() -> None:
    cmake = (MODULE_DIR / "CMakeLists.txt").read_text().replace("${MODULE_NAME}", "RevnetsSegmentation")
    scripts = re.search(r"set\(MODULE_PYTHON_SCRIPTS(.*?)\)", cmake, re.S).group(1).split()
    resources = re.search(r"set\(MODULE_PYTHON_RESOURCES(.*?)\)", cmake, re.S).group(1).split()
    assert sorted(scripts) == sorted(str(p.relative_to(MODULE_DIR)) for p in PY_FILES)
    assert all((MODULE_DIR / r).is_file() for r in resources)
    assert "slicerMacroBuildScriptedModule" in cmake and "slicer_add_python_unittest" in cmake


def test_icon_is_a_128_pixel_png() -> None:
    icon = matplotlib.image.imread(MODULE_DIR / "Resources" / "Icons" / "RevnetsSegmentation.png")
    assert icon.shape[:2] == (128, 128) and icon[..., :3].std() > 0.05


def test_extension_cmake_has_the_metadata_and_the_module() -> None:
    cmake = (EXTENSION_DIR / "CMakeLists.txt").read_text()
    for field in ("HOMEPAGE", "CATEGORY", "CONTRIBUTORS", "DESCRIPTION", "ICONURL", "SCREENSHOTURLS", "DEPENDS"):
        value = re.search(rf'^set\(EXTENSION_{field} "([^"$]+)"\)', cmake, re.M)
        assert value, f"EXTENSION_{field} must be a plain set() of a literal value (the Extension Wizard reads text)"
    for field in ("HOMEPAGE", "ICONURL", "SCREENSHOTURLS"):
        assert re.search(rf'^set\(EXTENSION_{field} "https://[^"\s]+"\)$', cmake, re.M), field
    assert "CACHE" not in cmake
    assert re.search(r'^set\(EXTENSION_DEPENDS "PyTorch"\)', cmake, re.M)
    assert "Slicer 5.10 or later" in re.search(r'^set\(EXTENSION_DESCRIPTION "([^"]+)"\)', cmake, re.M).group(1)
    assert "find_package(Slicer REQUIRED)" in cmake and "include(${Slicer_USE_FILE})" in cmake
    subdirectories = re.findall(r"add_subdirectory\((\S+)\)", cmake)
    assert subdirectories and all((EXTENSION_DIR / d / "CMakeLists.txt").is_file() for d in subdirectories)
    assert "include(${Slicer_EXTENSION_CPACK})" in cmake


def test_the_repository_cmake_file_builds_the_extension_folder() -> None:
    cmake = (EXTENSION_DIR.parent / "CMakeLists.txt").read_text()
    assert re.findall(r"add_subdirectory\((\S+)\)", cmake) == [EXTENSION_DIR.name]
    assert "EXTENSION_" not in cmake  # the metadata has one home: slicer_extension/CMakeLists.txt


def _wizard_modules(folder: Path, depth: int = 1) -> list[Path]:
    """The scripted modules the Extension Wizard offers for ``folder`` (Slicer's ExtensionWizard looks
    ``depth`` = 1 folder deep, skips folders with an ``__init__.py`` and takes ``X.py`` files that define a
    class ``X``)."""
    entries = sorted(folder.iterdir())
    if any(entry.name == "__init__.py" for entry in entries):
        return []
    found = [m for entry in entries if entry.is_dir() and depth > 0 for m in _wizard_modules(entry, depth - 1)]
    for entry in entries:
        if entry.suffix == ".py" and entry.is_file() and entry.name != "__init__.py":
            classes = {n.name for n in ast.parse(entry.read_text()).body if isinstance(n, ast.ClassDef)}
            if entry.stem in classes:
                found.append(entry)
    return found


def test_extension_wizard_finds_the_module_from_the_documented_folder() -> None:
    assert _wizard_modules(EXTENSION_DIR) == [MODULE_PY]
    assert not (EXTENSION_DIR / ".git").exists()  # the Wizard reads this folder's CMakeLists.txt, not a repo's
    assert "`slicer_extension/` folder" in (ROOT / "docs" / "slicer.md").read_text()
