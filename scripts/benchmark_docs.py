"""What the benchmark scripts share: naming the machine and writing their section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, with family and model numbers when the name is generic."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(re.findall(r"^(model name|cpu family|model)\s*:\s*(.+)$", info, re.MULTILINE))
    return f"{fields.get('model name', 'unknown CPU')} (family {fields.get('cpu family')}, model {fields.get('model')})"


def logical_cores() -> int:
    """Logical CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` into ``path`` in place of the previous one under ``heading``, else append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    match = re.search(rf"^{re.escape(heading)}[ \t]*$", text, re.MULTILINE)
    if match is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        following = re.search(r"^## ", text[match.end() :], re.MULTILINE)
        rest = text[match.end() + following.start() :] if following else ""
        text = text[: match.start()] + section + ("\n" + rest if rest else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
