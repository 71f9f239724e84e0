"""3D Slicer module: run a revnets bundle on the loaded scan and show the consensus segmentation, the
samples one at a time and where the model is unsure; export everything as NIfTI.

This file is the thin Slicer-bound part (GUI, volume nodes to temporary NIfTI, results into nodes).
Everything that needs no MRML (bundles, geometry checks, running and cancelling ``revnets predict``,
checking and exporting its outputs) is in ``RevnetsSegmentationLib`` and tested with pytest outside Slicer.
"""

import importlib.util
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import qt
import slicer
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from RevnetsSegmentationLib.bundles import BundleError, find_bundles, read_bundle
from RevnetsSegmentationLib.geometry import GeometryMismatch, VolumeGeometry, check_matching_geometry
from RevnetsSegmentationLib.outputs import MAPS, OutputError
from RevnetsSegmentationLib.runner import DEVICES, PredictionRun, PredictRequest, RunCancelled, RunFailed
from RevnetsSegmentationLib.workspace import Workspace, safe_stem

# When the module runs from the revnets source tree: <repo>/slicer_extension/RevnetsSegmentation/this file.
SOURCE_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_BUNDLES = SOURCE_ROOT / "bundles"
PYTHON_SETTING = "RevnetsSegmentation/PythonExecutable"
MAP_COLORS = "vtkMRMLColorTableNodeFileInferno.txt"
# Segment colours by label order (background excluded), readable on MRI and CT.
LABEL_COLORS = (
    (0.35, 0.75, 0.95), (0.95, 0.85, 0.35), (0.90, 0.35, 0.35), (0.55, 0.85, 0.45), (0.75, 0.50, 0.90),
    (0.95, 0.60, 0.25),
)
OTHER_FOLDER = "Other bundle folder..."


class RevnetsSegmentation(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Revnets Segmentation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["revnets contributors"]
        self.parent.helpText = (
            "Segment the loaded scan with a revnets bundle (memory-efficient reversible 3D networks) and see "
            "where the model is unsure: the consensus segmentation, the sampled segmentations one at a time, "
            "and predictive entropy, mutual information or variance as a colour overlay. "
            "The shipped bundles are demonstration models, not for clinical use."
        )
        self.parent.acknowledgementText = (
            "Runs the revnets command in a subprocess, as SlicerMONAIAuto3DSeg and SlicerTotalSegmentator run "
            "their models. Bundles follow the MONAI bundle format."
        )


class RevnetsResults:
    """The nodes of one result and the files they came from (kept until the next run, for export)."""

    def __init__(self, workspace, outputs, inputNode, segmentation, samples, maps):
        self.workspace = workspace
        self.outputs = outputs
        self.inputNode = inputNode
        self.segmentation = segmentation
        self.samples = samples
        self.maps = maps


class RevnetsSegmentationLogic(ScriptedLoadableModuleLogic):
    """Volume nodes to a temporary NIfTI, ``revnets predict`` in a subprocess, outputs back into nodes."""

    def shippedBundles(self):
        """The bundles next to the module when it runs from the revnets source tree."""
        return find_bundles(SHIPPED_BUNDLES) if SHIPPED_BUNDLES.is_dir() else []

    @staticmethod
    def pythonExecutable():
        """The Python that runs revnets: the one chosen in the module, else Slicer's own (PythonSlicer)."""
        chosen = str(qt.QSettings().value(PYTHON_SETTING, "") or "")
        return chosen or shutil.which("PythonSlicer") or sys.executable

    @staticmethod
    def usesSlicerPython():
        return not qt.QSettings().value(PYTHON_SETTING, "")

    def installDependencies(self):
        """Install missing Python packages into Slicer after asking; False when the user declines.

        Slicer's Python always needs nibabel (the module reads the outputs with it). It also needs revnets
        (with PyTorch and MONAI) unless another Python with revnets was chosen.
        """
        missing = [name for name in ("nibabel",) if importlib.util.find_spec(name) is None]
        needRevnets = self.usesSlicerPython() and importlib.util.find_spec("revnets") is None
        if not missing and not needRevnets:
            return True
        if needRevnets and not (SOURCE_ROOT / "pyproject.toml").is_file():
            raise RuntimeError(
                "revnets is not installed in Slicer's Python: install it there with pip, or choose a "
                "'Python with revnets' under Parameters."
            )
        packages = missing + ([f"revnets (with PyTorch and MONAI, from {SOURCE_ROOT})"] if needRevnets else [])
        if not slicer.util.confirmOkCancelDisplay(
            "Revnets Segmentation needs these Python packages in Slicer: " + ", ".join(packages) + ".\n"
            "Install them now? This needs a network connection and can take several minutes. "
            "Alternatively, cancel and choose a 'Python with revnets' under Parameters.",
            "Install Python packages",
        ):
            return False
        with slicer.util.tryWithErrorDisplay("Installing the Python packages failed."):
            for name in missing:
                slicer.util.pip_install([name])
            if needRevnets:
                self._installTorchIfPossible()
                slicer.util.pip_install([str(SOURCE_ROOT)])
        importlib.invalidate_caches()
        wanted = missing + (["revnets"] if needRevnets else [])
        return all(importlib.util.find_spec(name) is not None for name in wanted)

    @staticmethod
    def _installTorchIfPossible():
        """Let the PyTorch extension pick the right torch build (CUDA or CPU) when it is installed."""
        try:
            import PyTorchUtils
        except ImportError:
            return
        torchLogic = PyTorchUtils.PyTorchUtilsLogic()
        if not torchLogic.torchInstalled():
            torchLogic.installTorch(askConfirmation=False)

    @staticmethod
    def checkInputs(volumeNodes, channelNames):
        """Raise ValueError (one sentence) unless every channel is set, has voxels and shares one grid."""
        for node, name in zip(volumeNodes, channelNames):
            if node is None or node.GetImageData() is None:
                raise ValueError(f"Select a volume with voxels for {name}.")
        if len({node.GetTransformNodeID() for node in volumeNodes}) > 1:
            raise ValueError("The input channels are under different transforms: harden or remove them first.")
        check_matching_geometry([(node.GetName(), _geometry(node)) for node in volumeNodes])

    def startPrediction(self, volumeNodes, bundle, samples, device, seed, onProgress=None, onLog=None):
        """Write the volumes to a temporary NIfTI and start ``revnets predict``; return the running run."""
        stem = safe_stem(volumeNodes[0].GetName())
        workspace = Workspace()
        try:
            paths = workspace.channel_paths(stem, len(volumeNodes))
            for node, path in zip(volumeNodes, paths):
                _writeVolume(node, path)
            scan = paths[0] if len(paths) == 1 else workspace.stack_channels(stem, len(paths))
        except Exception:
            workspace.remove()
            raise
        request = PredictRequest(
            scan=scan, bundle=bundle.path, samples=int(samples), device=device, seed=int(seed),
            python=self.pythonExecutable(), env=slicer.util.startupEnvironment(),
        )
        run = PredictionRun(request, workspace, on_progress=onProgress, on_log=onLog)
        run.start()
        return run

    def loadResults(self, run, bundle, inputNode):
        """Load the outputs of a finished run into nodes in one subject hierarchy folder.

        Raises:
            RunFailed, RunCancelled: the run did not give outputs.
        """
        outputs = run.result()
        name = inputNode.GetName()
        shNode = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        folderItem = shNode.CreateFolderItem(shNode.GetSceneItemID(), f"{name} revnets {bundle.name}")
        consensus = slicer.util.loadVolume(str(outputs.files["seg"]), {"labelmap": True, "show": False})
        present = {int(value) for value in np.unique(slicer.util.arrayFromVolume(consensus))}
        values = sorted(present | set(bundle.labels))
        colorNode = _labelColorNode(f"{name} {bundle.name} labels", bundle.labels, values)
        segmentation = _segmentationFromLabelmap(consensus, colorNode, f"{name} consensus")
        slicer.mrmlScene.RemoveNode(consensus)
        samples = []
        for k, path in enumerate(outputs.split_samples(run.workspace.root / "samples")):
            properties = {"labelmap": True, "show": False, "name": f"{name} sample {k + 1}"}
            node = slicer.util.loadVolume(str(path), properties)
            node.GetDisplayNode().SetAndObserveColorNodeID(colorNode.GetID())
            samples.append(node)
        maps = {}
        for key, title in MAPS.items():
            properties = {"show": False, "name": f"{name} {title.lower()}"}
            maps[key] = slicer.util.loadVolume(str(outputs.files[key]), properties)
            _styleUncertaintyMap(maps[key], title)
        for node in [segmentation, *samples, *maps.values()]:
            node.SetAndObserveTransformNodeID(inputNode.GetTransformNodeID())
            shNode.SetItemParent(shNode.GetItemByDataNode(node), folderItem)
        return RevnetsResults(run.workspace, outputs, inputNode, segmentation, samples, maps)

    @staticmethod
    def showUncertainty(results, key, opacity, legend):
        """Show map ``key`` (entropy, mutual_info, variance) over the input, with or without its legend."""
        for name, node in results.maps.items():
            legendNode = slicer.modules.colors.logic().GetColorLegendDisplayNode(node)
            if legendNode is not None:
                legendNode.SetVisibility(legend and name == key)
        slicer.util.setSliceViewerLayers(
            background=results.inputNode, foreground=results.maps[key], foregroundOpacity=opacity
        )

    @staticmethod
    def showSample(results, index):
        """Show sample ``index`` (from 1) as the label layer instead of the consensus; None: the consensus."""
        sample = None if index is None else results.samples[index - 1]
        for composite in slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode"):
            composite.SetLabelVolumeID(sample.GetID() if sample is not None else None)
        results.segmentation.GetDisplayNode().SetVisibility2D(sample is None)


def _geometry(node):
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    return VolumeGeometry.from_affine(node.GetImageData().GetDimensions(), slicer.util.arrayFromVTKMatrix(matrix))


def _writeVolume(node, path):
    """Write ``node`` as NIfTI with its IJK-to-RAS geometry, through a temporary storage node, so the
    node keeps pointing at its own file (``slicer.util.saveNode`` would repoint it at the temporary one)."""
    storage = slicer.mrmlScene.CreateNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    try:
        storage.SetFileName(str(path))
        if not storage.WriteData(node):
            raise RuntimeError(f"Could not write {node.GetName()} to {path}.")
    finally:
        storage.UnRegister(None)


def _labelColorNode(name, labels, values):
    """A colour table with one named colour per label value in ``values`` (0 transparent)."""
    colorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLColorTableNode", name)
    colorNode.SetTypeToUser()
    colorNode.SetNumberOfColors(max(values) + 1)
    colorNode.SetColor(0, labels.get(0, "background"), 0.0, 0.0, 0.0, 0.0)
    for position, value in enumerate(value for value in values if value != 0):
        color = LABEL_COLORS[position % len(LABEL_COLORS)]
        colorNode.SetColor(value, labels.get(value, f"label {value}"), *color, 1.0)
    return colorNode


def _segmentationFromLabelmap(labelmap, colorNode, name):
    """One segment per non-zero label value, named and coloured from ``colorNode``."""
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation.CreateDefaultDisplayNodes()
    segmentation.SetReferenceImageGeometryParameterFromVolumeNode(labelmap)
    voxels = slicer.util.arrayFromVolume(labelmap)
    for value in sorted(int(v) for v in np.unique(voxels) if v != 0):
        color = [0.0, 0.0, 0.0, 0.0]
        colorNode.GetColor(value, color)
        segmentId = segmentation.GetSegmentation().AddEmptySegment("", colorNode.GetColorName(value), color[:3])
        slicer.util.updateSegmentBinaryLabelmapFromArray(
            (voxels == value).astype(np.uint8), segmentation, segmentId, labelmap
        )
    return segmentation


def _styleUncertaintyMap(node, title):
    """Colour map from 0 to the map's maximum, transparent where the map is about zero, with a legend."""
    top = float(np.max(slicer.util.arrayFromVolume(node))) or 1.0
    display = node.GetDisplayNode()
    display.SetAndObserveColorNodeID(MAP_COLORS)
    display.SetAutoWindowLevel(False)
    display.SetWindowLevelMinMax(0.0, top)
    display.SetApplyThreshold(True)
    display.SetLowerThreshold(0.05 * top)
    display.SetUpperThreshold(top)
    legend = slicer.modules.colors.logic().AddDefaultColorLegendDisplayNode(node)
    legend.SetTitleText(title)
    legend.SetVisibility(False)


class RevnetsSegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Inputs, Apply / Cancel with progress, and the results: segments, samples, uncertainty, export."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._run = None
        self._runBundle = None
        self._runInput = None
        self._started = 0.0
        self._results = None
        self._bundles = []
        self._timer = qt.QTimer()
        self._timer.setInterval(200)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/RevnetsSegmentation.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = RevnetsSegmentationLogic()
        self.inputSelectors = [
            self.ui.inputVolumeSelector0, self.ui.inputVolumeSelector1, self.ui.inputVolumeSelector2,
            self.ui.inputVolumeSelector3,
        ]
        self.inputLabels = [
            self.ui.inputVolumeLabel0, self.ui.inputVolumeLabel1, self.ui.inputVolumeLabel2, self.ui.inputVolumeLabel3
        ]

        self.ui.deviceComboBox.addItems(list(DEVICES))
        for key, title in MAPS.items():
            self.ui.uncertaintyMapComboBox.addItem(title, key)
        self._bundles = self.logic.shippedBundles()
        self.ui.bundleComboBox.addItems([bundle.name for bundle in self._bundles] + [OTHER_FOLDER])
        self.ui.pythonPathLineEdit.currentPath = str(qt.QSettings().value(PYTHON_SETTING, "") or "")

        self.ui.bundleComboBox.currentIndexChanged.connect(self.onBundleChanged)
        self.ui.bundlePathLineEdit.currentPathChanged.connect(self.onBundleChanged)
        for selector in self.inputSelectors:
            selector.currentNodeChanged.connect(self.updateButtons)
        self.ui.applyButton.clicked.connect(self.onApply)
        self.ui.cancelButton.clicked.connect(self.onCancel)
        self.ui.showSampleCheckBox.toggled.connect(self.onSampleChanged)
        self.ui.sampleSliderWidget.valueChanged.connect(self.onSampleChanged)
        self.ui.uncertaintyMapComboBox.currentIndexChanged.connect(self.onUncertaintyChanged)
        self.ui.opacitySliderWidget.valueChanged.connect(self.onUncertaintyChanged)
        self.ui.showLegendCheckBox.toggled.connect(self.onUncertaintyChanged)
        self.ui.exportButton.clicked.connect(self.onExport)
        self._timer.timeout.connect(self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.onBundleChanged()
        self.showResults(None)

    def cleanup(self):
        self.onCancel()
        self.showResults(None)
        self.removeObservers()

    def onSceneStartClose(self, caller, event):
        self.onCancel()
        self.showResults(None)

    def selectedBundle(self):
        """The bundle chosen in the combo box or folder field; None (with the reason shown) if unusable."""
        index = self.ui.bundleComboBox.currentIndex
        custom = index >= len(self._bundles)
        self.ui.bundleFolderLabel.setVisible(custom)
        self.ui.bundlePathLineEdit.setVisible(custom)
        if not custom:
            return self._bundles[index]
        folder = self.ui.bundlePathLineEdit.currentPath
        if not folder:
            self.ui.bundleInfoLabel.text = "Choose a bundle folder."
            return None
        try:
            return read_bundle(Path(folder))
        except BundleError as error:
            self.ui.bundleInfoLabel.text = str(error)
            return None

    def onBundleChanged(self, *_):
        bundle = self.selectedBundle()
        channels = bundle.channels if bundle is not None else ("Input volume",)
        if bundle is not None:
            labels = ", ".join(f"{value} {name}" for value, name in sorted(bundle.labels.items()))
            self.ui.bundleInfoLabel.text = (
                f"{bundle.task}\nInputs: {', '.join(channels)}. Labels: {labels or 'unnamed'}."
            )
            if bundle.num_samples:
                self.ui.samplesSliderWidget.value = bundle.num_samples
        if len(channels) > len(self.inputSelectors):
            self.ui.bundleInfoLabel.text = f"This module takes at most {len(self.inputSelectors)} input channels."
        for k, (selector, label) in enumerate(zip(self.inputSelectors, self.inputLabels)):
            used = k < len(channels)
            selector.setVisible(used)
            label.setVisible(used)
            if used:
                label.text = f"{channels[k]}:"
        self.updateButtons()

    def volumeNodes(self, bundle):
        return [selector.currentNode() for selector in self.inputSelectors[: len(bundle.channels)]]

    def updateButtons(self, *_):
        bundle = self.selectedBundle()
        running = self._run is not None
        ready = bundle is not None and len(bundle.channels) <= len(self.inputSelectors)
        ready = ready and all(node is not None for node in self.volumeNodes(bundle))
        self.ui.applyButton.enabled = ready and not running
        self.ui.cancelButton.enabled = running
        for widget in (self.ui.inputsCollapsibleButton, self.ui.parametersCollapsibleButton):
            widget.enabled = not running

    def onApply(self):
        bundle = self.selectedBundle()
        if bundle is None:
            return
        nodes = self.volumeNodes(bundle)
        qt.QSettings().setValue(PYTHON_SETTING, self.ui.pythonPathLineEdit.currentPath.strip())
        try:
            self.logic.checkInputs(nodes, bundle.channels)
            if not self.logic.installDependencies():
                return
        except (ValueError, RuntimeError) as error:
            slicer.util.errorDisplay(str(error))
            return
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = "Writing the input..."
        slicer.app.processEvents()
        try:
            self._run = self.logic.startPrediction(
                nodes, bundle, self.ui.samplesSliderWidget.value, self.ui.deviceComboBox.currentText,
                self.ui.seedSpinBox.value, onProgress=self.onProgress, onLog=logging.info,
            )
        except (RunFailed, ValueError, RuntimeError) as error:
            self.ui.statusLabel.text = f"Failed: {error}"
            slicer.util.errorDisplay(str(error))
            return
        self._runBundle, self._runInput, self._started = bundle, nodes[0], time.monotonic()
        self.ui.statusLabel.text = "Starting revnets..."
        self._timer.start()
        self.updateButtons()

    def onProgress(self, progress):
        self.ui.progressBar.value = progress.percent
        self.ui.statusLabel.text = progress.stage

    def onPoll(self):
        if self._run.poll():
            return
        self._timer.stop()
        run, self._run = self._run, None
        try:
            with slicer.util.WaitCursor():
                results = self.logic.loadResults(run, self._runBundle, self._runInput)
        except RunCancelled:
            self.ui.statusLabel.text = "Cancelled."
        except RunFailed as error:
            self.ui.statusLabel.text = f"Failed: {error}"
            slicer.util.errorDisplay(str(error))
        else:
            self.showResults(results)
            self.ui.statusLabel.text = f"Done in {time.monotonic() - self._started:.0f} s."
        self.updateButtons()

    def onCancel(self):
        if self._run is not None:
            self.ui.statusLabel.text = "Cancelling..."
            self._run.cancel()
            self.onPoll()

    def showResults(self, results):
        """Make ``results`` current (None: none); the previous result's temporary files are deleted."""
        if self._results is not None and self._results is not results:
            self._results.workspace.remove()
        self._results = results
        has = results is not None
        for widget in (self.ui.showSampleCheckBox, self.ui.sampleSliderWidget, self.ui.uncertaintyMapComboBox,
                       self.ui.opacitySliderWidget, self.ui.showLegendCheckBox, self.ui.exportButton):
            widget.enabled = has
        self.ui.segmentsTableView.setSegmentationNode(results.segmentation if has else None)
        if has:
            self.ui.sampleSliderWidget.maximum = len(results.samples)
            self.ui.showSampleCheckBox.checked = False
            self.onUncertaintyChanged()

    def onSampleChanged(self, *_):
        if self._results is not None:
            index = int(self.ui.sampleSliderWidget.value) if self.ui.showSampleCheckBox.checked else None
            self.logic.showSample(self._results, index)

    def onUncertaintyChanged(self, *_):
        if self._results is not None:
            self.logic.showUncertainty(
                self._results, self.ui.uncertaintyMapComboBox.currentData, self.ui.opacitySliderWidget.value,
                self.ui.showLegendCheckBox.checked,
            )

    def onExport(self):
        folder = self.ui.exportPathLineEdit.currentPath
        if not folder:
            slicer.util.errorDisplay("Choose an export folder first.")
            return
        try:
            written = self._results.outputs.export(Path(folder))
        except OutputError as error:
            if not slicer.util.confirmOkCancelDisplay(f"{error} Replace those files?"):
                return
            written = self._results.outputs.export(Path(folder), overwrite=True)
        self.ui.exportPathLineEdit.addCurrentPathToHistory()
        self.ui.statusLabel.text = "Exported " + ", ".join(path.name for path in written) + "."


class RevnetsSegmentationTest(ScriptedLoadableModuleTest):
    """In-Slicer self-test: a sample head MRI through the shipped tissue bundle with 2 samples."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_channels_off_the_grid_are_refused()
        self.setUp()
        self.test_bundle_on_a_head_mri_gives_segments_samples_and_maps()

    def test_channels_off_the_grid_are_refused(self):
        import SampleData

        t1 = SampleData.downloadSample("MRHead")
        other = slicer.modules.volumes.logic().CloneVolume(slicer.mrmlScene, t1, "MRHead coarse")
        other.SetSpacing(2.0, 2.0, 2.0)
        with self.assertRaises(GeometryMismatch):
            RevnetsSegmentationLogic.checkInputs([t1, other, t1, t1], ("T1", "T1ce", "T2", "FLAIR"))
        RevnetsSegmentationLogic.checkInputs([t1, t1], ("T1", "T2"))

    def test_bundle_on_a_head_mri_gives_segments_samples_and_maps(self):
        import SampleData

        volume = SampleData.downloadSample("MRHead")
        logic = RevnetsSegmentationLogic()
        bundle = {b.name: b for b in logic.shippedBundles()}["invres_brain_tissue"]
        self.assertTrue(logic.installDependencies(), "the Python packages are needed for this test")
        stages = []
        run = logic.startPrediction([volume], bundle, 2, "auto", 0, onProgress=stages.append)
        while run.poll():
            slicer.app.processEvents()
            time.sleep(0.2)
        results = logic.loadResults(run, bundle, volume)
        self.assertTrue(stages and stages[-1].percent == 100)
        segmentation = results.segmentation.GetSegmentation()
        names = {segmentation.GetNthSegment(k).GetName() for k in range(segmentation.GetNumberOfSegments())}
        self.assertTrue(names and names <= set(bundle.labels.values()), names)
        self.assertEqual(len(results.samples), 2)
        self.assertEqual(set(results.maps), {"entropy", "mutual_info", "variance"})
        for node in [*results.samples, *results.maps.values()]:
            self.assertEqual(node.GetImageData().GetDimensions(), volume.GetImageData().GetDimensions())
        logic.showUncertainty(results, "mutual_info", 0.5, True)
        composite = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceCompositeNode()
        self.assertEqual(composite.GetForegroundVolumeID(), results.maps["mutual_info"].GetID())
        logic.showSample(results, 2)
        self.assertEqual(composite.GetLabelVolumeID(), results.samples[1].GetID())
        exportFolder = Path(slicer.app.temporaryPath) / "RevnetsSegmentationTest"
        self.assertEqual(len(results.outputs.export(exportFolder, overwrite=True)), 5)
        shutil.rmtree(exportFolder)
        run.workspace.remove()
        self.delayDisplay("Revnets Segmentation self-test passed")
