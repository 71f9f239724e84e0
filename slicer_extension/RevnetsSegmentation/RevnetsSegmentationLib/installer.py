"""What the module needs in Slicer's Python and where it takes it from, without Slicer.

* The Slicer versions it runs in: revnets needs Python 3.10 or later, which Slicer has from 5.10 on
  (Python 3.12); Slicer 5.0-5.8 embed Python 3.9.
* The payload: a packaged extension carries the revnets wheel and the shipped bundles next to the module
  (``RevnetsSegmentationPayload/wheels`` and ``.../bundles``, installed by the CMake rules); run from the
  source tree, the module uses the repository's ``bundles/`` and the repository itself.
* The requirements: the wheel's own ``Requires-Dist``, less PyTorch (installed by the PyTorch extension,
  which picks the CUDA or CPU build) and SimpleITK (Slicer ships its own); pip gets a constraints file
  that holds the installed torch at its version, so resolving MONAI's requirements cannot replace it.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

MINIMUM_SLICER = "5.10"
MINIMUM_PYTHON = (3, 10)
PAYLOAD_FOLDER = "RevnetsSegmentationPayload"
# Installed by other means than pip's resolution: torch through the PyTorch extension, SimpleITK with Slicer.
NOT_FROM_PIP = ("torch", "simpleitk")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def unsupported_reason(python_version: tuple[int, ...], slicer_version: str) -> str | None:
    """Why this Slicer cannot run the module (one sentence), or None when it can."""
    if tuple(python_version[:2]) >= MINIMUM_PYTHON:
        return None
    python = ".".join(str(part) for part in python_version[:2])
    return (
        f"Revnets Segmentation needs 3D Slicer {MINIMUM_SLICER} or later (Python 3.12); this Slicer "
        f"{slicer_version} embeds Python {python}, which revnets and current PyTorch releases do not support."
    )


@dataclass(frozen=True)
class Payload:
    """Where the module takes revnets and the bundles from.

    Attributes:
        bundles: the folder of shipped bundles (None: none found).
        package: what pip installs revnets from: the extension's wheel or the source tree (None: neither).
    """

    bundles: Path | None
    package: Path | None


def find_payload(module_dir: Path) -> Payload:
    """The payload of a packaged extension next to ``module_dir``, else the source tree around it."""
    module_dir = Path(module_dir)
    packaged = module_dir / PAYLOAD_FOLDER
    if packaged.is_dir():
        wheels = sorted((packaged / "wheels").glob("revnets-*.whl"))
        bundles = packaged / "bundles"
        return Payload(bundles=bundles if bundles.is_dir() else None, package=wheels[-1] if wheels else None)
    repository = module_dir.resolve().parents[1]
    bundles = repository / "bundles"
    source = repository if (repository / "pyproject.toml").is_file() else None
    return Payload(bundles=bundles if bundles.is_dir() else None, package=source)


def wheel_requirements(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` entries of ``wheel`` without extras, as pip takes them (``"monai>=1.4"``)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8"))
    return [entry for entry in metadata.get_all("Requires-Dist") or [] if "extra ==" not in entry]


def requirement_name(requirement: str) -> str:
    """The normalised project name of a requirement: ``"SimpleITK>=2.3"`` -> ``"simpleitk"``."""
    match = _NAME.match(requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""


def split_requirements(requirements: list[str]) -> tuple[list[str], str]:
    """``(for pip, torch specifier)``: the requirements pip resolves (without :data:`NOT_FROM_PIP`), and
    the version range torch must satisfy (``">=2.4"``; ``""`` when any torch will do)."""
    for_pip = [r for r in requirements if requirement_name(r) not in NOT_FROM_PIP]
    torch = next((r for r in requirements if requirement_name(r) == "torch"), "torch")
    return for_pip, torch.split(";")[0][len("torch"):].strip()


def torch_constraint(torch_version: str) -> str:
    """Constraints-file text that holds torch at the installed ``torch_version`` (local tag kept)."""
    return f"torch=={torch_version}\n"
