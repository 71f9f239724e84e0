"""``revnets predict`` in a child process that pauses at a chosen point, so that a test can signal it exactly there.

    python -m tests.interrupted_predict POINT READY ARGS...

POINT is ``writing`` (two outputs of a unit are written into its temporary folder, the rest not yet handed
to the writing threads; the child then sleeps until a signal interrupts it) or ``committing`` (two outputs
have been moved into place; the child holds there until SIGINT or SIGTERM is pending, which the commit
defers). READY is a file the child creates on reaching the point. ARGS are the arguments of
``revnets predict``; the exit code is the command's.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from revnets import files
from revnets.cli import main

_PATIENCE_S = 300


def _pause_while_writing(ready: Path) -> None:
    original = files.OutputUnit.path
    calls: list[str] = []

    def path(self: files.OutputUnit, name: str) -> Path:
        # The writer asks for each output's path as it hands the output to a writing thread; at the third
        # request the first two have been handed over: wait until both files exist, then hold there. (Counting
        # files instead would, on a loaded machine, first match in the commit, where signals are deferred.)
        temporary = original(self, name)
        calls.append(name)
        if len(calls) == 3 and not ready.exists():
            deadline = time.monotonic() + _PATIENCE_S
            while len(list(temporary.parent.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            ready.touch()
            time.sleep(_PATIENCE_S)  # a signal ends this
        return temporary

    files.OutputUnit.path = path


def _pause_while_committing(ready: Path) -> None:
    original = os.link
    done: list[str] = []

    def link(source: str | Path, target: str | Path) -> None:
        original(source, target)
        done.append(str(target))
        if len(done) == 2:
            ready.touch()
            deadline = time.monotonic() + _PATIENCE_S
            while not signal.sigpending() & {signal.SIGINT, signal.SIGTERM} and time.monotonic() < deadline:
                time.sleep(0.01)

    files.os.link = link


if __name__ == "__main__":
    point, ready_file, *arguments = sys.argv[1:]
    {"writing": _pause_while_writing, "committing": _pause_while_committing}[point](Path(ready_file))
    sys.exit(main(["predict", *arguments]))
