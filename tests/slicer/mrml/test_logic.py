"""The module's logic against Slicer's real MRML: a volume with a rotated, anisotropic IJK-to-RAS under a
parent transform goes through a tiny bundle (``revnets predict`` of the project's environment as the
external Python); segments, samples, maps, geometry, a scene save and reload, cancel and failures."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import slicer
import slicer.util
import vtk
from RevnetsSegmentationLib.logic import INFERNO, MAP_THRESHOLD, RESULT_REFERENCES, colorLegends
from RevnetsSegmentationLib.outputs import MAPS
from RevnetsSegmentationLib.runner import RunCancelled, RunFailed
from RevnetsSegmentationLib.workspace import Workspace

from .conftest import World

SHAPE_KJI = (18, 22, 20)  # numpy order of a 20 x 22 x 18 (I, J, K) volume
TIMEOUT = 300.0


def _matrix(values: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(values[r, c]))
    return matrix


def _array(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def _ijk_to_ras(node) -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return _array(matrix)


def _add_head(world: World, name: str = "Tête 1"):
    """A bright ball in noise, 2 x 2.5 x 3 mm voxels, rotated 30 degrees about S, under a translation."""
    volume = world.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    k, j, i = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE_KJI), indexing="ij")
    voxels = (np.hypot(np.hypot(i, j), k) < 0.6) * 100.0 + np.random.default_rng(0).normal(0, 5, SHAPE_KJI)
    image = vtk.vtkImageData()
    image.SetDimensions(SHAPE_KJI[2], SHAPE_KJI[1], SHAPE_KJI[0])
    image.AllocateScalars(vtk.VTK_FLOAT, 1)
    volume.SetAndObserveImageData(image)
    slicer.util.updateVolumeFromArray(volume, voxels.astype(np.float32))
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    ijk_to_ras = np.eye(4)
    ijk_to_ras[:3, :3] = rotation @ np.diag([2.0, 2.5, 3.0])
    ijk_to_ras[:3, 3] = (-20.0, 12.5, 40.0)
    volume.SetIJKToRASMatrix(_matrix(ijk_to_ras))
    transform = world.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "head position")
    transform.SetMatrixTransformToParent(_matrix(np.array([[1, 0, 0, 5], [0, 1, 0, -3], [0, 0, 1, 7], [0, 0, 0, 1.0]])))
    volume.SetAndObserveTransformNodeID(transform.GetID())
    volume.CreateDefaultDisplayNodes()
    return volume


def _wait(run) -> None:
    deadline = time.monotonic() + TIMEOUT
    while run.poll():
        assert time.monotonic() < deadline, "revnets predict did not finish in time"
        time.sleep(0.1)


def _node_ids(scene) -> set[str]:
    return {scene.GetNthNode(k).GetID() for k in range(scene.GetNumberOfNodes())}


@pytest.fixture(scope="module")
def finished(bundle, python, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One run with 2 samples through a folder with non-ASCII characters, its results in the scene."""
    world = World()
    volume = _add_head(world)
    parent = tmp_path_factory.mktemp("runs") / "Gérard"
    parent.mkdir()
    progress = []
    run = world.logic.startPrediction(
        [volume], bundle, 2, "cpu", 0, python=python, trust=True, onProgress=progress.append,
        workspaceParent=parent,
    )
    _wait(run)
    results = world.logic.loadResults(run, bundle, volume)
    return SimpleNamespace(world=world, volume=volume, run=run, results=results, progress=progress)


def test_progress_is_reported_to_the_end(finished) -> None:
    assert finished.progress and finished.progress[-1].percent == 100


def test_segments_are_named_coloured_and_carry_the_standard_terminology(finished, bundle) -> None:
    segmentation = finished.results.segmentation.GetSegmentation()
    consensus = np.asanyarray(nib.load(finished.results.outputs.files["seg"]).dataobj)
    present = sorted(int(v) for v in np.unique(consensus) if v != 0)
    assert present, "the tiny bundle segmented nothing"
    segments = [segmentation.GetNthSegment(k) for k in range(segmentation.GetNumberOfSegments())]
    assert [s.GetName() for s in segments] == [bundle.styles[v].name for v in present]
    for segment, value in zip(segments, present):
        style = bundle.styles[value]
        assert np.allclose(segment.GetColor(), style.color, atol=1 / 255)
        terminology = segment.GetTerminology()
        assert "SCT^{}^{}".format(*style.category[1:]) in terminology
        assert "SCT^{}^{}".format(*style.type[1:]) in terminology


def test_segments_hold_the_consensus_voxels_in_the_input_geometry(finished, bundle) -> None:
    world, volume = finished.world, finished.volume
    labelmap = world.scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode")
    segmentation = finished.results.segmentation
    assert slicer.vtkSlicerSegmentationsModuleLogic.ExportAllSegmentsToLabelmapNode(
        segmentation, labelmap, slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
    )
    assert labelmap.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions()
    assert np.allclose(_ijk_to_ras(labelmap), _ijk_to_ras(volume), atol=1e-4)
    exported = slicer.util.arrayFromVolume(labelmap)
    consensus = np.asanyarray(nib.load(finished.results.outputs.files["seg"]).dataobj).transpose(2, 1, 0)
    content = segmentation.GetSegmentation()
    by_name = {style.name: value for value, style in bundle.styles.items()}
    for k in range(content.GetNumberOfSegments()):
        value = by_name[content.GetNthSegment(k).GetName()]
        assert np.array_equal(exported == k + 1, consensus == value)
    assert segmentation.GetTransformNodeID() == volume.GetTransformNodeID()
    world.scene.RemoveNode(labelmap)


def test_every_result_volume_has_the_input_geometry_and_transform(finished) -> None:
    volume, results = finished.volume, finished.results
    for node in [results.sampleNode, *results.maps.values()]:
        assert node.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions(), node.GetName()
        assert np.allclose(_ijk_to_ras(node), _ijk_to_ras(volume), atol=1e-4), node.GetName()
        assert node.GetTransformNodeID() == volume.GetTransformNodeID() is not None


def test_samples_are_a_sequence_browsed_as_the_label_layer(finished, bundle) -> None:
    results, logic = finished.results, finished.world.logic
    stacked = np.asanyarray(nib.load(results.outputs.files["samples"]).dataobj)
    assert results.numberOfSamples == 2 and results.samples.GetIndexName() == "sample"
    composites = logic._sliceComposites()
    for index in (2, 1):
        logic.showSample(results, index)
        proxy = results.sampleNode
        assert proxy.IsA("vtkMRMLLabelMapVolumeNode")
        assert np.array_equal(slicer.util.arrayFromVolume(proxy), stacked[..., index - 1].transpose(2, 1, 0))
        assert all(c.GetLabelVolumeID() == proxy.GetID() for c in composites)
        assert proxy.GetTransformNodeID() == finished.volume.GetTransformNodeID()
        assert np.allclose(_ijk_to_ras(proxy), _ijk_to_ras(finished.volume), atol=1e-4)
        assert not results.segmentation.GetDisplayNode().GetVisibility2D()
        assert proxy.GetDisplayNode().GetColorNode().GetColorName(max(bundle.styles)) == bundle.styles[
            max(bundle.styles)
        ].name
    logic.showSample(results, None)
    assert all(c.GetLabelVolumeID() is None for c in composites)
    assert results.segmentation.GetDisplayNode().GetVisibility2D()


def test_maps_have_the_colour_table_window_threshold_and_a_legend(finished) -> None:
    results, logic = finished.results, finished.world.logic
    for key, title in MAPS.items():
        node = results.maps[key]
        top = float(np.max(np.asanyarray(nib.load(results.outputs.files[key]).dataobj)))
        assert np.isclose(slicer.util.arrayFromVolume(node).max(), top, rtol=1e-6)
        display = node.GetDisplayNode()
        colors = display.GetColorNode()
        assert colors.GetName() == "Inferno (revnets)" and colors.GetNumberOfColors() == 256
        first, last = [0.0] * 4, [0.0] * 4
        colors.GetColor(0, first)
        colors.GetColor(255, last)
        assert np.allclose(first[:3], INFERNO[0], atol=1 / 255) and np.allclose(last[:3], INFERNO[-1], atol=1 / 255)
        assert not display.GetAutoWindowLevel()
        assert np.isclose(display.GetWindowLevelMin(), 0.0) and np.isclose(display.GetWindowLevelMax(), top or 1.0)
        assert display.GetApplyThreshold() and np.isclose(display.GetLowerThreshold(), MAP_THRESHOLD * (top or 1.0))
        (legend,) = colorLegends(node)
        assert legend.GetTitleText() == title and not legend.GetVisibility()
    logic.showUncertainty(results, "mutual_info", 0.4, True)
    for composite in logic._sliceComposites():
        assert composite.GetBackgroundVolumeID() == finished.volume.GetID()
        assert composite.GetForegroundVolumeID() == results.maps["mutual_info"].GetID()
        assert np.isclose(composite.GetForegroundOpacity(), 0.4)
    assert [colorLegends(results.maps[k])[0].GetVisibility() for k in MAPS] == [False, True, False]


def test_results_sit_in_one_subject_hierarchy_folder(finished, bundle) -> None:
    scene, results = finished.world.scene, finished.results
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(scene)
    parents = {hierarchy.GetItemParent(hierarchy.GetItemByDataNode(node)) for node in results.nodes()}
    (folder,) = parents
    assert hierarchy.GetItemName(folder) == f"{finished.volume.GetName()} revnets {bundle.name}"


def test_a_chosen_output_segmentation_is_reused(finished, bundle) -> None:
    world = finished.world
    chosen = world.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "my segmentation")
    chosen.GetSegmentation().AddEmptySegment("old", "old")
    before = world.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    again = world.logic.loadResults(finished.run, bundle, finished.volume, outputSegmentation=chosen)
    assert again.segmentation is chosen
    content = chosen.GetSegmentation()
    names = [content.GetNthSegment(k).GetName() for k in range(content.GetNumberOfSegments())]
    original = finished.results.segmentation.GetSegmentation()
    assert names == [original.GetNthSegment(k).GetName() for k in range(original.GetNumberOfSegments())]
    assert world.scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == before


def test_a_failure_while_loading_leaves_the_scene_as_it_was(finished, bundle, tmp_path: Path) -> None:
    world = finished.world
    parameters = world.logic.getParameterNode()
    world.logic.storeResults(parameters, finished.results)
    stored = {ref: parameters.GetNodeReferenceID(ref) for ref in RESULT_REFERENCES}
    workspace = Workspace(tmp_path)
    outputs = dataclasses.replace(
        finished.results.outputs,
        files={**finished.results.outputs.files, "variance": workspace.root / "gone_variance.nii.gz"},
    )
    broken = SimpleNamespace(result=lambda: outputs, workspace=workspace)
    before = _node_ids(world.scene)
    with pytest.raises(RuntimeError, match="Could not read .*gone_variance"):
        world.logic.loadResults(broken, bundle, finished.volume)
    left = _node_ids(world.scene) - before
    assert not left, [(i, world.scene.GetNodeByID(i).GetName()) for i in left]
    assert not workspace.root.exists(), "the failed run's folder is left behind"
    assert {ref: parameters.GetNodeReferenceID(ref) for ref in RESULT_REFERENCES} == stored


def test_results_survive_a_scene_save_and_reload(finished, bundle, tmp_path: Path) -> None:
    world, results = finished.world, finished.results
    parameters = world.logic.getParameterNode()
    parameters.SetNodeReferenceID("Input0", finished.volume.GetID())
    parameters.SetParameter("Samples", "2")
    world.logic.storeResults(parameters, results)
    workspace = results.workspace.root
    for node in results.nodes():
        storage = node.GetStorageNode() if node.IsA("vtkMRMLStorableNode") else None
        assert storage is None or not str(storage.GetFileName()).startswith(str(workspace)), node.GetName()
        if node.IsA("vtkMRMLStorableNode"):
            assert node.GetModifiedSinceRead(), f"{node.GetName()} would not be saved with the scene"
    expected = {key: slicer.util.arrayFromVolume(node).copy() for key, node in results.maps.items()}
    stacked = np.asanyarray(nib.load(results.outputs.files["samples"]).dataobj).copy()
    names = [results.segmentation.GetSegmentation().GetNthSegment(k).GetName()
             for k in range(results.segmentation.GetSegmentation().GetNumberOfSegments())]
    content = results.segmentation.GetSegmentation()
    terminologies = [content.GetNthSegment(k).GetTerminology() for k in range(len(names))]
    geometry = _ijk_to_ras(finished.volume)

    world.scene.SetRootDirectory(str(tmp_path))
    assert world.scene.WriteToMRB(str(tmp_path / "scene.mrb"))
    results.workspace.remove()  # what the module does on the next run, scene close or exit

    reloaded = World()
    reloaded.readMRB(tmp_path / "scene.mrb", tmp_path / "cache")
    parameters = reloaded.logic.getParameterNode()
    assert parameters.GetParameter("Samples") == "2"
    assert parameters.GetNodeReference("Input0").GetName() == finished.volume.GetName()
    again = reloaded.logic.resultsFromParameterNode(parameters)
    assert again is not None and again.outputs is None
    content = again.segmentation.GetSegmentation()
    assert [content.GetNthSegment(k).GetName() for k in range(content.GetNumberOfSegments())] == names
    assert [content.GetNthSegment(k).GetTerminology() for k in range(len(names))] == terminologies
    for key, node in again.maps.items():
        assert np.array_equal(slicer.util.arrayFromVolume(node), expected[key])
        assert np.allclose(_ijk_to_ras(node), geometry, atol=1e-4)
        assert node.GetDisplayNode().GetColorNode().GetName() == "Inferno (revnets)"
        assert reloaded.scene.GetNodeByID(node.GetTransformNodeID()).GetName() == "head position"
    assert again.numberOfSamples == 2
    reloaded.logic.showSample(again, 2)
    assert np.array_equal(slicer.util.arrayFromVolume(again.sampleNode), stacked[..., 1].transpose(2, 1, 0))


def _load_nifti(world: World, path: Path, name: str):
    """A scalar volume node holding a NIfTI file's voxels and geometry (NIfTI's affine is IJK to RAS)."""
    image = nib.load(path)
    volume = world.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    voxels = np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)
    data = vtk.vtkImageData()
    data.SetDimensions(*voxels.shape[::-1])
    data.AllocateScalars(vtk.VTK_FLOAT, 1)
    volume.SetAndObserveImageData(data)
    slicer.util.updateVolumeFromArray(volume, voxels)
    volume.SetIJKToRASMatrix(_matrix(image.affine))
    volume.CreateDefaultDisplayNodes()
    return volume


def test_a_loaded_chest_ct_is_segmented_by_the_shipped_ct_bundle(world: World, ct_bundle, chest_ct, python) -> None:
    volume = _load_nifti(world, chest_ct, "chest CT")
    run = world.logic.startPrediction([volume], ct_bundle, 2, "cpu", 0, python=python)  # shipped: no consent asked
    _wait(run)
    results = world.logic.loadResults(run, ct_bundle, volume)
    assert results.numberOfSamples == 2
    for node in [results.sampleNode, *results.maps.values()]:
        assert node.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions(), node.GetName()
        assert np.allclose(_ijk_to_ras(node), _ijk_to_ras(volume), atol=1e-4), node.GetName()
        assert np.isfinite(slicer.util.arrayFromVolume(node)).all(), node.GetName()
    consensus = np.asanyarray(nib.load(results.outputs.files["seg"]).dataobj) == 1
    majority = np.asanyarray(nib.load(chest_ct.parent / "raters.nii.gz").dataobj) >= 2
    dice = 2 * (consensus & majority).sum() / (consensus.sum() + majority.sum())
    assert dice > 0.5, f"the consensus covers the raters' nodule with Dice {dice:.2f}"
    segmentation = results.segmentation.GetSegmentation()
    assert [segmentation.GetNthSegment(k).GetName() for k in range(segmentation.GetNumberOfSegments())] == [
        ct_bundle.styles[1].name
    ]


def test_cancel_ends_the_run_and_leaves_nothing(world: World, bundle, python, tmp_path: Path) -> None:
    volume = _add_head(world, "head")
    progress = []
    run = world.logic.startPrediction(
        [volume], bundle, 2, "cpu", 0, python=python, trust=True, onProgress=progress.append,
        workspaceParent=tmp_path,
    )
    deadline = time.monotonic() + TIMEOUT
    while run.poll() and not progress:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert progress, "the command ended before its first progress line"
    before = _node_ids(world.scene)
    run.cancel()
    _wait(run)
    with pytest.raises(RunCancelled):
        world.logic.loadResults(run, bundle, volume)
    assert _node_ids(world.scene) == before
    assert not list(tmp_path.iterdir()), "a cancelled run must leave no files behind"


def test_a_python_that_cannot_start_is_a_readable_failure_without_files(world: World, bundle, tmp_path: Path) -> None:
    volume = _add_head(world, "head")
    with pytest.raises(RunFailed, match="could not be started"):
        world.logic.startPrediction([volume], bundle, 2, "cpu", 0, python=str(tmp_path / "nopython"),
                                    workspaceParent=tmp_path)
    assert not list(tmp_path.iterdir())


def test_inputs_are_checked_naming_what_is_missing_or_repeated(world: World) -> None:
    logic = world.logic
    channels = ("T1", "T1ce", "T2", "FLAIR")
    t1, t2 = _add_head(world, "t1"), _add_head(world, "t2")
    with pytest.raises(ValueError, match=r"^Select a volume for T1ce and FLAIR\.$"):
        logic.checkInputs([t1, None, t2, None], channels)
    with pytest.raises(ValueError, match=r"^T1 and FLAIR are the same volume \(t1\)"):
        logic.checkInputs([t1, t2, _add_head(world, "t3"), t1], channels)
    t2.SetAndObserveTransformNodeID(None)
    with pytest.raises(ValueError, match="different transforms"):
        logic.checkInputs([t1, t2], ("T1", "T2"))
    t2.SetAndObserveTransformNodeID(t1.GetTransformNodeID())
    t2.SetSpacing(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="t2 is not on the voxel grid of t1"):
        logic.checkInputs([t1, t2], ("T1", "T2"))


def test_the_parameter_node_is_one_per_scene_with_defaults(world: World) -> None:
    node = world.logic.getParameterNode()
    assert world.logic.getParameterNode() is node
    assert node.GetAttribute("ModuleName") == "RevnetsSegmentation"
    assert (node.GetParameter("Samples"), node.GetParameter("Device"), node.GetParameter("Seed")) == ("8", "auto", "0")
    assert world.logic.resultsFromParameterNode(node) is None
    volume = _add_head(world, "t1")
    node.SetNodeReferenceID("Input0", volume.GetID())
    assert world.logic.inputNodes(node, 2) == [volume, None]
