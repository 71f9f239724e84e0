"""What the benchmark scripts share: naming the machine and writing their section of docs/BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
"""Every allocation of at least 128 KiB gets its own mapping, returned to the system when freed: the resident
set then follows the live tensors instead of glibc's heap, whose dynamic threshold keeps freed blocks of up
to 32 MiB resident. glibc reads it when a process starts, so it applies to fresh processes started after
:func:`track_live_tensors`."""


def track_live_tensors() -> None:
    """Set :data:`MALLOC_ENV` (unless already set) for the fresh processes that measure peak memory."""
    for name, value in MALLOC_ENV.items():
        os.environ.setdefault(name, value)


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
