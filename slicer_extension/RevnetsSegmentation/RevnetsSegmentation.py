"""3D Slicer module: run a revnets bundle on the loaded scan and show the consensus segmentation, the
samples one at a time and where the model is unsure; export everything as NIfTI.

This file is the Qt part: the module description, the widget and the in-Slicer self-test. The logic
(``RevnetsSegmentationLib.logic``) works at the MRML level without Qt and is tested with Slicer's MRML
libraries outside the application; the rest of the Lib (bundles, geometry, running and cancelling
``revnets predict``, outputs, installation) is plain Python tested with pytest.
"""

import importlib
import importlib.util
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import qt
import slicer
import vtk
from RevnetsSegmentationLib.bundles import BundleError, find_bundles, read_bundle
from RevnetsSegmentationLib.geometry import GeometryMismatch
from RevnetsSegmentationLib.installer import (
    MINIMUM_SLICER,
    find_payload,
    split_requirements,
    torch_constraint,
    unsupported_reason,
    wheel_requirements,
)
from RevnetsSegmentationLib.logic import INPUT_REFERENCE, MAX_CHANNELS, RevnetsSegmentationLogic
from RevnetsSegmentationLib.outputs import MAPS, OutputError
from RevnetsSegmentationLib.runner import DEVICES, RunCancelled
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MODULE_DIR = Path(__file__).resolve().parent
PYTHON_SETTING = "RevnetsSegmentation/PythonExecutable"
TRUSTED_SETTING = "RevnetsSegmentation/TrustedBundleFolders"
OTHER_FOLDER = "Other bundle folder..."


def _unsupported():
    return unsupported_reason(tuple(sys.version_info), slicer.app.applicationVersion)


class RevnetsSegmentation(ScriptedLoadableModule):
    """Module description shown in Slicer."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Revnets Segmentation"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["revnets contributors"]
        reason = _unsupported()
        self.parent.helpText = (f"<b>{reason}</b><br>" if reason else "") + (
            "Segment the loaded scan with a revnets bundle (memory-efficient reversible 3D networks) and see "
            "where the model is unsure: the consensus segmentation, the sampled segmentations one at a time, "
            "and predictive entropy, mutual information or variance as a colour overlay. "
            f"Needs 3D Slicer {MINIMUM_SLICER} or later and the PyTorch extension. "
            "The shipped bundles are demonstration models, not for clinical use."
        )
        self.parent.acknowledgementText = (
            "Runs the revnets command in a subprocess, as SlicerMONAIAuto3DSeg and SlicerTotalSegmentator run "
            "their models. Bundles follow the MONAI bundle format."
        )
        if reason:
            logging.warning(reason)


class RevnetsSegmentationWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Inputs, Apply / Cancel with progress, and the results: segments, samples, uncertainty, export."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._updatingGUI = False
        self._run = None
        self._runBundle = None
        self._runInput = None
        self._runOutput = None
        self._started = 0.0
        self._results = None
        self._bundles = []
        self._timer = qt.QTimer()
        self._timer.setInterval(200)

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        reason = _unsupported()
        if reason:  # an older Slicer: say why here instead of failing later
            label = qt.QLabel(reason)
            label.wordWrap = True
            self.layout.addWidget(label)
            self.layout.addStretch(1)
            return
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
        payload = find_payload(MODULE_DIR)
        self._bundles = find_bundles(payload.bundles) if payload.bundles else []
        self.ui.bundleComboBox.addItems([bundle.name for bundle in self._bundles] + [OTHER_FOLDER])
        self.ui.pythonPathLineEdit.currentPath = str(qt.QSettings().value(PYTHON_SETTING, "") or "")

        self.ui.bundleComboBox.currentIndexChanged.connect(self.updateParameterNodeFromGUI)
        self.ui.bundlePathLineEdit.currentPathChanged.connect(self.updateParameterNodeFromGUI)
        for selector in [*self.inputSelectors, self.ui.outputSegmentationSelector]:
            selector.currentNodeChanged.connect(self.updateParameterNodeFromGUI)
        self.ui.samplesSliderWidget.valueChanged.connect(self.updateParameterNodeFromGUI)
        self.ui.deviceComboBox.currentIndexChanged.connect(self.updateParameterNodeFromGUI)
        self.ui.seedSpinBox.valueChanged.connect(self.updateParameterNodeFromGUI)
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
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneEndImport)
        self.initializeParameterNode()

    # Parameter node: the user's choices and the current result, saved with the scene ---------------------

    def enter(self):
        if self.logic is not None:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        self.showResults(self.logic.resultsFromParameterNode(self._parameterNode))

    def setParameterNode(self, parameterNode):
        if self._parameterNode is not None:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self._parameterNode = parameterNode
        if parameterNode is not None:
            self.addObserver(parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode)
        self.updateGUIFromParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None):
        if self._parameterNode is None or self._updatingGUI:
            return
        self._updatingGUI = True
        try:
            node = self._parameterNode
            choice = node.GetParameter("Bundle")
            names = [bundle.name for bundle in self._bundles]
            if choice in names:
                self.ui.bundleComboBox.currentIndex = names.index(choice)
            elif choice:
                self.ui.bundleComboBox.currentIndex = len(names)
                self.ui.bundlePathLineEdit.currentPath = choice
            for selector, volume in zip(self.inputSelectors, self.logic.inputNodes(node, MAX_CHANNELS)):
                selector.setCurrentNode(volume)
            self.ui.outputSegmentationSelector.setCurrentNode(node.GetNodeReference("OutputSegmentation"))
            self.ui.samplesSliderWidget.value = int(node.GetParameter("Samples"))
            self.ui.deviceComboBox.currentIndex = max(0, self.ui.deviceComboBox.findText(node.GetParameter("Device")))
            self.ui.seedSpinBox.value = int(node.GetParameter("Seed"))
        finally:
            self._updatingGUI = False
        self.onBundleChanged()

    def updateParameterNodeFromGUI(self, *_):
        if self._parameterNode is None or self._updatingGUI:
            return
        node = self._parameterNode
        wasModified = node.StartModify()
        index = self.ui.bundleComboBox.currentIndex
        custom = index >= len(self._bundles)
        node.SetParameter("Bundle", self.ui.bundlePathLineEdit.currentPath if custom else self._bundles[index].name)
        for k, selector in enumerate(self.inputSelectors):
            node.SetNodeReferenceID(INPUT_REFERENCE.format(k), selector.currentNodeID)
        node.SetNodeReferenceID("OutputSegmentation", self.ui.outputSegmentationSelector.currentNodeID)
        node.SetParameter("Samples", str(int(self.ui.samplesSliderWidget.value)))
        node.SetParameter("Device", self.ui.deviceComboBox.currentText)
        node.SetParameter("Seed", str(self.ui.seedSpinBox.value))
        node.EndModify(wasModified)

    # Bundles and inputs ----------------------------------------------------------------------------------

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

    def onBundleChanged(self):
        bundle = self.selectedBundle()
        channels = bundle.channels if bundle is not None else ("Input volume",)
        if bundle is not None:
            labels = ", ".join(f"{value} {name}" for value, name in sorted(bundle.labels.items()))
            self.ui.bundleInfoLabel.text = (
                f"{bundle.task}\nInputs: {', '.join(channels)}. Labels: {labels or 'unnamed'}."
            )
        if len(channels) > MAX_CHANNELS:
            self.ui.bundleInfoLabel.text = f"This module takes at most {MAX_CHANNELS} input channels."
        for k, (selector, label) in enumerate(zip(self.inputSelectors, self.inputLabels)):
            used = k < len(channels)
            selector.setVisible(used)
            label.setVisible(used)
            if used:
                label.text = f"{channels[k]}:"
        self.updateButtons()

    def volumeNodes(self, bundle):
        return [selector.currentNode() for selector in self.inputSelectors[: len(bundle.channels)]]

    def updateButtons(self):
        bundle = self.selectedBundle()
        running = self._run is not None
        ready = bundle is not None and len(bundle.channels) <= MAX_CHANNELS
        self.ui.applyButton.enabled = ready and not running
        self.ui.applyButton.toolTip = "Start the segmentation" if ready else "Choose a usable bundle first"
        self.ui.cancelButton.enabled = running
        for widget in (self.ui.inputsCollapsibleButton, self.ui.parametersCollapsibleButton):
            widget.enabled = not running

    # Running ---------------------------------------------------------------------------------------------

    def onApply(self):
        bundle = self.selectedBundle()
        if bundle is None:
            return
        nodes = self.volumeNodes(bundle)
        qt.QSettings().setValue(PYTHON_SETTING, self.ui.pythonPathLineEdit.currentPath.strip())
        try:
            self.logic.checkInputs(nodes, bundle.channels)
            trust = self.confirmTrust(bundle)
            if trust is None or not self.installDependencies():
                return
        except (ValueError, RuntimeError) as error:
            slicer.util.errorDisplay(str(error))
            return
        self.ui.progressBar.value = 0
        self.ui.statusLabel.text = "Writing the input..."
        try:
            self._run = self.logic.startPrediction(
                nodes, bundle, self.ui.samplesSliderWidget.value, self.ui.deviceComboBox.currentText,
                self.ui.seedSpinBox.value, python=self.pythonExecutable(), env=slicer.util.startupEnvironment(),
                trust=trust, onProgress=self.onProgress, onLog=logging.info,
            )
        except Exception as error:  # the run's folder is already deleted; the GUI stays usable
            self.ui.statusLabel.text = f"Failed: {error}"
            slicer.util.errorDisplay(str(error))
            return
        self._runBundle, self._runInput, self._started = bundle, nodes[0], time.monotonic()
        self._runOutput = self.ui.outputSegmentationSelector.currentNode()
        self.ui.statusLabel.text = "Starting revnets..."
        self._timer.start()
        self.updateButtons()

    def confirmTrust(self, bundle):
        """False for a shipped bundle; True for another folder the user trusts (asked once per folder);
        None when the user declines."""
        if any(bundle.path == shipped.path for shipped in self._bundles):
            return False
        folder = str(bundle.path.resolve())
        trusted = list(qt.QSettings().value(TRUSTED_SETTING, []) or [])
        if folder in trusted:
            return True
        if not slicer.util.confirmOkCancelDisplay(
            f"{folder} is not one of the bundles shipped with revnets. A bundle's configs can run Python code "
            "on this computer. Run it only if you trust its source. Run it (you will not be asked again for "
            "this folder)?",
            "Run an untrusted bundle?",
        ):
            return None
        qt.QSettings().setValue(TRUSTED_SETTING, [*trusted, folder])
        return True

    @staticmethod
    def pythonExecutable():
        """The Python that runs revnets: the one chosen in the module, else Slicer's own (PythonSlicer)."""
        chosen = str(qt.QSettings().value(PYTHON_SETTING, "") or "")
        return chosen or shutil.which("PythonSlicer") or sys.executable

    def installDependencies(self):
        """Install what Slicer's Python lacks after asking; False when the user declines.

        Slicer's Python always needs nibabel (the module reads the outputs with it). Unless another Python
        with revnets was chosen, it also needs revnets: from the wheel the extension carries (or the source
        tree), PyTorch through the PyTorch extension, and the other requirements from pip with torch held
        at its installed version and SimpleITK left to Slicer.
        """
        needNibabel = importlib.util.find_spec("nibabel") is None
        needRevnets = not qt.QSettings().value(PYTHON_SETTING, "") and importlib.util.find_spec("revnets") is None
        if not needNibabel and not needRevnets:
            return True
        package = find_payload(MODULE_DIR).package
        if needRevnets and package is None:
            raise RuntimeError(
                "This extension carries no revnets package to install: reinstall the extension, or choose a "
                "'Python with revnets' under Parameters."
            )
        try:
            import PyTorchUtils
        except ImportError:
            PyTorchUtils = None
        if needRevnets and PyTorchUtils is None:
            raise RuntimeError(
                "Revnets Segmentation needs the PyTorch extension: install it from the Extensions Manager."
            )
        wanted = ["nibabel"] if needNibabel else []
        if needRevnets:
            wanted.append(f"revnets with PyTorch and MONAI (from {package})")
        if not slicer.util.confirmOkCancelDisplay(
            "Revnets Segmentation needs these Python packages in Slicer: " + ", ".join(wanted) + ".\n"
            "Install them now? This needs a network connection and can take several minutes. "
            "Alternatively, cancel and choose a 'Python with revnets' under Parameters.",
            "Install Python packages",
        ):
            return False
        with slicer.util.tryWithErrorDisplay("Installing the Python packages failed.", waitCursor=True):
            if needNibabel:
                slicer.util.pip_install(["nibabel"])
            if needRevnets:
                self._installRevnets(package, PyTorchUtils.PyTorchUtilsLogic())
        importlib.invalidate_caches()
        return importlib.util.find_spec("nibabel") is not None and (
            not needRevnets or importlib.util.find_spec("revnets") is not None
        )

    @staticmethod
    def _installRevnets(package, torchLogic):
        if package.suffix == ".whl":
            forPip, torchVersion = split_requirements(wheel_requirements(package))
        else:  # the source tree: its requirements are read by pip itself, torch must be there first
            forPip, torchVersion = [], ""
        if not torchLogic.torchInstalled():
            if torchLogic.installTorch(askConfirmation=True, torchVersionRequirement=torchVersion) is None:
                raise RuntimeError("PyTorch was not installed: Revnets Segmentation cannot run without it.")
        with tempfile.TemporaryDirectory() as folder:
            constraints = Path(folder) / "constraints.txt"
            constraints.write_text(torch_constraint(torchLogic.torch.__version__), encoding="utf-8")
            if forPip:
                slicer.util.pip_install([*forPip, "--constraint", str(constraints)])
            if package.suffix == ".whl":
                slicer.util.pip_install([str(package), "--no-deps"])
            else:
                slicer.util.pip_install([str(package), "--constraint", str(constraints)])

    def onProgress(self, progress):
        self.ui.progressBar.value = progress.percent
        self.ui.statusLabel.text = progress.stage

    def onPoll(self):
        """Called by the timer: pass on progress; once the run has ended, load its results. Every path
        ends with the buttons restored and, on failure, the run's files deleted (by the logic)."""
        try:
            if self._run.poll():
                return
        except Exception as error:
            self._finishRun(f"Failed: {error}", error)
            return
        run, bundle, inputNode, output = self._run, self._runBundle, self._runInput, self._runOutput
        try:
            with slicer.util.WaitCursor():
                results = self.logic.loadResults(run, bundle, inputNode, outputSegmentation=output)
        except RunCancelled:
            self._finishRun("Cancelled.")
        except Exception as error:
            self._finishRun(f"Failed: {error}", error)
        else:
            self._finishRun(f"Done in {time.monotonic() - self._started:.0f} s.")
            self.logic.storeResults(self._parameterNode, results)
            self.showResults(results)

    def _finishRun(self, status, error=None):
        if self._run is not None and not self._run.finished:  # polling itself failed: end the tree now
            self.stopRunNow()
        self._timer.stop()
        self._run = None
        self.ui.statusLabel.text = status
        self.updateButtons()
        if error is not None:
            logging.exception(error)
            slicer.util.errorDisplay(str(error))

    def onCancel(self):
        """Ask the run's process tree to stop; the timer keeps polling until it has, so the GUI never waits."""
        if self._run is not None:
            self.ui.statusLabel.text = "Cancelling..."
            self.ui.cancelButton.enabled = False
            self._run.cancel()

    def stopRunNow(self):
        """Closing: kill the run's process tree, give it a moment to exit, delete its files."""
        if self._run is None:
            return
        self._run.cancel(grace=0)
        try:
            self._run.wait(timeout=2.0)
        except Exception:  # cancelled or still exiting: either way the run is abandoned
            pass
        self._run.workspace.remove()
        self._timer.stop()
        self._run = None

    def cleanup(self):
        if self.logic is None:
            return
        self.stopRunNow()
        self.showResults(None)
        self.removeObservers()

    def onSceneStartClose(self, caller, event):
        self.stopRunNow()
        self.showResults(None)
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onSceneEndImport(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    # Results ---------------------------------------------------------------------------------------------

    def showResults(self, results):
        """Make ``results`` current (None: none); the previous result's temporary files are deleted."""
        if self._results is not None and self._results is not results and self._results.workspace is not None:
            self._results.workspace.remove()
        self._results = results
        has = results is not None
        for widget in (self.ui.showSampleCheckBox, self.ui.sampleSliderWidget, self.ui.uncertaintyMapComboBox,
                       self.ui.opacitySliderWidget, self.ui.showLegendCheckBox):
            widget.enabled = has
        self.ui.exportButton.enabled = has and results.outputs is not None
        self.ui.exportButton.toolTip = (
            "Copy the five NIfTI files into the folder" if self.ui.exportButton.enabled
            else "The files of a result loaded with a scene are in the scene: save its nodes from Save Data"
        )
        self.ui.segmentsTableView.setSegmentationNode(results.segmentation if has else None)
        if has:
            self.ui.sampleSliderWidget.maximum = results.numberOfSamples
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
    """In-Slicer self-test of what the MRML-level tests outside Slicer cannot reach: the widget.

    A head MRI from Sample Data goes through the shipped tissue bundle with 2 samples, driven through the
    widget's own Apply and timer; then the results in the widget (segments table, sample slider, map
    selector) and the slice views.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_widget_runs_the_tissue_bundle_and_shows_the_results()

    def test_widget_runs_the_tissue_bundle_and_shows_the_results(self):
        import SampleData

        volume = SampleData.downloadSample("MRHead")
        slicer.util.selectModule("RevnetsSegmentation")
        widget = slicer.modules.RevnetsSegmentationWidget
        self.assertIsNone(widget.ui.inputVolumeSelector0.currentNode(), "the input selectors start empty")
        widget.ui.bundleComboBox.currentIndex = [b.name for b in widget._bundles].index("invres_brain_tissue")
        widget.ui.inputVolumeSelector0.setCurrentNode(volume)
        widget.ui.samplesSliderWidget.value = 2
        self.assertTrue(widget.installDependencies(), "the Python packages are needed for this test")
        widget.onApply()
        while widget._run is not None:
            slicer.app.processEvents()
            time.sleep(0.1)
        self.assertIsNotNone(widget._results, widget.ui.statusLabel.text)
        self.assertTrue(widget.ui.applyButton.enabled)
        self.assertGreater(widget.ui.segmentsTableView.segmentationNode().GetSegmentation().GetNumberOfSegments(), 0)
        widget.ui.showSampleCheckBox.checked = True
        widget.ui.sampleSliderWidget.value = 2
        composite = slicer.app.layoutManager().sliceWidget("Red").mrmlSliceCompositeNode()
        self.assertEqual(composite.GetLabelVolumeID(), widget._results.sampleNode.GetID())
        widget.ui.uncertaintyMapComboBox.currentIndex = 1
        self.assertEqual(composite.GetForegroundVolumeID(), widget._results.maps["mutual_info"].GetID())
        with self.assertRaises(GeometryMismatch):
            other = slicer.modules.volumes.logic().CloneVolume(slicer.mrmlScene, volume, "MRHead coarse")
            other.SetSpacing(2.0, 2.0, 2.0)
            widget.logic.checkInputs([volume, other], ("T1", "T2"))
        self.delayDisplay("Revnets Segmentation self-test passed")
