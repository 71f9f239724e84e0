"""A scene set up as Slicer sets it up (the module logics that register the node classes), the tiny
bundle and the Python with revnets, both handed over by ``tests/slicer/test_mrml.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import slicer
from RevnetsSegmentationLib.bundles import read_bundle
from RevnetsSegmentationLib.logic import RevnetsSegmentationLogic

MODULE_LOGICS = (
    slicer.vtkSlicerColorLogic, slicer.vtkSlicerSequencesLogic, slicer.vtkSlicerSegmentationsModuleLogic,
    slicer.vtkSlicerVolumesLogic,
)


def _given(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run these tests through tests/slicer/test_mrml.py (make test).")
    return value


@pytest.fixture(scope="session")
def bundle():
    return read_bundle(Path(_given("REVNETS_TEST_BUNDLE")))


@pytest.fixture(scope="session")
def ct_bundle():
    return read_bundle(Path(_given("REVNETS_TEST_CT_BUNDLE")))


@pytest.fixture(scope="session")
def chest_ct() -> Path:
    """A chest CT phantom NIfTI (Hounsfield units) with ``raters.nii.gz`` beside it (raters per voxel)."""
    return Path(_given("REVNETS_TEST_CT"))


@pytest.fixture(scope="session")
def python() -> str:
    return _given("REVNETS_TEST_PYTHON")


class World:
    """A scene with the module logics that Slicer creates for it, three slice views' composite nodes and
    the module's logic on it."""

    def __init__(self) -> None:
        self.scene = slicer.vtkMRMLScene()
        self.moduleLogics = []
        for cls in MODULE_LOGICS:
            logic = cls()
            logic.SetMRMLScene(self.scene)
            self.moduleLogics.append(logic)
        for view in ("Red", "Yellow", "Green"):
            composite = self.scene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
            composite.SetLayoutName(view)
        self.logic = RevnetsSegmentationLogic(self.scene, sequencesLogic=self.moduleLogics[1])

    def readMRB(self, path: Path, cache: Path) -> None:
        """Load a scene bundle as Slicer does (the cache folder is where it is unpacked)."""
        cache.mkdir(parents=True, exist_ok=True)
        manager = slicer.vtkCacheManager()
        manager.SetRemoteCacheDirectory(str(cache))
        io = slicer.vtkDataIOManager()
        io.SetCacheManager(manager)
        self.scene.SetDataIOManager(io)
        assert self.scene.ReadFromMRB(str(path)), f"{path} could not be read"


@pytest.fixture()
def world() -> World:
    return World()
