"""Reading and writing files safely: NIfTI opened with one clear error, outputs written as all-or-none units.

Every file revnets writes (NIfTI outputs, overlay pictures, training checkpoints and histories) goes through
:class:`OutputUnit`, the one owner of atomic writing here:

- The files are first written into a hidden temporary folder inside their output folder
  (``.revnets-partial-XXXXXXXX/<name>.partial``), so no ``*.nii.gz`` glob (not even a recursive one) ever
  sees a partial file, and the final renames stay on one file system.
- On commit each file is moved into place with an existence check that holds at the moment of the move:
  ``os.link`` (which fails if the name exists) then removal of the temporary name. Where the file system
  has no hard links, an ``O_CREAT | O_EXCL`` placeholder claims the name first and ``os.replace`` fills it.
  Two runs writing the same names therefore never replace each other's files unless told to overwrite.
- With ``overwrite``, a file that is replaced is first kept under the temporary folder, so that a failed
  commit can put it back.
- If anything fails (an exception, a full disk, ``KeyboardInterrupt`` or a termination signal turned into
  an exception), every file this unit has moved into place is removed again (replaced ones restored), the
  temporary folder is deleted, and output folders the unit created are removed if empty: all files of the
  unit appear, or none. ``SIGINT`` and ``SIGTERM`` are held back during the few renames of a commit.
- Files in ``protected`` (the inputs: every file of every input, e.g. each file of a BraTS case folder) are
  never replaced, even with ``overwrite``.

What it cannot do: a process killed outright (SIGKILL, power loss) leaves its hidden temporary folder behind
(no ``*.nii.gz`` glob sees it; delete it by hand), and without hard links the placeholder is an empty file
under the final name for the moment of one rename.

This module imports neither torch nor MONAI, so light commands (``revnets overlay``) stay fast.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import shutil
import signal
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

from revnets.errors import InputError, RevnetsError

NIFTI_SUFFIX = re.compile(r"\.nii(\.gz)?$")
AFFINE_TOLERANCE = 1e-4
"""Largest difference between two affines' entries (mm) still taken as the same voxel grid (float32 headers)."""
TEMPORARY_PREFIX = ".revnets-partial-"
PARTIAL_SUFFIX = ".partial"
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}


class OutputError(RevnetsError):
    """An output cannot be written where it was asked for."""


class OutputExistsError(OutputError, FileExistsError):
    """An output file exists and replacing it was not allowed."""


class ProtectedOutputError(OutputError):
    """An output would replace one of the inputs."""


class OutputConflictError(OutputError):
    """Two outputs of one run have the same file name."""


class OutputNotWritableError(OutputError, PermissionError):
    """The output folder cannot be written (permissions, read-only file system, a file in the way)."""


class OutputWriteError(OutputError):
    """Writing failed part way (e.g. the disk is full); nothing of the unit was kept."""


def open_nifti(path: Path) -> nib.Nifti1Image | nib.Nifti2Image:
    """The NIfTI image at ``path`` (header read, data not loaded).

    Raises:
        InputError: the file is missing, not named ``.nii`` / ``.nii.gz``, or not a readable NIfTI image.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    if not NIFTI_SUFFIX.search(path.name):
        raise InputError(f"{path} is not a NIfTI file (.nii or .nii.gz).")
    try:
        image = nib.load(path)
    except PermissionError as error:
        raise InputError(f"{path}: permission denied (the file cannot be read).") from error
    except Exception as error:  # nibabel raises many types for garbage files
        raise InputError(f"{path} is not a readable NIfTI image ({_reason(error)}).") from error
    if not isinstance(image, nib.Nifti1Image | nib.Nifti2Image):
        raise InputError(f"{path} is not a NIfTI image.")
    if image.header.get_data_dtype().fields is not None:
        raise InputError(f"{path} holds RGB colour voxels: revnets reads grey-level scans (one number per voxel).")
    _check_complete(path, image)
    return image


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_complete(path: Path, image: nib.Nifti1Image | nib.Nifti2Image) -> None:
    """Refuse a file with fewer voxel bytes than its header describes (truncated, or a header that is wrong)."""
    offset = int(getattr(image.dataobj, "offset", image.header.get_data_offset()))
    expected = offset + int(np.prod(image.shape, dtype=np.int64)) * image.header.get_data_dtype().itemsize
    try:
        if path.name.endswith(".gz"):
            with open(path, "rb") as stream:
                stream.seek(-4, os.SEEK_END)
                if int.from_bytes(stream.read(4), "little") == expected % 2**32:  # gzip's recorded size: fast path
                    return
            actual = _gunzipped_size(path)
        else:
            actual = path.stat().st_size
    except PermissionError as error:
        raise InputError(f"{path}: permission denied (the file cannot be read).") from error
    except (OSError, EOFError, zlib.error) as error:
        message = f"{path} is truncated or damaged: its compressed data ends early ({_reason(error)})."
        raise InputError(message) from error
    if actual < expected:
        raise InputError(
            f"{path} is truncated (or its header is wrong): the header describes {expected} bytes of header and "
            f"voxels, the file holds {actual}."
        )


def _gunzipped_size(path: Path) -> int:
    size = 0
    with gzip.open(path, "rb") as stream:
        while block := stream.read(1 << 24):
            size += len(block)
    return size


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def _nearest_existing(folder: Path) -> Path:
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _umask_permissions() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold back SIGINT and SIGTERM (delivered afterwards) while the block runs, where the platform allows."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class OutputUnit:
    """A set of output files written all or none (see the module's docstring for how).

    Use as a context manager: write each file to :meth:`path`, and the files are moved into place when the
    block ends without an exception (or at an explicit :meth:`commit`); on an exception nothing is kept::

        unit = OutputUnit({"seg": out / "case_seg.nii.gz"}, protected={scan}, overwrite=False)
        unit.check()                       # optional: refuse early, before any heavy work
        with unit:                         # makes the folder and the temporary folder (proves it writable)
            write(unit.path("seg"))

    Args:
        targets: the final file of each output, by name.
        protected: files that must never be replaced (the inputs).
        overwrite: replace existing files (never protected ones).

    Raises (from :meth:`check`, entering, :meth:`commit`):
        ProtectedOutputError: a target is one of the protected files.
        OutputExistsError: a target exists (at the check, or at the moment it is moved into place) and
            ``overwrite`` is off.
        OutputNotWritableError: a folder cannot be made or written.
        OutputWriteError: the disk is full (or over quota) while writing or committing.
    """

    def __init__(
        self, targets: Mapping[str, str | Path], protected: Iterable[str | Path] = (), overwrite: bool = False
    ) -> None:
        self.targets = {name: Path(path) for name, path in targets.items()}
        if not self.targets:
            raise ValueError("an output unit needs at least one target")
        names = [path.absolute() for path in self.targets.values()]
        if len(set(names)) < len(names):
            raise OutputConflictError(f"two outputs of one unit are the same file: {sorted(map(str, names))}.")
        protected_paths = [Path(p) for p in protected]
        self._protected_paths = {p.resolve() for p in protected_paths}
        self._protected_ids = {i for i in map(_identity, protected_paths) if i is not None}
        self.overwrite = overwrite
        self._temporary: dict[Path, Path] = {}  # output folder -> its temporary folder
        self._created: list[Path] = []  # folders this unit made, outermost first
        self._placed: list[tuple[Path, Path | None]] = []  # (target, kept previous file)
        self._open = False

    @property
    def folders(self) -> list[Path]:
        """The output folders, in order of first appearance."""
        return list(dict.fromkeys(path.parent for path in self.targets.values()))

    def check(self) -> None:
        """Refuse now what would fail later (protected or existing targets, unwritable folders); changes nothing."""
        for path in self.targets.values():
            self._check_not_protected(path)
            if path.is_dir():
                raise OutputNotWritableError(f"{path} is a folder, not a file.")
            if not self.overwrite and os.path.lexists(path):
                raise OutputExistsError(f"{path} exists.")
        for folder in self.folders:
            existing = _nearest_existing(folder)
            if not existing.is_dir():
                raise OutputNotWritableError(f"{existing} is a file, not a folder.")
            if not os.access(existing, os.W_OK | os.X_OK):
                raise OutputNotWritableError(f"permission denied: cannot write in {existing}.")

    def _check_not_protected(self, path: Path) -> None:
        identity = _identity(path)
        if path.resolve() in self._protected_paths or (identity is not None and identity in self._protected_ids):
            raise ProtectedOutputError(f"writing {path} would replace an input file.")

    def __enter__(self) -> OutputUnit:
        if self._open:
            raise RuntimeError("this output unit is already open")
        self.check()
        self._open = True
        try:
            for folder in self.folders:
                self._make_folder(folder)
                self._temporary[folder] = Path(tempfile.mkdtemp(prefix=TEMPORARY_PREFIX, dir=folder))
        except BaseException as error:
            self.abort()
            _raise_translated(error, self.folders[0])
        return self

    def _make_folder(self, folder: Path) -> None:
        missing = []
        for parent in (folder, *folder.parents):
            if parent.exists():
                break
            missing.append(parent)
        for parent in reversed(missing):
            try:
                parent.mkdir()
            except FileExistsError:  # made meanwhile by another run: not ours to remove
                continue
            self._created.append(parent)

    def path(self, name: str) -> Path:
        """Where to write output ``name`` now: a name in the hidden temporary folder that no ``*.nii.gz`` matches."""
        if not self._open:
            raise RuntimeError("write into an output unit inside its with block")
        target = self.targets[name]
        return self._temporary[target.parent] / f"{target.name}{PARTIAL_SUFFIX}"

    def commit(self) -> dict[str, Path]:
        """Move every written file into place, all or none; returns the final files by name."""
        if not self._open:
            raise RuntimeError("commit an output unit inside its with block")
        missing = [name for name in self.targets if not self.path(name).is_file()]
        if missing:
            self.abort()
            raise RuntimeError(f"outputs {missing} were never written")
        permissions = _umask_permissions()
        with _signals_deferred():
            try:
                for name, target in self.targets.items():
                    temporary = self.path(name)
                    os.chmod(temporary, permissions)
                    self._place(temporary, target)
            except BaseException as error:
                self.abort()
                _raise_translated(error, target)
            self._finish()
        return dict(self.targets)

    def _place(self, temporary: Path, target: Path) -> None:
        self._check_not_protected(target)
        if self.overwrite and os.path.lexists(target):
            kept = temporary.with_name(f"{target.name}.previous")
            try:
                os.link(target, kept)
            except OSError as error:
                if error.errno in _DISK_FULL:
                    raise
                os.replace(target, kept)  # no hard links here: the name is free for a moment
            self._placed.append((target, kept))  # from here on, undoing puts the previous file back
            os.replace(temporary, target)
            return
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise OutputExistsError(f"{target} exists (written meanwhile by another run).") from None
        except OSError as error:  # EPERM, ENOTSUP, EXDEV, ... where the file system has no hard links
            if error.errno in _DISK_FULL:
                raise
            self._claim_and_replace(temporary, target)
            return
        self._placed.append((target, None))
        temporary.unlink()

    def _claim_and_replace(self, temporary: Path, target: Path) -> None:
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise OutputExistsError(f"{target} exists (written meanwhile by another run).") from None
        self._placed.append((target, None))
        os.replace(temporary, target)

    def abort(self) -> None:
        """Undo: remove what this unit moved into place (restoring replaced files), its temporary folders, and
        the folders it made if they are empty. Safe to call more than once."""
        with _signals_deferred():
            for target, kept in reversed(self._placed):
                try:
                    if kept is not None:
                        os.replace(kept, target)
                    else:
                        target.unlink(missing_ok=True)
                except OSError:
                    pass  # best effort: keep undoing the rest
            self._placed.clear()
            self._finish()
            for folder in reversed(self._created):
                try:
                    folder.rmdir()
                except OSError:
                    pass  # not empty (someone else wrote there) or already gone
            self._created.clear()

    def _finish(self) -> None:
        for temporary in self._temporary.values():
            shutil.rmtree(temporary, ignore_errors=True)
        self._temporary.clear()
        self._placed.clear()
        self._open = False

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if not self._open:
            return None
        if kind is None:
            self.commit()
            return None
        self.abort()
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            _raise_translated(error, self.folders[0])
        return None


def _raise_translated(error: BaseException, where: Path) -> None:
    """Raise an :class:`OutputError` for a file-system error while writing ``where``; other errors unchanged."""
    if isinstance(error, RevnetsError) or not isinstance(error, OSError):
        raise error
    if error.errno in _DISK_FULL:
        message = f"no space left on the device while writing {where}: nothing of this output was kept."
        raise OutputWriteError(message) from error
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        # A PermissionError raised by hand may carry no errno.
        reason = os.strerror(error.errno) if error.errno is not None else error.strerror or type(error).__name__
        message = f"permission denied: cannot write {where} ({reason})."
        raise OutputNotWritableError(message) from error
    message = f"could not write {where} ({error.strerror or type(error).__name__}): nothing was kept."
    raise OutputWriteError(message) from error


def refuse_shared_targets(units: Mapping[str, OutputUnit]) -> None:
    """Refuse units (keyed by the input they belong to) that would write the same file.

    Raises:
        OutputConflictError: naming the two inputs and the file.
    """
    seen: dict[Path, str] = {}
    for source, unit in units.items():
        for path in unit.targets.values():
            other = seen.setdefault(path.absolute(), source)
            if other != source:
                raise OutputConflictError(f"{other} and {source} would both write {path}.")


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = True, protected: Iterable[str | Path] = ()) -> Iterator[Path]:
    """A one-file :class:`OutputUnit`: yields where to write; the file appears at ``path`` whole, or not at all.

    The yielded name ends in ``.partial``: writers that choose a format by suffix must be told the format.
    """
    with OutputUnit({"file": path}, protected=protected, overwrite=overwrite) as unit:
        yield unit.path("file")
