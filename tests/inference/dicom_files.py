"""Small DICOM test data: a volume with a known geometry, and a DICOM object that holds no image."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# A CT geometry with distinct spacings (so swapped axes would show), all exact in float32 and in DICOM's
# decimal strings (so every format carries the very same geometry): (X, Y, Z) voxels.
SHAPE = (20, 16, 7)
AFFINE = np.array([[-0.75, 0, 0, 10.0], [0, -0.625, 0, -20.0], [0, 0, 2.5, -30.0], [0, 0, 0, 1]])


def ct_volume(seed: int = 0, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """A random volume of even Hounsfield values in [-1000, 1000] (exact under a rescale slope of 2)."""
    return (np.random.default_rng(seed).integers(-500, 500, shape) * 2).astype(np.float32)


def _element(group: int, element: int, vr: str, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0" if vr in ("UI", "OB") else b" "
    if vr in ("OB",):
        return struct.pack("<HH2sHI", group, element, vr.encode(), 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr.encode(), len(value)) + value


def write_structured_report(path: Path, series_uid: str) -> Path:
    """A minimal DICOM Basic Text SR object (no pixel data, no image plane), written byte by byte."""
    sop_class, sop_instance = b"1.2.840.10008.5.1.4.1.1.88.11", b"1.2.826.0.1.3680043.10.1447.9.1"
    body = _element(0x0002, 0x0001, "OB", b"\0\1")
    body += _element(0x0002, 0x0002, "UI", sop_class)
    body += _element(0x0002, 0x0003, "UI", sop_instance)
    body += _element(0x0002, 0x0010, "UI", b"1.2.840.10008.1.2.1")
    meta = _element(0x0002, 0x0000, "UL", struct.pack("<I", len(body))) + body
    dataset = _element(0x0008, 0x0016, "UI", sop_class)
    dataset += _element(0x0008, 0x0018, "UI", sop_instance)
    dataset += _element(0x0008, 0x0060, "CS", b"SR")
    dataset += _element(0x0020, 0x000D, "UI", b"1.2.826.0.1.3680043.10.1447.9.2")
    dataset += _element(0x0020, 0x000E, "UI", series_uid.encode())
    path.write_bytes(b"\0" * 128 + b"DICM" + meta + dataset)
    return path
