"""Writes that are never seen half done: write beside the target, flush it to disk, then rename.

Every file aqakit writes (summaries, metrics, predictions, configs, checkpoints, feature files,
manifests, reports) goes through :func:`atomic_write` (or its text and bytes forms), so a crash,
a ``kill -9`` or a full disk leaves either the previous file or the new one, never a truncated
file in its place. A checkpoint is a folder of two files, replaced as a whole by
:func:`replace_folder`. A failed write is a one-line :class:`~aqakit.errors.WriteError` naming the
file and the reason (no space left, read-only, permission); the previous file stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import IO, Callable, Iterator

from aqakit.errors import WriteError, one_line_reason

#: Suffix of the folder a :func:`replace_folder` moves the previous version to while it swaps.
PREVIOUS_SUFFIX = ".previous"

#: The name :func:`temporary_beside` gives: ``.<name>.<pid>.partial[<suffix>]``.
_PARTIAL_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.partial(\.[^.]+)?$")


def temporary_beside(path: Path, suffix: str = "") -> Path:
    """A name in ``path``'s folder for writing ``path`` (same filesystem, so the rename is atomic);
    ``suffix`` keeps an extension a writer insists on (``np.save`` appends ``.npy``)."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial{suffix}")


@contextlib.contextmanager
def atomic_write(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s new content into; on success it is flushed to
    disk and renamed over ``path`` (and the folder entry flushed); on any error it is removed and
    ``path`` is left as it was. OS errors become a one-line WriteError naming ``path``."""
    path = Path(path)
    partial = temporary_beside(path, suffix)
    try:
        yield partial
        _fsync_file(partial)
        os.replace(partial, path)
        _fsync_folder(path.parent)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({_reason(exc)}); the previous file, if any, is unchanged") from None
    finally:
        with contextlib.suppress(OSError):  # absent once renamed; undeletable on a read-only folder
            partial.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_write(path) as partial:
        partial.write_text(text, encoding="utf-8")


@contextlib.contextmanager
def atomic_open(path: str | Path, newline: str | None = None) -> Iterator[IO[str]]:
    """A text handle (UTF-8) whose content replaces ``path`` atomically when the block ends."""
    with atomic_write(path) as partial, open(partial, "w", encoding="utf-8", newline=newline) as handle:
        yield handle


def replace_folder(folder: str | Path, write: Callable[[Path], None]) -> None:
    """Replace ``folder`` as a whole by what ``write(new_folder)`` puts into an empty folder.

    The new folder is written beside, every file flushed; the previous folder is renamed to
    ``<folder>.previous``, the new one renamed into place, and the previous one removed. A crash
    between the two renames leaves ``<folder>.previous`` complete, which :func:`recover_folder`
    (called by readers) puts back.
    """
    folder = Path(folder)
    recover_folder(folder)
    partial = temporary_beside(folder)
    previous = folder.with_name(folder.name + PREVIOUS_SUFFIX)
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        write(partial)
        for file in partial.iterdir():
            _fsync_file(file)
        if folder.exists():
            os.replace(folder, previous)
        os.replace(partial, folder)
        _fsync_folder(folder.parent)
        shutil.rmtree(previous, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        recover_folder(folder)
        raise WriteError(f"{folder}: cannot write ({_reason(exc)}); the previous version, if any, is unchanged") from None


def recover_folder(folder: str | Path) -> None:
    """Put back ``<folder>.previous`` when a :func:`replace_folder` stopped between its renames."""
    folder = Path(folder)
    previous = folder.with_name(folder.name + PREVIOUS_SUFFIX)
    if previous.is_dir():
        if folder.exists():
            shutil.rmtree(previous, ignore_errors=True)  # the swap finished; only the clean-up did not
        else:
            os.replace(previous, folder)


def remove_partials(folder: str | Path) -> list[Path]:
    """Remove what writers killed in the middle of a write left under ``folder``, at any depth: the
    hidden partial files (:func:`temporary_beside`) and partial folders (:func:`replace_folder`) of
    other processes. Only for a caller that holds the folder's lock (:mod:`aqakit.locking`), so that
    no live writer owns one. Returns what was removed."""
    left = []
    for path in sorted(Path(folder).rglob(".*.partial*")):
        match = _PARTIAL_NAME.match(path.name)
        if match is None or int(match["pid"]) == os.getpid() or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        left.append(path)
    return left


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk where the platform allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    if exc.errno == errno.EROFS:
        return "read-only file system"
    return one_line_reason(exc)
