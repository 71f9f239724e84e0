"""Running ``revnets predict`` as a subprocess for the Slicer module, without MRML.

The command runs with ``--progress lines``: it prints ``PROGRESS <percent> <stage>`` and ``wrote <path>``
lines on stdout and, for a user error, one ``revnets: error: ...`` line on stderr. Two threads read the
pipes into a queue; :meth:`PredictionRun.poll`, called from the caller's thread (a Qt timer in Slicer),
hands the lines to the callbacks, so they may touch the GUI. A run that fails or is cancelled deletes its
workspace; a run that succeeds leaves the outputs there until the caller removes it.

The command starts in a process group of its own (a new session on POSIX, a new process group on Windows),
so Cancel reaches the whole tree: Slicer's ``PythonSlicer`` is a launcher whose child does the work and
holds the pipes. Cancel never waits: it asks the group to stop and returns; :meth:`PredictionRun.poll`
kills the group if it is still there after the grace period.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from RevnetsSegmentationLib.outputs import OutputError, PredictionOutputs
from RevnetsSegmentationLib.workspace import Workspace

DEVICES = ("auto", "cpu", "cuda")
_PROGRESS = re.compile(r"^PROGRESS (\d+) (.*)$")
_WROTE = re.compile(r"^wrote (.+)$")
_ERROR = re.compile(r"^revnets(?: \w+)?: error: (.+)$")
_WINDOWS = sys.platform == "win32"
# The child prints UTF-8 whatever the system's code page (a non-ASCII Windows user name in a path).
UTF8 = {"PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8"}


class RunFailed(RuntimeError):
    """The command failed; the message is one readable sentence (the command's own error when it gave one)."""


class RunCancelled(RuntimeError):
    """The run was cancelled before it finished."""


@dataclass(frozen=True)
class Progress:
    """One ``PROGRESS`` line: ``percent`` done (0-100) and the ``stage`` (``"scan: sampling"``)."""

    percent: int
    stage: str


def parse_progress(line: str) -> Progress | None:
    """``"PROGRESS 40 scan: sampling"`` -> ``Progress(40, "scan: sampling")``; None for any other line."""
    match = _PROGRESS.match(line.strip())
    if match is None:
        return None
    return Progress(percent=min(100, int(match.group(1))), stage=match.group(2))


def error_message(stderr: list[str], returncode: int) -> str:
    """One sentence for a failed run, from what the command printed on stderr."""
    for line in reversed(stderr):
        match = _ERROR.match(line.strip())
        if match:
            return match.group(1)
    last = next((line.strip() for line in reversed(stderr) if line.strip()), "")
    how = f"was ended by signal {-returncode}" if returncode < 0 else f"stopped with exit code {returncode}"
    return f"revnets predict {how}" + (f": {last}" if last else " without printing an error.")


@dataclass(frozen=True)
class PredictRequest:
    """What to run: ``python -m revnets.cli predict SCAN --bundle ... --progress lines``.

    Attributes:
        scan: the NIfTI file to segment (3D, or 4D with channels last).
        bundle: the bundle folder.
        samples: number of samples.
        device: ``auto``, ``cpu`` or ``cuda``.
        seed: random seed (the same seed gives the same samples).
        python: the Python that has revnets installed (Slicer's own, or another one).
        env: the environment of the process (None: this process's); UTF-8 output is always asked for.
        trust: the user agreed to run this bundle folder's configs (it is not a shipped bundle).
    """

    scan: Path
    bundle: Path
    samples: int
    device: str = "auto"
    seed: int = 0
    python: str = sys.executable
    env: Mapping[str, str] | None = None
    trust: bool = False

    def arguments(self, output_dir: Path) -> list[str]:
        """The command as an argument list (never a shell string)."""
        return [
            self.python, "-m", "revnets.cli", "predict", str(self.scan),
            "--bundle", str(self.bundle),
            "--output", str(output_dir),
            "--samples", str(self.samples),
            "--device", self.device,
            "--seed", str(self.seed),
            "--progress", "lines",
        ] + (["--trust-bundle"] if self.trust else [])

    def environment(self) -> dict[str, str]:
        """The child's environment: ``env`` (or this process's) with UTF-8 input and output."""
        return {**(os.environ if self.env is None else self.env), **UTF8}


class PredictionRun:
    """One run of ``revnets predict`` on a scan in ``workspace``.

    Args:
        request: what to run.
        workspace: holds the scan; outputs are written to its ``output_dir``.
        on_progress: called with each :class:`Progress`, in the thread that calls :meth:`poll`.
        on_log: called with every other line the command prints (stdout and stderr).
    """

    def __init__(
        self,
        request: PredictRequest,
        workspace: Workspace,
        on_progress: Callable[[Progress], None] | None = None,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        self.request = request
        self.workspace = workspace
        self.on_progress = on_progress
        self.on_log = on_log
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._stderr: list[str] = []
        self._written: list[Path] = []
        self._process: subprocess.Popen | None = None
        self._readers: list[threading.Thread] = []
        self._cancelled = False
        self._kill_at: float | None = None
        self._outcome: PredictionOutputs | Exception | None = None

    def start(self) -> None:
        """Start the command; returns at once.

        Raises:
            RunFailed: the Python could not be started (the workspace is then deleted).
        """
        if self._process is not None:
            raise RuntimeError("this run has already been started")
        try:
            self._process = subprocess.Popen(
                self.request.arguments(self.workspace.output_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
                env=self.request.environment(),
                **_own_process_group(),
            )
        except OSError as error:
            self.workspace.remove()
            raise RunFailed(f"{self.request.python} could not be started ({error.strerror or error}).") from error
        for stream, source in ((self._process.stdout, "stdout"), (self._process.stderr, "stderr")):
            reader = threading.Thread(target=self._read, args=(stream, source), daemon=True)
            reader.start()
            self._readers.append(reader)

    @property
    def finished(self) -> bool:
        """True once the run has an outcome (outputs, failure or cancellation)."""
        return self._outcome is not None

    @property
    def returncode(self) -> int | None:
        """The command's exit status; None before it has ended (negative: ended by that signal)."""
        return None if self._process is None else self._process.poll()

    def poll(self) -> bool:
        """Hand the lines printed so far to the callbacks; return True while the command is still running."""
        if self._outcome is not None:
            return False
        if self._process is None:
            raise RuntimeError("start() the run before polling it")
        ended = self._process.poll() is not None and not any(r.is_alive() for r in self._readers)
        if not ended and self._kill_at is not None and time.monotonic() >= self._kill_at:
            _stop_tree(self._process, kill=True)
            self._kill_at = None
        self._dispatch()
        if ended:
            self._finish()
        return not ended

    def wait(self, timeout: float | None = None, interval: float = 0.1) -> PredictionOutputs:
        """Poll until the command ends and return its outputs (see :meth:`result`).

        Raises:
            TimeoutError: still running after ``timeout`` seconds (the run goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"revnets predict still runs after {timeout} s.")
            time.sleep(interval)
        return self.result()

    def result(self) -> PredictionOutputs:
        """The checked outputs of a finished run.

        Raises:
            RunFailed: the command failed or wrote incomplete outputs.
            RunCancelled: the run was cancelled.
        """
        if self._outcome is None:
            raise RuntimeError("the run has not finished")
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome

    def cancel(self, grace: float = 5.0) -> None:
        """Ask the command's whole process tree to stop and return at once.

        The run ends (outcome :class:`RunCancelled`, workspace deleted) in a later :meth:`poll`, once the
        tree has exited and closed its pipes; a tree still running ``grace`` seconds after the request is
        killed.
        """
        if self._outcome is not None or self._cancelled:
            return
        self._cancelled = True
        if self._process is None:
            self._finish()
            return
        self._kill_at = time.monotonic() + grace
        _stop_tree(self._process, kill=grace <= 0)

    def _read(self, stream, source: str) -> None:
        with stream:
            for line in stream:
                self._lines.put((source, line.rstrip("\r\n")))

    def _dispatch(self) -> None:
        while True:
            try:
                source, line = self._lines.get_nowait()
            except queue.Empty:
                return
            if source == "stderr":
                self._stderr.append(line)
            progress = parse_progress(line) if source == "stdout" else None
            wrote = _WROTE.match(line) if source == "stdout" else None
            if wrote:
                self._written.append(Path(wrote.group(1)))
            if progress is not None and self.on_progress is not None:
                self.on_progress(progress)
            elif progress is None and self.on_log is not None:
                self.on_log(line)

    def _finish(self) -> None:
        returncode = self._process.wait() if self._process is not None else None
        if self._cancelled:
            self._outcome = RunCancelled("the segmentation was cancelled.")
        elif returncode != 0:
            self._outcome = RunFailed(error_message(self._stderr, returncode))
        else:
            try:
                self._outcome = PredictionOutputs.collect(self._written, self.request.scan, self.request.samples)
            except OutputError as error:
                self._outcome = RunFailed(str(error))
        if isinstance(self._outcome, Exception):
            self.workspace.remove()


def _own_process_group() -> dict:
    """``Popen`` arguments that start the command as the leader of a new process group (and no console
    window on Windows)."""
    if _WINDOWS:
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW}
    return {"start_new_session": True}


def _stop_tree(process: subprocess.Popen, kill: bool) -> None:
    """Ask (or, with ``kill``, force) every process in ``process``'s group to stop, without waiting."""
    if _WINDOWS:
        if kill:
            subprocess.run(
                ["taskkill", "/PID", str(process.pid), "/T", "/F"], capture_output=True,
                creationflags=subprocess.CREATE_NO_WINDOW, check=False,
            )
        else:
            process.send_signal(signal.CTRL_BREAK_EVENT)
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
    except ProcessLookupError:
        pass  # the whole group has already exited
