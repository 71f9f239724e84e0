"""Bundles: where the shipped ones are, finding one by name or folder, reading its config and weights safely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from revnets.errors import InputError

if TYPE_CHECKING:
    from torch import nn


class BundleNotFoundError(InputError):
    """Neither a bundle folder nor the name of a shipped bundle."""


class BundleError(InputError):
    """A bundle folder is incomplete or broken: a missing file, invalid JSON, weights that cannot be used."""


def shipped_root() -> Path:
    """The folder holding the shipped bundles (one subfolder each, and ``manifest.json``).

    The installed package's data folder ``revnets/bundles`` if there is one, else the source tree's
    ``bundles/``. This is the only place that knows where the shipped bundles live.
    """
    package = Path(__file__).resolve().parent
    installed = package / "bundles"
    return installed if installed.is_dir() else package.parent / "bundles"


def shipped_bundles() -> dict[str, Path]:
    """The shipped bundles by name (their folder names), sorted."""
    root = shipped_root()
    if not root.is_dir():
        return {}
    return {
        folder.name: folder
        for folder in sorted(root.iterdir())
        if (folder / "configs" / "inference.json").is_file()
    }


def resolve_bundle(name_or_path: str | Path) -> Path:
    """The folder of a bundle given as a folder, or as the name of a shipped bundle (an existing folder wins).

    Raises:
        BundleNotFoundError: ``name_or_path`` is neither a folder nor a shipped bundle's name.
    """
    path = Path(name_or_path)
    if path.is_dir():
        return path
    shipped = shipped_bundles()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    names = ", ".join(shipped) or "none found"
    raise BundleNotFoundError(f"{name_or_path} is neither a bundle folder nor a shipped bundle ({names}).")


def check_config(path: Path) -> None:
    """Check that a bundle config file exists and is valid JSON.

    Raises:
        BundleError: the file is missing, or not JSON (with the line and column).
    """
    if not path.is_file():
        raise BundleError(f"{path.parent.parent} is not a bundle folder: {path} is missing.")
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        if isinstance(error, json.JSONDecodeError):
            where = f"line {error.lineno} column {error.colno}: {error.msg}"
        else:
            where = "not UTF-8 text"
        raise BundleError(f"{path} is not valid JSON ({where}).") from error


def load_weights(network: nn.Module, path: str | Path) -> None:
    """Load a state dict file into ``network`` with ``torch.load(..., weights_only=True)``.

    Raises:
        BundleError: the file is missing, damaged, holds Python objects besides tensors (refused: loading
            them could run code), or its tensors do not fit ``network`` (names or shapes).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise BundleError(f"the model weights {path} are missing.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise BundleError(
            f"{path} holds Python objects besides tensors: refused, because loading them could run code."
        ) from error
    except Exception as error:  # torch raises RuntimeError, EOFError, ... for damaged files
        raise BundleError(f"{path} is not a readable PyTorch weights file ({type(error).__name__}).") from error
    if not isinstance(state, dict):
        raise BundleError(f"{path} is not a state dict (it holds a {type(state).__name__}).")
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        message = f"the weights {path} do not fit the bundle's network ({_mismatch(network, state)})."
        raise BundleError(message) from error


def _mismatch(network: nn.Module, state: dict) -> str:
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and getattr(state[k], "shape", None) != expected[k].shape]
    parts = [
        f"{len(found)} {what}, e.g. {found[0]}"
        for found, what in ((missing, "missing"), (unexpected, "unexpected"), (shapes, "of another shape"))
        if found
    ]
    return "; ".join(parts) or "the tensors do not fit"
