"""One writer per folder: a run or feature folder another live process is writing is refused.

The lock is an advisory ``flock`` on a hidden file beside the folder (``<parent>/.<name>.lock``, so
it survives ``--overwrite`` replacing the folder). The kernel releases it when its process ends,
however it ends, so a killed job never leaves a folder stuck; the file only records who holds it
(process id, host, command) for the error message of the one refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

from aqakit.errors import RunDirectoryError


def lock_path(folder: Path) -> Path:
    """Where the lock of ``folder`` lives: a hidden file beside it."""
    folder = Path(folder).absolute()
    return folder.with_name(f".{folder.name}.lock")


@contextlib.contextmanager
def folder_lock(folder: str | Path, what: str = "folder") -> Iterator[None]:
    """Hold ``folder``'s lock for the block; RunDirectoryError naming the holder if a live process has it."""
    path = lock_path(Path(folder))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(f"{folder}: another process is writing this {what} ({_holder(path)}); "
                                    "wait for it to finish or stop it") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}))
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text())
        return f"process {holder['pid']} on {holder['host']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "holder unknown"
