"""The module's logic at the MRML level: volume nodes to NIfTI, ``revnets predict`` in a subprocess, the
outputs back into nodes. No Qt: it runs in Slicer and with the ``slicer-core`` wheel (Slicer's MRML and
module logic libraries without the application), where the tests exercise it.

Results, in one subject hierarchy folder named after the scan and the bundle:

* the consensus as a segmentation: one segment per label, named, coloured and with the standard
  terminology (SNOMED CT category and type) from the bundle's metadata;
* the samples as a sequence of label maps with a sequence browser (its proxy node is the label map shown);
* predictive entropy, mutual information and variance as scalar volumes with an Inferno colour table, a
  window from 0 to the map's maximum, a threshold that hides values near zero, and a colour legend;
* references to all of them in the module's parameter node.

Every node is read through a storage node that is not kept: no node points into the temporary folder,
and each is new to the scene, so saving the scene (``.mrb`` or *Save Data*) writes their data with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import slicer
import vtk

from RevnetsSegmentationLib.bundles import Bundle
from RevnetsSegmentationLib.geometry import VolumeGeometry, check_matching_geometry
from RevnetsSegmentationLib.outputs import MAPS, PredictionOutputs
from RevnetsSegmentationLib.runner import PredictionRun, PredictRequest
from RevnetsSegmentationLib.workspace import Workspace, safe_stem

MODULE_NAME = "RevnetsSegmentation"
MAX_CHANNELS = 4
# matplotlib's inferno at 0, 1/8, ..., 1, interpolated linearly into the maps' colour table.
INFERNO = (
    (0.001, 0.0, 0.014), (0.129, 0.047, 0.291), (0.342, 0.062, 0.429), (0.541, 0.135, 0.415), (0.736, 0.216, 0.33),
    (0.894, 0.353, 0.194), (0.978, 0.558, 0.035), (0.975, 0.798, 0.206), (0.988, 0.998, 0.645),
)
MAP_THRESHOLD = 0.05  # map values below this fraction of the maximum are transparent
# Parameter node: what the user chose (saved with the scene) and where the current result is.
DEFAULTS = {"Bundle": "", "Samples": "8", "Device": "auto", "Seed": "0"}
INPUT_REFERENCE = "Input{}"
OUTPUT_SEGMENTATION = "OutputSegmentation"
RESULT_REFERENCES = ("ResultSegmentation", "ResultSamples", "ResultBrowser", "ResultInput") + tuple(
    f"ResultMap_{key}" for key in MAPS
)


@dataclass
class RevnetsResults:
    """The nodes of one result, and the run's files while they exist (for export).

    Attributes:
        inputNode: the (first) input volume.
        segmentation: the consensus, one segment per label.
        samples: the sequence of sample label maps.
        browser: the sequence browser over ``samples``; its proxy node is the sample label map shown.
        maps: scalar volume by map key (``entropy``, ``mutual_info``, ``variance``).
        workspace, outputs: the run's temporary folder and files (None for a result reloaded with a scene).
    """

    inputNode: object
    segmentation: object
    samples: object
    browser: object
    maps: dict = field(default_factory=dict)
    workspace: Workspace | None = None
    outputs: PredictionOutputs | None = None

    @property
    def sampleNode(self):
        """The label map node that shows the selected sample (the browser's proxy node)."""
        return self.browser.GetProxyNode(self.samples)

    @property
    def numberOfSamples(self) -> int:
        return self.samples.GetNumberOfDataNodes()

    def nodes(self) -> list:
        return [self.segmentation, self.samples, self.browser, self.sampleNode, *self.maps.values()]


class RevnetsSegmentationLogic:
    """Run a bundle on volume nodes and load the results into a scene.

    Args:
        scene: the MRML scene (default: Slicer's).
        sequencesLogic: the Sequences module logic (default: Slicer's), which creates the browser's proxy node.
    """

    def __init__(self, scene=None, sequencesLogic=None) -> None:
        self.scene = scene if scene is not None else slicer.mrmlScene
        self.sequencesLogic = sequencesLogic if sequencesLogic is not None else slicer.modules.sequences.logic()

    # Parameter node -------------------------------------------------------------------------------------

    def getParameterNode(self):
        """The module's parameter node in the scene (created with the defaults if there is none)."""
        node = self.scene.GetSingletonNode(MODULE_NAME, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = self.scene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
            node.UnRegister(None)
            node.SetSingletonTag(MODULE_NAME)
            node.SetAttribute("ModuleName", MODULE_NAME)
            node.SetName(MODULE_NAME)
            node = self.scene.AddNode(node)
        for name, value in DEFAULTS.items():
            if not node.GetParameter(name):
                node.SetParameter(name, value)
        return node

    def inputNodes(self, parameterNode, count: int) -> list:
        """The ``count`` input volumes chosen in the parameter node (None where none is chosen)."""
        return [parameterNode.GetNodeReference(INPUT_REFERENCE.format(k)) for k in range(count)]

    def storeResults(self, parameterNode, results: RevnetsResults | None) -> None:
        """Point the parameter node at ``results`` (None: at nothing)."""
        nodes = {} if results is None else {
            "ResultSegmentation": results.segmentation, "ResultSamples": results.samples,
            "ResultBrowser": results.browser, "ResultInput": results.inputNode,
            **{f"ResultMap_{key}": node for key, node in results.maps.items()},
        }
        for reference in RESULT_REFERENCES:
            node = nodes.get(reference)
            parameterNode.SetNodeReferenceID(reference, node.GetID() if node is not None else None)

    def resultsFromParameterNode(self, parameterNode) -> RevnetsResults | None:
        """The result the parameter node points at (e.g. after a scene was loaded), or None if incomplete."""
        found = {reference: parameterNode.GetNodeReference(reference) for reference in RESULT_REFERENCES}
        if any(node is None for node in found.values()):
            return None
        return RevnetsResults(
            inputNode=found["ResultInput"], segmentation=found["ResultSegmentation"],
            samples=found["ResultSamples"], browser=found["ResultBrowser"],
            maps={key: found[f"ResultMap_{key}"] for key in MAPS},
        )

    # Inputs and the run ---------------------------------------------------------------------------------

    @staticmethod
    def checkInputs(volumeNodes, channelNames) -> None:
        """Raise ValueError (one sentence) unless every channel has its own volume with voxels on one grid.

        Names every channel without a volume, and channels given the same volume.
        """
        missing = [name for node, name in zip(volumeNodes, channelNames) if node is None]
        if missing:
            raise ValueError(f"Select a volume for {_listing(missing)}.")
        for node, name in zip(volumeNodes, channelNames):
            if node.GetImageData() is None:
                raise ValueError(f"The volume for {name} ({node.GetName()}) has no voxels.")
        seen: dict[str, str] = {}
        for node, name in zip(volumeNodes, channelNames):
            if node.GetID() in seen:
                raise ValueError(
                    f"{seen[node.GetID()]} and {name} are the same volume ({node.GetName()}): select a different "
                    "volume for each channel."
                )
            seen[node.GetID()] = name
        if len({node.GetTransformNodeID() for node in volumeNodes}) > 1:
            raise ValueError("The input channels are under different transforms: harden or remove them first.")
        check_matching_geometry([(node.GetName(), volumeGeometry(node)) for node in volumeNodes])

    def startPrediction(
        self, volumeNodes, bundle: Bundle, samples: int, device: str, seed: int, python: str, env=None,
        trust: bool = False, onProgress=None, onLog=None, workspaceParent: Path | None = None,
    ) -> PredictionRun:
        """Write the volumes to a temporary NIfTI and start ``revnets predict`` with ``python``; return the run.

        Raises:
            RunFailed: ``python`` could not be started. The temporary folder is deleted on every failure.
        """
        stem = safe_stem(volumeNodes[0].GetName())
        workspace = Workspace(workspaceParent)
        try:
            paths = workspace.channel_paths(stem, len(volumeNodes))
            for node, path in zip(volumeNodes, paths):
                writeVolume(node, path)
            scan = paths[0] if len(paths) == 1 else workspace.stack_channels(stem, len(paths))
        except Exception:
            workspace.remove()
            raise
        request = PredictRequest(
            scan=scan, bundle=bundle.path, samples=int(samples), device=device, seed=int(seed), python=python,
            env=env, trust=trust,
        )
        run = PredictionRun(request, workspace, on_progress=onProgress, on_log=onLog)
        run.start()
        return run

    # Results --------------------------------------------------------------------------------------------

    def loadResults(self, run: PredictionRun, bundle: Bundle, inputNode, outputSegmentation=None) -> RevnetsResults:
        """Load the outputs of a finished run into nodes (see the module docstring).

        ``outputSegmentation``: an existing segmentation to fill (its segments are replaced); default: a new one.

        Raises:
            RunFailed, RunCancelled: the run gave no outputs.
            Any error while loading: the nodes created so far are removed and the run's folder is deleted,
            so the scene is as it was.
        """
        outputs = run.result()
        created: list = []
        try:
            results = self._load(outputs, run.workspace, bundle, inputNode, outputSegmentation, created)
        except Exception:
            for node in reversed(created):
                removeWithDisplayNodes(self.scene, node)
            run.workspace.remove()
            raise
        return results

    def _load(self, outputs, workspace, bundle, inputNode, outputSegmentation, created) -> RevnetsResults:
        name = inputNode.GetName()

        def add(className, nodeName):
            node = self.scene.AddNewNodeByClass(className, self.scene.GenerateUniqueName(nodeName))
            created.append(node)
            return node

        colors = add("vtkMRMLColorTableNode", f"{name} {bundle.name} labels")
        fillLabelColors(colors, bundle)
        consensus = add("vtkMRMLLabelMapVolumeNode", f"{name} consensus labels")
        readVolume(consensus, outputs.files["seg"])
        consensus.CreateDefaultDisplayNodes()
        consensus.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())
        segmentation = add("vtkMRMLSegmentationNode", f"{name} {bundle.name} segmentation")
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(consensus)
        if not slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(consensus, segmentation):
            raise RuntimeError(f"The consensus of {name} could not be turned into segments.")
        applyTerminology(segmentation, colors, bundle)
        removeWithDisplayNodes(self.scene, consensus)

        samples = add("vtkMRMLSequenceNode", f"{name} samples")
        samples.SetIndexName("sample")
        samples.SetIndexUnit("")
        samples.SetIndexType(samples.NumericIndex)
        for k, path in enumerate(outputs.split_samples(workspace.root / "samples")):
            item = add("vtkMRMLLabelMapVolumeNode", f"{name} sample {k + 1}")
            readVolume(item, path)
            samples.SetDataNodeAtValue(item, str(k + 1))
            removeWithDisplayNodes(self.scene, item)
        browser = add("vtkMRMLSequenceBrowserNode", f"{name} samples browser")
        browser.SetAndObserveMasterSequenceNodeID(samples.GetID())
        browser.SetSaveChanges(samples, False)
        self.sequencesLogic.UpdateProxyNodesFromSequences(browser)
        proxy = browser.GetProxyNode(samples)
        created.insert(created.index(browser), proxy)  # removed after the browser, which would recreate it
        proxy.SetName(f"{name} sample")
        proxy.CreateDefaultDisplayNodes()
        proxy.GetDisplayNode().SetAndObserveColorNodeID(colors.GetID())

        inferno = self.infernoColorNode()
        maps = {}
        for key, title in MAPS.items():
            node = add("vtkMRMLScalarVolumeNode", f"{name} {title.lower()}")
            readVolume(node, outputs.files[key])
            styleUncertaintyMap(self.scene, node, inferno, title)
            created.extend(colorLegends(node))
            maps[key] = node

        if outputSegmentation is not None:  # the chosen segmentation gets the segments once all else worked
            outputSegmentation.GetSegmentation().DeepCopy(segmentation.GetSegmentation())
            outputSegmentation.CreateDefaultDisplayNodes()
            removeWithDisplayNodes(self.scene, segmentation)
            segmentation = outputSegmentation

        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(self.scene)
        folder = shNode.CreateFolderItem(shNode.GetSceneItemID(), f"{name} revnets {bundle.name}")
        for node in [segmentation, samples, browser, proxy, colors, *maps.values()]:
            if node.IsA("vtkMRMLTransformableNode"):
                node.SetAndObserveTransformNodeID(inputNode.GetTransformNodeID())
            item = shNode.GetItemByDataNode(node)
            if item:
                shNode.SetItemParent(item, folder)
            else:
                shNode.CreateItem(folder, node)
        return RevnetsResults(inputNode, segmentation, samples, browser, maps, workspace, outputs)

    def infernoColorNode(self):
        """The maps' colour table (one per scene, saved with it)."""
        node = self.scene.GetSingletonNode("RevnetsInferno", "vtkMRMLColorTableNode")
        if node is not None:
            return node
        node = self.scene.CreateNodeByClass("vtkMRMLColorTableNode")
        node.UnRegister(None)
        node.SetSingletonTag("RevnetsInferno")
        node.SetName("Inferno (revnets)")
        node.SetTypeToUser()
        node.SetNumberOfColors(256)
        anchors = np.asarray(INFERNO)
        positions = np.linspace(0, 1, len(anchors))
        for k in range(256):
            rgb = [np.interp(k / 255, positions, anchors[:, c]) for c in range(3)]
            node.SetColor(k, "", *rgb, 1.0)
        node.SetNamesInitialised(True)
        return self.scene.AddNode(node)

    # Showing results ------------------------------------------------------------------------------------

    def showUncertainty(self, results: RevnetsResults, key: str, opacity: float, legend: bool) -> None:
        """Show map ``key`` over the input in every slice view, its colour legend on or off."""
        for name, node in results.maps.items():
            for display in colorLegends(node):
                display.SetVisibility(legend and name == key)
        for composite in self._sliceComposites():
            composite.SetBackgroundVolumeID(results.inputNode.GetID())
            composite.SetForegroundVolumeID(results.maps[key].GetID())
            composite.SetForegroundOpacity(opacity)

    def showSample(self, results: RevnetsResults, index: int | None) -> None:
        """Show sample ``index`` (from 1) as the label layer instead of the consensus; None: the consensus."""
        if index is not None:
            results.browser.SetSelectedItemNumber(index - 1)
            self.sequencesLogic.UpdateProxyNodesFromSequences(results.browser)
        for composite in self._sliceComposites():
            composite.SetLabelVolumeID(results.sampleNode.GetID() if index is not None else None)
        results.segmentation.GetDisplayNode().SetVisibility2D(index is None)

    def _sliceComposites(self) -> list:
        return [
            self.scene.GetNthNodeByClass(k, "vtkMRMLSliceCompositeNode")
            for k in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode"))
        ]


def volumeGeometry(node) -> VolumeGeometry:
    """The voxel grid of a volume node (its own IJK-to-RAS, not including parent transforms)."""
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    affine = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
    return VolumeGeometry.from_affine(node.GetImageData().GetDimensions(), affine)


def writeVolume(node, path: Path) -> None:
    """Write ``node`` as NIfTI with its IJK-to-RAS geometry through a storage node that is not kept, so the
    node keeps its own file name."""
    storage = node.GetScene().CreateNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    try:
        storage.SetFileName(str(path))
        if not storage.WriteData(node):
            raise RuntimeError(f"Could not write {node.GetName()} to {path}.")
    finally:
        storage.UnRegister(None)


def readVolume(node, path: Path) -> None:
    """Read the NIfTI ``path`` into ``node`` (geometry from the header) through a storage node that is not kept."""
    storage = node.GetScene().CreateNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    try:
        storage.SetFileName(str(path))
        storage.SetCenterImage(False)
        if not storage.ReadData(node) or node.GetImageData() is None:
            raise RuntimeError(f"Could not read {path}.")
    finally:
        storage.UnRegister(None)


def fillLabelColors(colorNode, bundle: Bundle) -> None:
    """One entry per label value: name, colour and terminology from the bundle (0 transparent)."""
    values = sorted(set(bundle.labels) | {0})
    colorNode.SetTypeToUser()
    colorNode.SetNumberOfColors(max(values) + 1)
    for value in range(max(values) + 1):
        colorNode.SetColor(value, "", 0.0, 0.0, 0.0, 0.0)
    colorNode.SetColor(0, bundle.labels.get(0, "background"), 0.0, 0.0, 0.0, 0.0)
    for value, style in bundle.styles.items():
        colorNode.SetColor(value, style.name, *style.color, 1.0)
        if style.category is not None and style.type is not None:
            colorNode.SetTerminology(value, *style.category, *style.type)
    colorNode.SetNamesInitialised(True)


def applyTerminology(segmentation, colorNode, bundle: Bundle) -> None:
    """Give each segment the terminology of its label (segments are named after their label)."""
    byName = {style.name: value for value, style in bundle.styles.items() if style.type is not None}
    content = segmentation.GetSegmentation()
    for k in range(content.GetNumberOfSegments()):
        segment = content.GetNthSegment(k)
        if segment.GetName() in byName:
            segment.SetTerminology(colorNode.GetTerminologyAsString(byName[segment.GetName()]))


def styleUncertaintyMap(scene, node, colorNode, title: str) -> None:
    """Colour table, window from 0 to the map's maximum, values near zero transparent, a hidden legend."""
    scalars = node.GetImageData().GetPointData().GetScalars()
    top = float(scalars.GetRange()[1]) or 1.0
    node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(colorNode.GetID())
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(0.0, top)
    display.SetApplyThreshold(True)
    display.SetAutoThreshold(False)
    display.SetLowerThreshold(MAP_THRESHOLD * top)
    display.SetUpperThreshold(top)
    legend = scene.AddNewNodeByClass("vtkMRMLColorLegendDisplayNode", f"{node.GetName()} legend")
    node.AddAndObserveDisplayNodeID(legend.GetID())
    legend.SetAndObservePrimaryDisplayNode(display)
    legend.SetTitleText(title)
    legend.SetVisibility(False)


def removeWithDisplayNodes(scene, node) -> None:
    """Remove ``node`` with its display and storage nodes from ``scene`` (if it is still there)."""
    if scene.GetNodeByID(node.GetID()) is not node:
        return
    helpers = []
    if node.IsA("vtkMRMLDisplayableNode"):
        helpers += [node.GetNthDisplayNode(k) for k in range(node.GetNumberOfDisplayNodes())]
    if node.IsA("vtkMRMLStorableNode"):
        helpers += [node.GetNthStorageNode(k) for k in range(node.GetNumberOfStorageNodes())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and scene.GetNodeByID(helper.GetID()) is helper:
            scene.RemoveNode(helper)


def colorLegends(node) -> list:
    return [
        node.GetNthDisplayNode(k) for k in range(node.GetNumberOfDisplayNodes())
        if node.GetNthDisplayNode(k) is not None and node.GetNthDisplayNode(k).IsA("vtkMRMLColorLegendDisplayNode")
    ]


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"
